/**
 * Find a WAL file in the archive and copy it out: the unit of work archive-get runs in-process
 * and the asynchronous prefetcher runs in its workers.
 *
 * A file is looked for in every repository, in the archive ids of the cluster that asks for it
 * (newest first). The copy is decrypted, decompressed and checked against the SHA-1 in its name
 * (and the segment size) before it is renamed into place, so a corrupt archive never hands
 * PostgreSQL a bad segment and a failed copy never leaves a partial file.
 */
import { basename } from "node:path";
import { err, errorToWire, type WireError } from "../../../common/error.ts";
import { compressTypeOfName } from "../../../filter/compress.ts";
import { findResult, type FilterSpec } from "../../../filter/filter.ts";
import { walFileKind } from "../../../postgres/wal.ts";
import { parseWalFileName, walNameHasChecksum, walRepoPath } from "../../../repo/layout.ts";
import { walFind } from "../../../repo/wal-find.ts";
import type { Storage } from "../../../storage/storage.ts";
import { openStorage, type StorageSpec } from "../../shared/storage.ts";
import { asPgbError, repoWarning, tempSuffix, type ArchiveRepo, type ClusterIdentity, type RepoFailure } from "../common.ts";

/** One stored copy of a WAL file. */
export interface GetSource {
  repoIndex: number;
  storage: Storage;
  archiveId: string;
  /** Repository-relative path of the stored file. */
  path: string;
  walPass?: string;
}

/** Where each repository holds the file (at most one source per repository, in repository order). */
export async function findWalFile(repos: ArchiveRepo[], stanza: string, cluster: ClusterIdentity, name: string): Promise<{ sources: GetSource[]; failures: RepoFailure[] }> {
  const sources: GetSource[] = [];
  const failures: RepoFailure[] = [];
  for (const repo of repos) {
    try {
      const ids = repo.info.archiveIdsFor(cluster.version, cluster.systemId);
      if (ids.length === 0)
        throw err(
          "ArchiveMismatchError",
          `unable to retrieve the archive id for database version '${cluster.version}' and system-id '${cluster.systemId}'`,
          "is pg1-path the cluster this stanza backs up? after a major upgrade, run stanza-upgrade.",
        );
      for (const archiveId of ids) {
        const path = await storedPath(repo.storage, stanza, archiveId, name);
        if (path) {
          sources.push({ repoIndex: repo.index, storage: repo.storage, archiveId, path, walPass: repo.walPass });
          break;
        }
      }
    } catch (e) {
      failures.push({ index: repo.index, error: asPgbError(e) });
    }
  }
  return { sources, failures };
}

async function storedPath(storage: Storage, stanza: string, archiveId: string, name: string): Promise<string | undefined> {
  if (walNameHasChecksum(name)) return (await walFind(storage, stanza, archiveId, name))?.path;
  const path = walRepoPath(stanza, archiveId, name);
  return (await storage.exists(path)) ? path : undefined;
}

export interface GetDestination {
  storage: Storage;
  path: string;
  /** fsync the copy (spool files must survive a crash; PostgreSQL syncs what it keeps itself). */
  sync: boolean;
}

/**
 * Copy the file from the first source that yields a valid copy; a corrupt or unreadable copy in one
 * repository falls through to the next. Returns the source used and the failures before it (for
 * the caller to warn about).
 */
export async function getWalFile(name: string, sources: GetSource[], dest: GetDestination, opts: { walSegmentSize?: number; bufferSize?: number } = {}): Promise<{ used: GetSource; skipped: RepoFailure[] }> {
  const failures: RepoFailure[] = [];
  for (const source of sources) {
    try {
      await copyOut(name, source, dest, opts);
      return { used: source, skipped: failures };
    } catch (e) {
      failures.push({ index: source.repoIndex, error: asPgbError(e) });
    }
  }
  const detail = failures.map((f) => `repo${f.index}: ${where(sources, f.index)} [${f.error.kind}] ${f.error.message}`);
  throw err(failures[0]?.error.kind ?? "FileMissingError", `unable to get ${name}:\n${detail.join("\n")}`, failures[0]?.error.hints);
}

function where(sources: GetSource[], index: number): string {
  const s = sources.find((x) => x.repoIndex === index);
  return s ? s.path.split("/").slice(2).join("/") : "";
}

async function copyOut(name: string, source: GetSource, dest: GetDestination, opts: { walSegmentSize?: number; bufferSize?: number }): Promise<void> {
  const file = basename(source.path);
  const stored = parseWalFileName(file);
  // The filters run on the writing side, so decompressed bytes go straight to the file without
  // being collected; the copy lands under a private name until it has been verified.
  const filters: FilterSpec[] = [];
  if (source.walPass) filters.push({ type: "decrypt", pass: source.walPass });
  const compressType = compressTypeOfName(file);
  // The SHA-1 below is checked against the one in the segment's name before the copy is placed.
  if (stored && compressType !== "none") filters.push({ type: "decompress", compressType, outputVerified: true });
  filters.push({ type: "sha1" }, { type: "size" });

  const temp = `${dest.path}.${tempSuffix()}.pgbunker.tmp`;
  let placed = false;
  try {
    const { write: results } = await source.storage.copyTo(source.path, dest.storage, temp, {
      read: { bufferSize: opts.bufferSize },
      write: { atomic: false, sync: dest.sync, filters, bufferSize: opts.bufferSize },
    });
    const sha1 = findResult(results, "sha1")!.hash;
    const size = findResult(results, "size")!.size;
    if (stored && sha1 !== stored.sha1)
      throw err(
        "ChecksumError",
        `WAL file '${source.storage.path(source.path)}' is corrupt: its content has SHA-1 ${sha1}, its name says ${stored.sha1}`,
        "the archived copy was damaged after it was written; it cannot be used for recovery. run 'verify' to find other damaged files.",
      );
    if (opts.walSegmentSize && walFileKind(name) === "segment" && size !== opts.walSegmentSize)
      throw err(
        "FormatError",
        `WAL file '${source.storage.path(source.path)}' holds ${size} bytes, expected a ${opts.walSegmentSize}-byte segment`,
        "the archived copy is truncated or from a cluster with another wal_segment_size.",
      );
    await dest.storage.move(temp, dest.path);
    placed = true;
  } finally {
    if (!placed) await dest.storage.remove(temp, { ignoreMissing: true }).catch(() => {});
  }
}

/** getWalFile as a worker job (storages as specs, each worker opens its own). */
export interface GetFileJob {
  name: string;
  sources: (Omit<GetSource, "storage"> & { spec: StorageSpec })[];
  dest: Omit<GetDestination, "storage"> & { spec: StorageSpec };
  walSegmentSize?: number;
  bufferSize?: number;
}

export type GetOutcome = { ok: true; repoIndex: number; archiveId: string; warnings: string[] } | { ok: false; error: WireError };

export function getOutcome(got: Awaited<ReturnType<typeof getWalFile>>): GetOutcome {
  return { ok: true, repoIndex: got.used.repoIndex, archiveId: got.used.archiveId, warnings: got.skipped.map(repoWarning) };
}

export async function getFileJob(job: GetFileJob): Promise<GetOutcome> {
  const opened: Storage[] = [];
  const open = async (spec: StorageSpec) => {
    const s = await openStorage(spec);
    opened.push(s);
    return s;
  };
  try {
    const sources: GetSource[] = [];
    for (const s of job.sources) sources.push({ repoIndex: s.repoIndex, archiveId: s.archiveId, path: s.path, walPass: s.walPass, storage: await open(s.spec) });
    const dest = { path: job.dest.path, sync: job.dest.sync, storage: await open(job.dest.spec) };
    return getOutcome(await getWalFile(job.name, sources, dest, { walSegmentSize: job.walSegmentSize, bufferSize: job.bufferSize }));
  } catch (e) {
    return { ok: false, error: errorToWire(e) };
  } finally {
    for (const s of opened) await s.close();
  }
}
