/**
 * A large file backed up by several workers (shared/chunk.ts says when): each chunk job reads one
 * range of the file and compresses it into its own complete frame (lz4/zstd, content size in the
 * header), checking its pages with block numbers offset by the chunk's start, into a part file
 * beside the final name; a hash job reads the whole file once for its SHA-1 and size, in parallel
 * with the chunk jobs (a SHA-1 cannot be combined from chunk SHA-1s); the join job writes the
 * parts in file order into the one repository file, atomically as any other, hashing the stored
 * bytes as they pass (rck: also over the whole stored file), and removes the parts.
 *
 * The chunk jobs and the hash job read the file separately, and PostgreSQL may write a page in
 * between: both take a CRC-32C of every chunk's bytes (nearly free), and the planner joins only
 * when they agree, the file's size too. Otherwise (a page written, a relation truncated or
 * extended meanwhile) the parts are dropped and the file is copied as one job, as before.
 *
 * The concatenated frames are one valid lz4/zstd stream: pgBackRest restores and verifies it.
 */
import { logDebug } from "../../common/log.ts";
import { createFilter } from "../../filter/pipeline.ts";
import { findResult, type FilterSpec } from "../../filter/filter.ts";
import { crc32c } from "../../native/helper.ts";
import { rateLimitTake } from "../../common/rate-limit.ts";
import { TEMP_EXT } from "../../storage/storage.ts";
import { type StorageSpec, workerStorage } from "../shared/storage.ts";
import { isMissing, pump, recheckPages, type BackupFileParams } from "./file.ts";

export const BACKUP_CHUNK_JOB = "backup-chunk";
export const BACKUP_CHUNK_HASH_JOB = "backup-chunk-hash";
export const BACKUP_CHUNK_JOIN_JOB = "backup-chunk-join";

export interface BackupChunkParams {
  /** The whole file's parameters (pageChecksum.firstBlock is the file's first block). */
  file: BackupFileParams;
  /** Chunk number (0-based) and how many the file has, for the log and the part's name. */
  index: number;
  count: number;
  offset: number;
  length: number;
}

export interface BackupChunkResult {
  /** short: the file ended inside this chunk (it shrank since planned). */
  status: "copied" | "missing" | "short";
  repoSize: number;
  /** CRC-32C of the chunk's bytes as read. */
  crc: number;
  /** File-relative pages that failed and still fail when read again. */
  pageErrors?: number[];
  pageAlign?: boolean;
}

/** A chunk's part file: beside the final name, with the temp extension a resumed backup removes. */
export function chunkPartFile(repoFile: string, index: number): string {
  return `${repoFile}.part${index}${TEMP_EXT}`;
}

export async function backupChunk(c: BackupChunkParams): Promise<BackupChunkResult> {
  const p = c.file;
  logDebug(`backup chunk ${c.index + 1}/${c.count} of ${p.pgFile} (offset ${c.offset}, ${c.length} bytes)`);
  const pg = await workerStorage(p.pg);
  const repo = await workerStorage(p.repo);
  const pc = p.pageChecksum;
  const firstPage = pc ? c.offset / pc.pageSize : 0;
  // No SHA-1 here: the file's is the hash job's, the stored file's the join's.
  const filters: FilterSpec[] = [{ type: "size", id: "file" }, { type: "crc32c" }];
  if (pc) filters.push({ type: "page-checksum", ...pc, firstBlock: pc.firstBlock + firstPage });
  if (p.compressType !== "none") filters.push({ type: "compress", compressType: p.compressType, level: p.compressLevel, contentSize: c.length });
  filters.push({ type: "size", id: "repo" });
  const reader = await pg.openRead(p.pgFile, { offset: c.offset, limit: c.length, filters, bufferSize: p.bufferSize, ignoreMissing: true });
  if (!reader) return { status: "missing", repoSize: 0, crc: 0 };
  const part = chunkPartFile(p.repoFile, c.index);
  const writer = await repo.openWrite(part, { atomic: false, bufferSize: p.bufferSize, sync: false });
  try {
    await pump(reader, writer);
    await writer.close();
  } catch (e) {
    await writer.abort().catch(() => {});
    if (isMissing(e)) return { status: "missing", repoSize: 0, crc: 0 };
    // The compressor refuses to end a frame short of its content size: the file shrank.
    let read: number | undefined;
    try {
      read = findResult(reader.results(), "size", "file")?.size;
    } catch {} // a pipeline that failed may have no results to give
    if (read !== undefined && read < c.length) return { status: "short", repoSize: 0, crc: 0 };
    throw e;
  }
  const results = reader.results();
  const out: BackupChunkResult = { status: "copied", repoSize: findResult(results, "size", "repo")!.size, crc: findResult(results, "crc32c")!.crc };
  const page = findResult(results, "page-checksum");
  if (page && pc) {
    // Only the last chunk can end off a page boundary (chunks are whole pages).
    out.pageAlign = page.align;
    out.pageErrors = page.errors.length ? await recheckPages(pg, p, page.errors.map((n) => n + firstPage)) : [];
  }
  return out;
}

export interface BackupChunkHashParams {
  pg: StorageSpec;
  pgFile: string;
  chunkSize: number;
  bufferSize: number;
}

/** The whole file's SHA-1 and size, and each chunk's CRC-32C, read in parallel with the chunk jobs. */
export async function backupChunkHash(p: BackupChunkHashParams): Promise<{ size: number; checksum: string; crcs: number[] } | null> {
  logDebug(`backup chunk hash of ${p.pgFile}`);
  const pg = await workerStorage(p.pg);
  const reader = await pg.openRead(p.pgFile, { bufferSize: p.bufferSize, ignoreMissing: true });
  if (!reader) return null;
  const sha1 = createFilter({ type: "sha1" });
  const crcs: number[] = [];
  let size = 0;
  let crc = 0;
  const none = () => {};
  try {
    for (let buf = await reader.read(); buf !== null; buf = await reader.read()) {
      await rateLimitTake(buf.byteLength);
      sha1.process(buf, none);
      // Split the CRC at chunk boundaries (a buffer may straddle one).
      let at = 0;
      while (at < buf.byteLength) {
        const room = p.chunkSize - (size % p.chunkSize);
        const n = Math.min(room, buf.byteLength - at);
        crc = crc32c(buf.subarray(at, at + n), crc);
        at += n;
        size += n;
        if (n === room) {
          crcs.push(crc);
          crc = 0;
        }
      }
    }
  } catch (e) {
    if (isMissing(e)) return null;
    throw e;
  } finally {
    await reader.close();
  }
  if (size % p.chunkSize !== 0) crcs.push(crc);
  sha1.flush(none);
  return { size, checksum: findResult([sha1.result()], "sha1")!.hash, crcs };
}

export interface BackupChunkJoinParams {
  repo: StorageSpec;
  repoFile: string;
  count: number;
  bufferSize: number;
  /** Drop the parts without joining them (the file is copied as one job instead). */
  drop?: boolean;
}

/** The parts in order into the repository file; its stored size and SHA-1. */
export async function backupChunkJoin(j: BackupChunkJoinParams): Promise<{ repoSize: number; rck: string } | null> {
  const repo = await workerStorage(j.repo);
  const parts = Array.from({ length: j.count }, (_, i) => chunkPartFile(j.repoFile, i));
  if (j.drop) {
    for (const part of parts) await repo.remove(part, { ignoreMissing: true });
    return null;
  }
  logDebug(`backup chunk join of ${j.count} parts into ${j.repoFile}`);
  const writer = await repo.openWrite(j.repoFile, { bufferSize: j.bufferSize, sync: !repo.canSyncTree, filters: [{ type: "sha1" }, { type: "size" }] });
  try {
    for (const part of parts) await pump((await repo.openRead(part, { bufferSize: j.bufferSize }))!, writer);
  } catch (e) {
    await writer.abort().catch(() => {});
    throw e;
  }
  const results = await writer.close();
  for (const part of parts) await repo.remove(part, { ignoreMissing: true });
  return { repoSize: findResult(results, "size")!.size, rck: findResult(results, "sha1")!.hash };
}
