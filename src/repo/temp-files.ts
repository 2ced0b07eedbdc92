/**
 * Temporary files a killed writer leaves in a stanza's repository directories: archive-push's
 * stage (NAME.PID-RANDOM.pgbunker.tmp beside the WAL it was becoming), an atomic write of an info
 * file or of the latest link. No reader takes them for WAL or a backup, but nothing else removes
 * them: archive-push sweeps the directory it pushes to, expire sweeps the stanza, verify reports.
 *
 * Backup directories are not swept here: a killed backup's directory is not in backup.info, so the
 * next backup resumes it (removing what its manifest does not list) or removes it, as expire does.
 */
import type { Storage, StorageInfo } from "../storage/storage.ts";
import { isTempFile, repoPath } from "./layout.ts";

export interface TempFile {
  /** Path relative to the repository. */
  path: string;
  size: number;
  /** Modification time, seconds since the epoch. */
  mtime: number;
}

/** The temporary files directly in one directory (none when it does not exist). */
export async function tempFilesIn(storage: Storage, dir: string): Promise<TempFile[]> {
  return tempFilesOf(dir, (await storage.list(dir, { ignoreMissing: true, owners: false })) ?? []);
}

/** The temporary files among the entries of a listing of dir (a caller that lists for more than temps). */
export function tempFilesOf(dir: string, entries: readonly StorageInfo[]): TempFile[] {
  return entries
    // Links too: the latest link is replaced through a temporary link.
    .filter((e) => e.type !== "path" && isTempFile(e.name))
    .map((e) => ({ path: `${dir}/${e.name}`, size: e.size, mtime: e.mtime }))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
}

/**
 * Every temporary file of a stanza outside backup directories: archive/STANZA, its archive ids
 * and their segment directories; backup/STANZA and backup.history/YYYY.
 */
export async function stanzaTempFiles(storage: Storage, stanza: string): Promise<TempFile[]> {
  const dirs: string[] = [];
  const subdirs = async (dir: string): Promise<string[]> =>
    ((await storage.list(dir, { ignoreMissing: true })) ?? []).filter((e) => e.type === "path").map((e) => `${dir}/${e.name}`);
  const archive = repoPath.archiveStanza(stanza);
  dirs.push(archive);
  for (const id of await subdirs(archive)) dirs.push(id, ...(await subdirs(id)));
  dirs.push(repoPath.backupStanza(stanza), ...(await subdirs(repoPath.historyDir(stanza))));
  const out: TempFile[] = [];
  for (const dir of dirs) out.push(...(await tempFilesIn(storage, dir)));
  return out;
}

/**
 * Remove the temporary files last modified before `cutoff` (seconds since the epoch); returns
 * those removed. One that vanished meanwhile (another sweep, its push renamed it) is no error.
 */
export async function removeStaleTemps(storage: Storage, temps: readonly TempFile[], cutoff: number): Promise<TempFile[]> {
  const stale = temps.filter((t) => t.mtime < cutoff);
  for (const t of stale) await storage.remove(t.path, { ignoreMissing: true });
  return stale;
}
