/**
 * Small facts about a configured repository that the read-mostly commands (info, verify, expire)
 * share: which repositories a command acts on, the passphrase of an encrypted one, and which
 * archive id holds the WAL of a backup.
 */
import { err } from "../common/error.ts";
import type { Config } from "../config/parse.ts";
import type { ArchiveInfo } from "../repo/archive-info.ts";
import type { BackupInfo } from "../repo/backup-info.ts";
import { repoPath } from "../repo/layout.ts";

/** --repo when given, else every configured repository (repo1 when none is). */
export function repoIndexes(cfg: Config): number[] {
  return cfg.has("repo") ? [cfg.repoIndex] : cfg.indexes("repo");
}

export function repoCipherType(cfg: Config, index: number): "none" | "aes-256-cbc" {
  return cfg.str(`repo${index}-cipher-type`) === "aes-256-cbc" ? "aes-256-cbc" : "none";
}

/** Passphrase of repoN's info files, undefined when the repository is not encrypted. */
export function repoCipherPass(cfg: Config, index: number): string | undefined {
  if (repoCipherType(cfg, index) === "none") return undefined;
  const pass = cfg.str(`repo${index}-cipher-pass`);
  if (!pass)
    throw err("OptionRequiredError", `${cfg.command} command requires option: repo${index}-cipher-pass`, "set it in the configuration file or the PGBUNKER_REPO" + index + "_CIPHER_PASS environment variable.");
  return pass;
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
