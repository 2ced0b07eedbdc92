/**
 * Every repository path, in one place (pgBackRest repository format 5):
 *
 *   archive/STANZA/archive.info(.copy)
 *   archive/STANZA/VERSION-ID/XXXXXXXXXXXXXXXX/SEGMENT-SHA1[.ext]     (first 16 hex of the segment)
 *   archive/STANZA/VERSION-ID/TTTTTTTT.history, SEGMENT.OFFSET.backup
 *   backup/STANZA/backup.info(.copy), latest → LABEL
 *   backup/STANZA/LABEL/backup.manifest(.copy), LABEL/pg_data/..., LABEL/pg_tblspc/OID/...
 *   backup/STANZA/LABEL/bundle/N          (repo-bundle: small files stored back to back)
 *   backup/STANZA/backup.history/YYYY/LABEL.manifest.gz
 *
 * and the spool of asynchronous archiving (spool-path, same layout as pgBackRest's):
 *   archive/STANZA/out/WALNAME.ok|.error, global.error    archive-push status per WAL file
 *   archive/STANZA/in/WALNAME (+ .ok|.error)                archive-get prefetch queue
 */
import { err } from "../common/error.ts";
import { walFileKind, type WalFileKind } from "../postgres/wal.ts";
import { TEMP_EXT } from "../storage/storage.ts";

export const INFO_COPY_EXT = ".copy";
export const ARCHIVE_INFO_FILE = "archive.info";
export const BACKUP_INFO_FILE = "backup.info";
export const MANIFEST_FILE = "backup.manifest";
export const HISTORY_DIR = "backup.history";
/** Extension of a block incremental file stored outside a bundle (its super blocks, then its map). */
export const BLOCK_INCR_EXT = ".pgbi";

/** Extension of a backup's file stored outside a bundle: .pgbi when it has a block map, else its compression's. */
export function storedExt(f: { blockIncr?: { mapSize: number } }, compressExt: string): string {
  return f.blockIncr !== undefined && f.blockIncr.mapSize > 0 ? BLOCK_INCR_EXT : compressExt;
}

export const repoPath = {
  archiveStanza: (stanza: string) => `archive/${stanza}`,
  archiveInfo: (stanza: string) => `archive/${stanza}/${ARCHIVE_INFO_FILE}`,
  archiveId: (version: string, historyId: number) => `${version}-${historyId}`,
  archiveIdPath: (stanza: string, archiveId: string) => `archive/${stanza}/${archiveId}`,
  /** Directory holding a segment: its first 16 hex digits (timeline + log id). */
  walDir: (stanza: string, archiveId: string, walName: string) => `archive/${stanza}/${archiveId}/${walName.slice(0, 16)}`,

  backupStanza: (stanza: string) => `backup/${stanza}`,
  backupInfo: (stanza: string) => `backup/${stanza}/${BACKUP_INFO_FILE}`,
  backupDir: (stanza: string, label: string) => `backup/${stanza}/${label}`,
  manifest: (stanza: string, label: string) => `backup/${stanza}/${label}/${MANIFEST_FILE}`,
  /** A backed-up file: manifest name (pg_data/..., pg_tblspc/...) plus compression extension. */
  backupFile: (stanza: string, label: string, name: string, ext: string) => `backup/${stanza}/${label}/${name}${ext}`,
  /** A bundle of small files (repo-bundle): file N of a backup, each member at its manifest offset. */
  bundleFile: (stanza: string, label: string, bundleId: number) => `backup/${stanza}/${label}/bundle/${bundleId}`,
  historyDir: (stanza: string) => `backup/${stanza}/${HISTORY_DIR}`,
  historyManifest: (stanza: string, label: string) => `backup/${stanza}/${HISTORY_DIR}/${label.slice(0, 4)}/${label}.manifest.gz`,
  latestLink: (stanza: string) => `backup/${stanza}/latest`,
} as const;

/**
 * Where a WAL file PostgreSQL hands over is stored in an archive id: segments and .partial files
 * under their 16-hex directory with the SHA-1 and compression extension in the name; .backup
 * files plain under the same directory; history files directly in the archive id. pgBackRest
 * stores any other name directly in the archive id too; pgbunker's archive-push refuses them
 * (archiveNameCheck), but archive-get still finds one a pgBackRest push left there.
 */
export function walRepoPath(stanza: string, archiveId: string, name: string, stored?: { sha1: string; ext: string }): string {
  return `${repoPath.archiveIdPath(stanza, archiveId)}/${walArchiveRel(name, stored)}`;
}

/** walRepoPath relative to the archive id directory (DIR16/SEGMENT-SHA1.ext, DIR16/NAME or NAME). */
function walArchiveRel(name: string, stored?: { sha1: string; ext: string }): string {
  const kind = walFileKind(name);
  if (kind === "segment" || kind === "partial") {
    if (!stored) throw err("AssertError", `the repository name of WAL segment '${name}' needs its sha1`);
    return `${name.slice(0, 16)}/${name}-${stored.sha1}${stored.ext}`;
  }
  return kind === "backup" ? `${name.slice(0, 16)}/${name}` : name;
}

/** True when the repository name of a WAL file carries its SHA-1 (segments and partials). */
export function walNameHasChecksum(name: string): boolean {
  const kind = walFileKind(name);
  return kind === "segment" || kind === "partial";
}

/** pgBackRest's temporary names (FILE.pgbackrest.tmp): a repository may be shared with it. */
const PGBACKREST_TEMP_EXT = ".pgbackrest.tmp";

/**
 * The temporary name of a file being written into the repository: an atomic write's (storage
 * drivers) or an archive-push's stage (NAME.PID-RANDOM.pgbunker.tmp), or pgBackRest's own. Never
 * WAL, never a backup.
 */
export function isTempFile(name: string): boolean {
  return name.endsWith(TEMP_EXT) || name.endsWith(PGBACKREST_TEMP_EXT);
}

/** What a file found in an archive id is: a stored WAL file, a temporary file, or neither. */
export type ArchiveFile =
  | { kind: WalFileKind; /** PostgreSQL's name of the file. */ wal: string; sha1?: string; ext?: string }
  | { kind: "temp" }
  | undefined;

/**
 * The one classifier of archive file names (archive-push refuses what it cannot place, verify
 * reports it as orphaned). `rel` is the path below the archive id (DIR16/FILE or FILE): a stored
 * file is WAL only where walRepoPath would have put it, so a segment in the wrong directory or a
 * history file in a segment directory is not.
 */
export function archiveFileOf(rel: string): ArchiveFile {
  const name = rel.slice(rel.lastIndexOf("/") + 1);
  if (isTempFile(name)) return { kind: "temp" };
  const stored = parseWalFileName(name);
  const wal = stored?.wal ?? name;
  const kind = walFileKind(wal);
  if (!kind || (kind === "segment" || kind === "partial") !== (stored !== undefined)) return undefined;
  if (walArchiveRel(wal, stored) !== rel) return undefined;
  return stored ? { kind, wal, sha1: stored.sha1, ext: stored.ext } : { kind, wal };
}

/**
 * Which passphrase encrypts a file of an encrypted repository, by where it lives:
 *   archive/STANZA/archive.info(.copy), backup/STANZA/backup.info(.copy)    the repository's (repoN-cipher-pass)
 *   archive/STANZA/... (WAL, history)                                       archive.info's cipher-pass
 *   backup/STANZA/LABEL/backup.manifest(.copy), backup/STANZA/backup.history/...   backup.info's cipher-pass
 *   backup/STANZA/LABEL/... (the backup's files)                            the manifest's cipher-pass
 * null when the path is not below archive/STANZA/ or backup/STANZA/: no passphrase can be told.
 */
export type CipherPassSource =
  | { from: "repo"; stanza: string }
  | { from: "archive.info"; stanza: string }
  | { from: "backup.info"; stanza: string }
  | { from: "manifest"; stanza: string; label: string };

export function cipherPassSource(path: string): CipherPassSource | null {
  const parts = path.split("/");
  if (parts.length < 3) return null;
  const [top, stanza, below] = parts as [string, string, string];
  const endsWith = (name: string) => path.endsWith(name) || path.endsWith(name + INFO_COPY_EXT);
  if (top === "archive") return { from: endsWith(ARCHIVE_INFO_FILE) ? "repo" : "archive.info", stanza };
  if (top !== "backup") return null;
  if (endsWith(BACKUP_INFO_FILE)) return { from: "repo", stanza };
  if (below === HISTORY_DIR || endsWith(MANIFEST_FILE)) return { from: "backup.info", stanza };
  return { from: "manifest", stanza, label: below };
}

export const STATUS_OK = ".ok";
export const STATUS_ERROR = ".error";
/** Status file of the asynchronous archive-push process when it failed before any WAL file. */
export const STATUS_GLOBAL = "global";

/** Paths inside spool-path. */
export const spoolPath = {
  out: (stanza: string) => `archive/${stanza}/out`,
  in: (stanza: string) => `archive/${stanza}/in`,
  outFile: (stanza: string, name: string) => `archive/${stanza}/out/${name}`,
  inFile: (stanza: string, name: string) => `archive/${stanza}/in/${name}`,
} as const;

/** Parse a stored WAL file name: SEGMENT-SHA1[.ext] → parts. */
export function parseWalFileName(name: string): { wal: string; sha1: string; ext: string } | undefined {
  const m = /^([0-9A-F]{24}(?:\.partial)?)-([0-9a-f]{40})(\.[a-z0-9]+)?$/.exec(name);
  if (!m) return undefined;
  return { wal: m[1]!, sha1: m[2]!, ext: m[3] ?? "" };
}

/** Archive id "15-1" → parts. */
export function parseArchiveId(id: string): { version: string; historyId: number } | undefined {
  const m = /^(\d+(?:\.\d+)?)-(\d+)$/.exec(id);
  return m ? { version: m[1]!, historyId: Number(m[2]) } : undefined;
}
