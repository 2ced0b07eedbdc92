/**
 * Small facts about a configured repository that the read-mostly commands (info, verify, expire)
 * share: its encryption, which archive id holds the WAL of a backup, and how repo-ls/repo-get name a
 * path in it. (Which repositories a command acts on and their passphrases: archive/common.ts.)
 */
import { err } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";
import type { ArchiveInfo } from "../../repo/archive-info.ts";
import type { BackupInfo } from "../../repo/backup-info.ts";
import { repoPath } from "../../repo/layout.ts";
import type { Storage } from "../../storage/storage.ts";

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

/**
 * A repo-ls/repo-get path given by the user, as a path relative to the repository root (pgBackRest's
 * rules): "//" is refused, a trailing "/" dropped, and an absolute path accepted only inside the
 * repository's own path (as the repository storage sees it, so also on a repository host).
 */
export function repoRelativePath(storage: Storage, path: string): string {
  if (path.includes("//"))
    throw err("ParamInvalidError", `path '${path}' cannot contain //`, "name the path with single slashes, relative to repo-path (backup/STANZA/...).");
  const p = path.endsWith("/") ? path.slice(0, -1) : path;
  if (!p.startsWith("/")) return p;
  const root = storage.path("");
  if (p === root) return "";
  if (root !== "/" && !p.startsWith(`${root}/`))
    throw err("ParamInvalidError", `absolute path '${p}' is not in base path '${root}'`, "give a path relative to the repository (archive/..., backup/...) or under repo-path.");
  return p.slice(root === "/" ? 1 : root.length + 1);
}
