/**
 * Every repository path, in one place (pgBackRest repository format 5):
 *
 *   archive/STANZA/archive.info(.copy)
 *   archive/STANZA/VERSION-ID/XXXXXXXXXXXXXXXX/SEGMENT-SHA1[.ext]     (first 16 hex of the segment)
 *   archive/STANZA/VERSION-ID/TTTTTTTT.history, SEGMENT.OFFSET.backup
 *   backup/STANZA/backup.info(.copy), latest → LABEL
 *   backup/STANZA/LABEL/backup.manifest(.copy), LABEL/pg_data/..., LABEL/pg_tblspc/OID/...
 *   backup/STANZA/backup.history/YYYY/LABEL.manifest.gz
 */

export const INFO_COPY_EXT = ".copy";
export const ARCHIVE_INFO_FILE = "archive.info";
export const BACKUP_INFO_FILE = "backup.info";
export const MANIFEST_FILE = "backup.manifest";

export const repoPath = {
  archiveStanza: (stanza: string) => `archive/${stanza}`,
  archiveInfo: (stanza: string) => `archive/${stanza}/${ARCHIVE_INFO_FILE}`,
  archiveId: (version: string, historyId: number) => `${version}-${historyId}`,
  archiveIdPath: (stanza: string, archiveId: string) => `archive/${stanza}/${archiveId}`,
  /** Directory holding a segment: its first 16 hex digits (timeline + log id). */
  walDir: (stanza: string, archiveId: string, walName: string) => `archive/${stanza}/${archiveId}/${walName.slice(0, 16)}`,
  walFile: (stanza: string, archiveId: string, walName: string, sha1: string, ext: string) =>
    `archive/${stanza}/${archiveId}/${walName.slice(0, 16)}/${walName}-${sha1}${ext}`,
  /** History and other files that live directly in the archive id directory. */
  archiveIdFile: (stanza: string, archiveId: string, name: string) => `archive/${stanza}/${archiveId}/${name}`,

  backupStanza: (stanza: string) => `backup/${stanza}`,
  backupInfo: (stanza: string) => `backup/${stanza}/${BACKUP_INFO_FILE}`,
  backupDir: (stanza: string, label: string) => `backup/${stanza}/${label}`,
  manifest: (stanza: string, label: string) => `backup/${stanza}/${label}/${MANIFEST_FILE}`,
  /** A backed-up file: manifest name (pg_data/..., pg_tblspc/...) plus compression extension. */
  backupFile: (stanza: string, label: string, name: string, ext: string) => `backup/${stanza}/${label}/${name}${ext}`,
  historyDir: (stanza: string) => `backup/${stanza}/backup.history`,
  historyManifest: (stanza: string, label: string) => `backup/${stanza}/backup.history/${label.slice(0, 4)}/${label}.manifest.gz`,
  latestLink: (stanza: string) => `backup/${stanza}/latest`,
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
