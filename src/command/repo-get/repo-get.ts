/**
 * The 'repo-get' command: copy one file of the repository to stdout, as pgBackRest does. An
 * encrypted file is decrypted (with the passphrase its place in the repository implies, see
 * layout.ts cipherPassSource); a compressed one is printed compressed, for `lz4 -d` or `gzip -d`
 * to take (pgBackRest 2.45 and 2.59.1 alike). --raw prints the stored bytes, not decrypted.
 * --ignore-missing: a missing file exits 1 with nothing printed.
 */
import { err, PgbError } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";
import type { FilterSpec } from "../../filter/filter.ts";
import { loadArchiveInfo } from "../../repo/archive-info.ts";
import { loadBackupInfo } from "../../repo/backup-info.ts";
import { cipherPassSource } from "../../repo/layout.ts";
import { loadManifest } from "../../repo/manifest.ts";
import type { Storage } from "../../storage/storage.ts";
import { repoCipherPass } from "../archive/common.ts";
import { repoRelativePath } from "../shared/repos.ts";
import { storageRepo } from "../shared/storage.ts";
import { stdoutWrite } from "../shared/stdout.ts";

/** Exit code when the file is missing and --ignore-missing is set (and when stdout closed early). */
const MISSING = 1;

export async function run(cfg: Config): Promise<number> {
  if (cfg.params.length !== 1)
    throw err("ParamRequiredError", "source file required", "name one file, relative to repo-path or absolute under it: repo-get backup/STANZA/backup.info.");
  const storage = await storageRepo(cfg, { readOnly: true });
  try {
    const file = repoRelativePath(storage, cfg.params[0]!);
    const pass = cfg.bool("raw") ? undefined : await filePassphrase(cfg, storage, file);
    const filters: FilterSpec[] = pass ? [{ type: "decrypt", pass }] : [];
    const r = await openFile(storage, file, cfg.bool("ignore-missing"), filters);
    if (!r) return MISSING;
    try {
      for (let c = await r.read(); c !== null; c = await r.read()) if (!stdoutWrite(c)) return MISSING;
    } finally {
      await r.close();
    }
    return 0;
  } finally {
    await storage.close();
  }
}

async function openFile(storage: Storage, file: string, ignoreMissing: boolean, filters: FilterSpec[]) {
  try {
    return await storage.openRead(file, { ignoreMissing, filters });
  } catch (e) {
    // A directory (or a link to one) is a read error, as pgBackRest reports it, not an open error.
    if (e instanceof PgbError && e.kind === "FileOpenError" && (await storage.info(file, { ignoreMissing: true, followLink: true }))?.type === "path")
      throw err("FileReadError", `unable to read '${storage.path(file)}': it is a directory`, "repo-get prints one file; list a directory with repo-ls.");
    throw e;
  }
}

/** The passphrase `file` is encrypted with; undefined when the repository is not encrypted. */
async function filePassphrase(cfg: Config, storage: Storage, file: string): Promise<string | undefined> {
  const repoPass = repoCipherPass(cfg, cfg.repoIndex);
  if (repoPass === undefined) return undefined;
  const source = cipherPassSource(file);
  const stanza = cfg.str("stanza");
  if (source && stanza !== undefined && source.stanza !== stanza)
    throw err("OptionInvalidValueError", `stanza name '${stanza}' given in option doesn't match the given path`, `the path names stanza '${source.stanza}': drop --stanza or fix the path.`);
  let pass: string | undefined;
  if (source?.from === "repo") pass = repoPass;
  else if (source?.from === "archive.info") pass = (await loadArchiveInfo(storage, source.stanza, { cipherPass: repoPass }))!.cipherPass;
  else if (source) {
    const backupPass = (await loadBackupInfo(storage, source.stanza, { cipherPass: repoPass }))!.cipherPass;
    pass = source.from === "backup.info" ? backupPass : (await loadManifest(storage, source.stanza, source.label, backupPass)).cipherPass;
  }
  if (pass === undefined)
    throw err(
      "OptionInvalidValueError",
      `unable to determine cipher passphrase for '${file}'`,
      "in an encrypted repository only files below archive/STANZA/ and backup/STANZA/ have a known passphrase; --raw prints the encrypted bytes.",
    );
  return pass;
}
