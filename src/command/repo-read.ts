/**
 * Small facts about a configured repository that the read-mostly commands (info, verify, expire)
 * share: its encryption, and which archive id holds the WAL of a backup. (Which repositories a
 * command acts on and their passphrases: archive/common.ts.)
 */
import type { Config } from "../config/parse.ts";
import type { ArchiveInfo } from "../repo/archive-info.ts";
import type { BackupInfo } from "../repo/backup-info.ts";
import { repoPath } from "../repo/layout.ts";

export function repoCipherType(cfg: Config, index: number): "none" | "aes-256-cbc" {
  return cfg.str(`repo${index}-cipher-type`) === "aes-256-cbc" ? "aes-256-cbc" : "none";
}

/** Archive id (VERSION-N) holding the WAL of backups made with backup.info's history entry `dbId`. */
export function archiveIdOfDb(backupInfo: BackupInfo, archiveInfo: ArchiveInfo, dbId: number): string | undefined {
  const db = backupInfo.db(dbId);
  if (!db) return undefined;
  // The two files number their history alike; fall back to matching the cluster when they do not.
  const same = archiveInfo.history.find((h) => h.id === dbId);
  if (same && same.version === db.version && same.systemId === db.systemId) return repoPath.archiveId(same.version, same.id);
  return archiveInfo.findArchiveId(db.version, db.systemId);
}
