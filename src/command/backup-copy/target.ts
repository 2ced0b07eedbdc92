/**
 * The target side of backup-copy: the repository must exist; the stanza in it must be the source's
 * cluster. A target without the stanza gets it created from the source's history (same ids,
 * system ids and versions; new passphrases when the target is encrypted), archive.info first: a
 * kill between the two writes is finished by the next run, never misread as a damaged stanza.
 */
import { randomBytes } from "node:crypto";
import { err } from "../../common/error.ts";
import { logInfo } from "../../common/log.ts";
import { ArchiveInfo, loadArchiveInfo, saveArchiveInfo } from "../../repo/archive-info.ts";
import { BackupInfo, loadBackupInfo, saveBackupInfo, type BackupDb } from "../../repo/backup-info.ts";
import { repoPath } from "../../repo/layout.ts";
import type { Storage } from "../../storage/storage.ts";

export interface Stanza {
  backup: BackupInfo;
  archive: ArchiveInfo;
}

/** A passphrase for files under an info file (WAL, manifests, a backup's files), as pgBackRest makes them. */
export function newFilePass(): string {
  return randomBytes(48).toString("base64");
}

const same = (a: { version: string; systemId: bigint }, b: { version: string; systemId: bigint }) => a.version === b.version && a.systemId === b.systemId;

export async function openTargetStanza(dst: Storage, index: number, stanza: string, pass: string | undefined, source: Stanza): Promise<Stanza> {
  if (!(await dst.exists("")))
    throw err("PathMissingError", `repo${index} (the copy's target) has no repository at '${dst.path()}'`, [`create that directory for the user running pgbunker, or set repo${index}-path (or repo${index}-host) to the repository to copy into.`]);
  let archive = await loadArchiveInfo(dst, stanza, { cipherPass: pass, ignoreMissing: true });
  let backup = await loadBackupInfo(dst, stanza, { cipherPass: pass, ignoreMissing: true });
  const existing = archive ?? backup;
  if (existing && !same(existing.current, source.backup.current))
    throw err(
      "BackupMismatchError",
      `stanza '${stanza}' on repo${index} is PostgreSQL ${existing.current.version} system-id ${existing.current.systemId}, but the source's is PostgreSQL ${source.backup.current.version} system-id ${source.backup.current.systemId}`,
      ["backups of one cluster can only be copied into that cluster's stanza: is --repo-target the right repository and --stanza the right stanza?", "copy into another stanza name, or remove the target's (stanza-delete) if it is unwanted."],
    );
  if (!archive) {
    if (backup && (await dst.names(repoPath.archiveStanza(stanza))).some((n) => !n.startsWith("archive.info")))
      throw err("FileMissingError", `backup.info exists but archive.info is missing on repo${index}`, "this may be a symptom of repository corruption!");
    archive = new ArchiveInfo({ ...source.archive.current }, source.archive.history.map((h) => ({ ...h })), pass ? newFilePass() : undefined);
    await saveArchiveInfo(dst, stanza, archive, pass);
  }
  if (!backup) {
    if ((await dst.names(repoPath.backupStanza(stanza))).some((n) => !n.startsWith("backup.info")))
      throw err("FileMissingError", `archive.info exists but backup.info is missing on repo${index}`, "this may be a symptom of repository corruption!");
    backup = new BackupInfo({ ...source.backup.current }, source.backup.history.map((h) => ({ ...h })), pass ? newFilePass() : undefined);
    await saveBackupInfo(dst, stanza, backup, pass);
    logInfo(`stanza '${stanza}' created on repo${index} from the source's history`);
  }
  return { archive, backup };
}

/** The target's history entry for a source backup's cluster. */
export function targetDb(target: BackupInfo, db: BackupDb, index: number): BackupDb {
  const found = [...target.history].reverse().find((h) => same(h, db));
  if (!found)
    throw err("BackupMismatchError", `repo${index} has no history entry for PostgreSQL ${db.version} system-id ${db.systemId}, the cluster the backup was taken from`, "run stanza-upgrade on the target as it was run on the source, or copy into a new stanza.");
  return found;
}
