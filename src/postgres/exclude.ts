/**
 * What a backup of a data directory leaves out, following PostgreSQL's documented rules for base
 * backups (and what pgBackRest does): the contents of pg_wal and of the directories PostgreSQL
 * recreates at start, server state files, temporary files and relations, and unlogged relations
 * except their init fork (PostgreSQL rebuilds an unlogged relation from its init fork on recovery).
 */

/** Directories kept (as empty paths in the manifest) but whose contents are skipped. */
const SKIP_CONTENTS = new Set([
  "pg_wal",
  "pg_xlog",
  "pg_dynshmem",
  "pg_notify",
  "pg_replslot",
  "pg_serial",
  "pg_snapshots",
  "pg_stat_tmp",
  "pg_subtrans",
]);

/** Files at the top of the data directory that must not be in a backup. */
const SKIP_TOP_FILES = new Set([
  "postmaster.pid",
  "postmaster.opts",
  "backup_label",
  "backup_label.old",
  "tablespace_map",
  "tablespace_map.old",
  "recovery.signal",
  "standby.signal",
  "current_logfiles",
  "current_logfiles.tmp",
]);

/** Relation file names: OID, optional fork, optional segment number. */
export const RELATION_FILE_RE = /^(\d+)(_(fsm|vm|init))?(\.\d+)?$/;
/** Temporary relations: t<backend>_<oid>... */
const TEMP_RELATION_RE = /^t\d+_\d+(_(fsm|vm|init))?(\.\d+)?$/;

export interface ExcludeRules {
  /** User excludes (option `exclude`): "dir/" excludes a directory's contents, "name" a file or path. */
  user: readonly string[];
  /** Major version dir name inside tablespaces, e.g. PG_15_202209061. */
  tablespaceVersionDir: string;
}

export type ExcludeDecision = "keep" | "skip" | "skip-contents";

/**
 * Decide for one entry of the data directory, by its path relative to pg_data
 * (e.g. "base/5/16384", "pg_wal", "pg_tblspc/16394/PG_15_202209061/5/16395").
 */
export function excludeDecision(rel: string, type: "file" | "path" | "link" | "special", rules: ExcludeRules): ExcludeDecision {
  const parts = rel.split("/");
  const name = parts[parts.length - 1]!;

  for (const u of rules.user) {
    if (u.endsWith("/")) {
      if (rel === u.slice(0, -1) && (type === "path" || type === "link")) return "skip-contents";
    } else if (rel === u) return "skip";
  }

  if (type === "special") return "skip";
  if (parts.length === 1) {
    if (SKIP_CONTENTS.has(name)) return "skip-contents";
    if (type === "file" && SKIP_TOP_FILES.has(name)) return "skip";
  }
  // pg_internal.init (relcache init files) are rebuilt at start.
  if (name === "pg_internal.init" || name.startsWith("pg_internal.init.")) return "skip";
  // Temporary files and directories.
  if (name.startsWith("pgsql_tmp")) return "skip";
  // Temporary relations.
  if (type === "file" && TEMP_RELATION_RE.test(name) && inRelationDir(parts, rules)) return "skip";
  // Inside a tablespace location, only this major's version directory belongs to the cluster.
  if (parts[0] === "pg_tblspc" && parts.length === 3 && parts[2] !== rules.tablespaceVersionDir) return "skip";
  return "keep";
}

/** base/DB/..., global/..., pg_tblspc/OID/VERSION/DB/... */
export function inRelationDir(parts: readonly string[], rules: Pick<ExcludeRules, "tablespaceVersionDir">): boolean {
  if (parts[0] === "base" && parts.length === 3) return true;
  if (parts[0] === "global" && parts.length === 2) return true;
  if (parts[0] === "pg_tblspc" && parts.length === 5 && parts[2] === rules.tablespaceVersionDir) return true;
  return false;
}

/** Is this path (relative to pg_data) a relation data file whose pages carry checksums? */
export function isRelationFile(rel: string, rules: Pick<ExcludeRules, "tablespaceVersionDir">): boolean {
  const parts = rel.split("/");
  return RELATION_FILE_RE.test(parts[parts.length - 1]!) && inRelationDir(parts, rules);
}

/**
 * Files a backup from a standby reads on the standby: content that WAL replay writes there as on
 * the primary (relations, and the transaction status SLRUs). Everything else (pg_control, the
 * configuration files, replication origin and slot state, ...) is the primary's own and is read
 * there, so a backup from a standby restores the same cluster a backup from the primary would.
 */
const REPLICATED_DIRS = new Set(["base", "global", "pg_tblspc", "pg_xact", "pg_multixact", "pg_commit_ts"]);

export function replicatedOnStandby(rel: string): boolean {
  if (rel === "global/pg_control") return false;
  const slash = rel.indexOf("/");
  return slash > 0 && REPLICATED_DIRS.has(rel.slice(0, slash));
}

/** Segment number of a relation file name ("16384.2" → 2). */
export function relationSegment(name: string): number {
  const m = /\.(\d+)$/.exec(name);
  return m ? Number(m[1]) : 0;
}

/**
 * Unlogged relations: a directory's files whose OID has an _init fork. Every fork and segment of
 * such a relation is skipped except the init fork itself.
 */
export function unloggedSkips(fileNames: readonly string[]): Set<string> {
  const unlogged = new Set<string>();
  for (const n of fileNames) {
    const m = RELATION_FILE_RE.exec(n);
    if (m && m[3] === "init") unlogged.add(m[1]!);
  }
  const skip = new Set<string>();
  if (unlogged.size === 0) return skip;
  for (const n of fileNames) {
    const m = RELATION_FILE_RE.exec(n);
    if (m && unlogged.has(m[1]!) && m[3] !== "init") skip.add(n);
  }
  return skip;
}

/** Tablespace version directory name: PG_<major>_<catalog version>. */
export function tablespaceVersionDir(version: string, catalogVersion: number): string {
  return `PG_${version}_${catalogVersion}`;
}
