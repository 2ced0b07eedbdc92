/**
 * The 'repo-rekey' command (a pgbunker addition): give an encrypted repository a new passphrase
 * (repoN-cipher-pass → repoN-cipher-pass-new) without rewriting a backup or a WAL file.
 *
 * Only two files are encrypted with the repository's passphrase: archive.info and backup.info
 * (each with its .copy). Everything else is encrypted with a passphrase stored inside them:
 * WAL with archive.info's cipher-pass, manifests and backup.history with backup.info's, a
 * backup's files with its manifest's (repo/layout.ts cipherPassSource). Those sub-passphrases are
 * kept, so re-encrypting the four info files re-keys the whole repository.
 *
 * Crash safety. Loading an info file tries the main file, then the copy, whatever the error (as
 * pgBackRest's infoLoad does), so a pair with one file under each passphrase opens with either.
 * The four writes are ordered so that one passphrase always opens both pairs:
 *
 *   before            archive old/old  backup old/old   → old
 *   1 archive.info    archive new/old  backup old/old   → old
 *   2 backup.info     archive new/old  backup new/old   → old and new
 *   3 archive.copy    archive new/new  backup new/old   → new
 *   4 backup.copy     archive new/new  backup new/new   → new
 *
 * Each write is atomic (temp file, fsync, rename), so a kill leaves one of these states; running
 * the command again with the same passphrases finishes the job (each pair is read with the old
 * passphrase, else the new one), and swapping them goes back.
 */
import { err, PgbError } from "../../common/error.ts";
import { logInfo } from "../../common/log.ts";
import type { Config } from "../../config/parse.ts";
import { loadInfoFile, writeInfoFileOne } from "../../repo/info-file.ts";
import type { InfoIni } from "../../repo/ini.ts";
import { repoPath } from "../../repo/layout.ts";
import type { Storage } from "../../storage/storage.ts";
import { repoCipherPass } from "../archive/common.ts";
import { repoCipherType } from "../shared/repos.ts";
import { storageRepo } from "../shared/storage.ts";

/** An info file pair as found: its content, and whether the old passphrase still opens it. */
interface Pair {
  path: string;
  ini: InfoIni;
  openedWithOld: boolean;
}

export async function run(cfg: Config): Promise<number> {
  const stanza = cfg.req("stanza");
  const index = rekeyRepo(cfg);
  const { oldPass, newPass } = passphrases(cfg, index);
  const storage = await storageRepo(cfg, { repo: index });
  try {
    // Both pairs are read before anything is written: a wrong passphrase changes nothing.
    const archive = await openPair(storage, repoPath.archiveInfo(stanza), oldPass, newPass, index);
    const backup = await openPair(storage, repoPath.backupInfo(stanza), oldPass, newPass, index);
    if (!archive.openedWithOld && !backup.openedWithOld) {
      logInfo(`repo${index}: archive.info and backup.info are already encrypted with repo${index}-cipher-pass-new: nothing to do`);
      return 0;
    }
    // The order of the header comment: main files first, copies after.
    for (const which of ["main", "copy"] as const)
      for (const pair of [archive, backup]) await writeInfoFileOne(storage, pair.path, pair.ini, which, newPass);
    logInfo(`repo${index}: stanza '${stanza}' re-keyed: set repo${index}-cipher-pass to the new passphrase (and remove repo${index}-cipher-pass-new)`);
    return 0;
  } finally {
    await storage.close();
  }
}

/** One repository at a time: --repo, or the only one configured. */
function rekeyRepo(cfg: Config): number {
  const given = cfg.num("repo");
  if (given !== undefined) return given;
  const all = cfg.indexes("repo");
  if (all.length > 1)
    throw err("OptionRequiredError", `repo-rekey command requires option: repo (${all.length} repositories are configured: ${all.map((i) => `repo${i}`).join(", ")})`, "re-key one repository at a time: give --repo=N.");
  return all[0]!;
}

function passphrases(cfg: Config, index: number): { oldPass: string; newPass: string } {
  if (repoCipherType(cfg, index) === "none")
    throw err(
      "OptionInvalidValueError",
      `repo${index} is not encrypted (repo${index}-cipher-type=none): repo-rekey changes the passphrase of an encrypted repository`,
      `if repo${index} is encrypted, set repo${index}-cipher-type=aes-256-cbc and repo${index}-cipher-pass; encrypting an unencrypted repository would rewrite every file and is not done by repo-rekey.`,
    );
  const oldPass = repoCipherPass(cfg, index)!;
  const newPass = cfg.str(`repo${index}-cipher-pass-new`);
  if (!newPass)
    throw err("OptionRequiredError", `repo-rekey command requires option: repo${index}-cipher-pass-new`, `give the new passphrase in the config file or in PGBUNKER_REPO${index}_CIPHER_PASS_NEW (never on the command line).`);
  if (newPass === oldPass)
    throw err("OptionInvalidValueError", `repo${index}-cipher-pass-new is the same as repo${index}-cipher-pass`, "choose a different new passphrase.");
  return { oldPass, newPass };
}

/** Read an info file pair with the old passphrase, else the new one (an interrupted repo-rekey). */
async function openPair(storage: Storage, path: string, oldPass: string, newPass: string, index: number): Promise<Pair> {
  let oldError: PgbError;
  try {
    return { path, ini: (await loadInfoFile(storage, path, { cipherPass: oldPass }))!, openedWithOld: true };
  } catch (e) {
    if (!(e instanceof PgbError) || e.kind !== "CryptoError") throw e;
    oldError = e;
  }
  try {
    return { path, ini: (await loadInfoFile(storage, path, { cipherPass: newPass }))!, openedWithOld: false };
  } catch (e) {
    if (!(e instanceof PgbError) || e.kind !== "CryptoError") throw e;
  }
  if (await loadInfoFile(storage, path).then(() => true, () => false))
    throw err("CryptoError", `'${storage.path(path)}' is not encrypted: repo${index} is an unencrypted repository`, `set repo${index}-cipher-type=none for it; repo-rekey changes the passphrase of an encrypted repository.`);
  throw err("CryptoError", `${oldError.message}\n(repo${index}-cipher-pass-new does not open it either)`, `check repo${index}-cipher-pass: it must be the repository's current passphrase.`);
}
