/**
 * Finding WAL in the archive: a segment is stored as SEGMENT-SHA1[.ext] in the directory named
 * after its first 16 hex digits, so one directory listing answers "is it there, and under which
 * name". Used by archive-get, archive-push (duplicate check), backup (archive check) and verify.
 */
import { err } from "../common/error.ts";
import type { Storage } from "../storage/storage.ts";
import { parseWalFileName, repoPath } from "./layout.ts";

export interface StoredWal {
  /** File name in the archive: SEGMENT-SHA1[.ext] */
  file: string;
  /** Path relative to the repository. */
  path: string;
  sha1: string;
  ext: string;
}

/**
 * The stored copies of a segment (or .partial) in one archive id. More than one means the same
 * segment was pushed with different content (possible after a failover): callers decide.
 */
export async function walFindAll(repo: Storage, stanza: string, archiveId: string, walName: string): Promise<StoredWal[]> {
  const dir = repoPath.walDir(stanza, archiveId, walName);
  return walCopiesOf(dir, await repo.names(dir), walName);
}

/** The stored copies of a segment among the names of its directory dir (a caller that lists it for more). */
export function walCopiesOf(dir: string, names: readonly string[], walName: string): StoredWal[] {
  const out: StoredWal[] = [];
  for (const name of names) {
    const p = parseWalFileName(name);
    if (p && p.wal === walName) out.push({ file: name, path: `${dir}/${name}`, sha1: p.sha1, ext: p.ext });
  }
  return out;
}

/** The stored copy of a segment, undefined when absent; an error when ambiguous. */
export async function walFind(repo: Storage, stanza: string, archiveId: string, walName: string): Promise<StoredWal | undefined> {
  const all = await walFindAll(repo, stanza, archiveId, walName);
  if (all.length > 1)
    throw err(
      "ArchiveDuplicateError",
      `duplicates found in archive for WAL segment ${walName}: ${all.map((w) => w.file).join(", ")}`,
      "are multiple primaries archiving to this stanza?",
    );
  return all[0];
}

/** Every segment name stored in an archive id directory XXXXXXXXXXXXXXXX (for range checks). */
export async function walListDir(repo: Storage, stanza: string, archiveId: string, dir16: string): Promise<Map<string, StoredWal>> {
  const dir = `${repoPath.archiveIdPath(stanza, archiveId)}/${dir16}`;
  const out = new Map<string, StoredWal>();
  for (const name of await repo.names(dir)) {
    const p = parseWalFileName(name);
    if (p) out.set(p.wal, { file: name, path: `${dir}/${name}`, sha1: p.sha1, ext: p.ext });
  }
  return out;
}
