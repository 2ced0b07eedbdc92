/**
 * The per-file unit of work of a backup, run inside a worker (or on a remote): copy one file of
 * the data directory into the repository through sha1 → size → page-checksum → compress →
 * (encrypt) → sha1 → size, and report what was stored. Also the two cheap checks that avoid a copy:
 * delta (the file's SHA-1 equals the prior backup's) and resume (the repository already holds the
 * file from an interrupted run, verified by the SHA-1 of its stored bytes).
 */
import { err, PgbError } from "../../common/error.ts";
import { logDetail } from "../../common/log.ts";
import { rateLimitTake } from "../../common/rate-limit.ts";
import { findResult, type CompressType, type FilterResult, type FilterSpec } from "../../filter/filter.ts";
import { pageVerify } from "../../native/helper.ts";
import type { Storage, StorageRead, StorageWrite } from "../../storage/storage.ts";
import { type StorageSpec, workerStorage } from "../shared/storage.ts";
import { storeBlocks, type BackupBlockIncr, type BlockStoreResult } from "./block.ts";

export const BACKUP_FILE_JOB = "backup-file";

export interface BackupFileParams {
  pg: StorageSpec;
  repo: StorageSpec;
  /** Path relative to the data directory (follows tablespace and other links). */
  pgFile: string;
  /** Path relative to the repository (with compression extension). */
  repoFile: string;
  compressType: CompressType;
  compressLevel?: number;
  cipherPass?: string;
  bufferSize: number;
  /** Verify page checksums: block number of the first page, LSN limit (decimal). */
  pageChecksum?: { firstBlock: number; lsnLimit: string; pageSize: number };
  /** Delta: skip the copy when the file's SHA-1 and size equal these (the prior backup's). */
  delta?: { checksum: string; size: number };
  /** Resume: keep the stored file when its stored bytes' SHA-1 and size equal these. */
  resume?: { rck: string; repoSize: number; checksum: string; size: number };
  /** Store by blocks (repo-block); `unchanged`: the prior copy, referenced when no block changed. */
  block?: BackupBlockIncr & { unchanged?: { checksum: string; size: number } };
  /** A bundle member of a block incremental backup: compressed and encrypted raw (backup-bundle-raw). */
  raw?: boolean;
}

/**
 * A bundle (repo-bundle): small files stored back to back in one repository file, each through
 * its own filter chain, so each member is a complete compressed (and encrypted) stream that
 * restore reads by offset and length. Written atomically as a whole.
 */
export const BACKUP_BUNDLE_JOB = "backup-bundle";

export interface BackupBundleParams {
  repo: StorageSpec;
  /** Path of the bundle relative to the repository. */
  repoFile: string;
  bufferSize: number;
  /** The members, in order; their repoFile and resume are not used. */
  files: BackupFileParams[];
  /** The bundle's number (in block maps of its block incremental members). */
  bundleId: number;
}

export interface BackupFileResult {
  /** copied: stored now; unchanged: delta match (reference the prior backup); kept: resume match; missing: gone from the data directory. */
  status: "copied" | "unchanged" | "kept" | "missing";
  size: number;
  checksum?: string;
  repoSize?: number;
  rck?: string;
  pageErrors?: number[];
  pageAlign?: boolean;
  /** Copied into a bundle: where its stored bytes start. */
  bundleOffset?: number;
  /** Stored by blocks: the stored size of its map. */
  blockMapSize?: number;
}


export async function drain(s: Storage, path: string, filters: FilterSpec[], bufferSize: number) {
  const r = await s.openRead(path, { filters, bufferSize, ignoreMissing: true });
  if (!r) return null;
  try {
    while ((await r.read()) !== null);
  } finally {
    await r.close();
  }
  return r.results();
}

export async function backupFile(p: BackupFileParams): Promise<BackupFileResult> {
  const pg = await workerStorage(p.pg);
  const repo = await workerStorage(p.repo);

  if (p.resume) {
    const r = await drain(repo, p.repoFile, [{ type: "sha1" }, { type: "size" }], p.bufferSize);
    if (r && findResult(r, "sha1")!.hash === p.resume.rck && findResult(r, "size")!.size === p.resume.repoSize) {
      return { status: "kept", size: p.resume.size, checksum: p.resume.checksum, repoSize: p.resume.repoSize, rck: p.resume.rck };
    }
  }

  const unchanged = await deltaMatch(pg, p);
  if (unchanged) return unchanged;
  if (p.block) return backupBlockFile(pg, repo, p);

  // Filters run where the data is: for a remote data directory the compressed bytes cross the wire.
  const reader = await pg.openRead(p.pgFile, { filters: storeFilters(p), bufferSize: p.bufferSize, ignoreMissing: true });
  if (!reader) return { status: "missing", size: 0 };
  // Durability comes from one syncTree of the backup directory before the manifest is written.
  const writer = await repo.openWrite(p.repoFile, { bufferSize: p.bufferSize, sync: !repo.canSyncTree });
  try {
    await pump(reader, writer);
    await writer.close();
  } catch (e) {
    await writer.abort().catch(() => {});
    // The file went away while being read (a dropped table): not an error, it is not in the backup.
    if (isMissing(e)) return { status: "missing", size: 0 };
    throw e;
  }
  return copiedResult(pg, p, reader.results());
}

export async function backupBundle(b: BackupBundleParams): Promise<BackupFileResult[]> {
  const repo = await workerStorage(b.repo);
  const out: BackupFileResult[] = [];
  const writer = await repo.openWrite(b.repoFile, { bufferSize: b.bufferSize, sync: !repo.canSyncTree });
  let offset = 0;
  try {
    for (const p of b.files) {
      const pg = await workerStorage(p.pg);
      const unchanged = await deltaMatch(pg, p);
      if (unchanged) {
        out.push(unchanged);
        continue;
      }
      const reader = await pg.openRead(p.pgFile, { filters: p.block ? fileFilters(p) : storeFilters(p), bufferSize: p.bufferSize, ignoreMissing: true });
      if (!reader) {
        out.push({ status: "missing", size: 0 });
        continue;
      }
      const start = offset;
      try {
        if (p.block) {
          const stored = await storeBlocks(repo, reader, p.block, { ...p, bundleId: b.bundleId, startOffset: start }, async (chunk) => {
            await writer.write(chunk);
            offset += chunk.byteLength;
          });
          out.push(await blockResult(pg, p, reader, stored, start));
          continue;
        }
        await pump(reader, writer, (n) => (offset += n));
      } catch (e) {
        // Gone while being read: its bytes so far stay in the bundle, unreferenced (members are
        // found by offset, never by scanning).
        if (!isMissing(e)) throw e;
        out.push({ status: "missing", size: 0 });
        continue;
      }
      out.push({ ...(await copiedResult(pg, p, reader.results())), bundleOffset: start });
    }
    if (offset === 0) await writer.abort();
    else await writer.close();
  } catch (e) {
    await writer.abort().catch(() => {});
    throw e;
  }
  return out;
}

/** sha1 → size → page-checksum: what describes the PostgreSQL file. */
function fileFilters(p: BackupFileParams): FilterSpec[] {
  const filters: FilterSpec[] = [{ type: "sha1", id: "file" }, { type: "size", id: "file" }];
  if (p.pageChecksum) filters.push({ type: "page-checksum", ...p.pageChecksum });
  return filters;
}

/** The file's filters → compress → (encrypt) → sha1 → size: the file, then the stored bytes. */
function storeFilters(p: BackupFileParams): FilterSpec[] {
  const filters = fileFilters(p);
  if (p.compressType !== "none") filters.push({ type: "compress", compressType: p.compressType, level: p.compressLevel, raw: p.raw });
  if (p.cipherPass) filters.push({ type: "encrypt", pass: p.cipherPass, raw: p.raw });
  filters.push({ type: "sha1", id: "repo" }, { type: "size", id: "repo" });
  return filters;
}

/** A file stored by blocks on its own (.pgbi): written only when a block changed. */
async function backupBlockFile(pg: Storage, repo: Storage, p: BackupFileParams): Promise<BackupFileResult> {
  const reader = await pg.openRead(p.pgFile, { filters: fileFilters(p), bufferSize: p.bufferSize, ignoreMissing: true });
  if (!reader) return { status: "missing", size: 0 };
  let writer: StorageWrite | undefined;
  try {
    const stored = await storeBlocks(repo, reader, p.block!, { ...p, bundleId: 0, startOffset: 0 }, async (chunk) => {
      writer ??= await repo.openWrite(p.repoFile, { bufferSize: p.bufferSize, sync: !repo.canSyncTree });
      await writer.write(chunk);
    });
    await reader.close();
    await writer?.close();
    return await blockResult(pg, p, reader, stored);
  } catch (e) {
    await reader.close().catch(() => {});
    await writer?.abort().catch(() => {});
    if (isMissing(e)) return { status: "missing", size: 0 };
    throw e;
  }
}

/** The result of a file stored by blocks, or "unchanged" when no block changed (null `stored`). */
async function blockResult(pg: Storage, p: BackupFileParams, reader: StorageRead, stored: BlockStoreResult | null, bundleOffset?: number): Promise<BackupFileResult> {
  const results = reader.results();
  if (stored === null) {
    const size = findResult(results, "size", "file")!.size;
    const checksum = findResult(results, "sha1", "file")!.hash;
    const was = p.block!.unchanged;
    if (!was || was.checksum !== checksum || was.size !== size)
      throw err("ChecksumError", `every block of '${pg.path(p.pgFile)}' matches the prior map but its SHA-1 ${checksum} differs from the prior ${was?.checksum ?? "(none)"}`, "take a full backup: block checksums of this file collide.");
    return { status: "unchanged", size, checksum };
  }
  const out = await copiedResult(pg, p, [...results, { type: "size", id: "repo", size: stored.repoSize }, { type: "sha1", id: "repo", hash: stored.rck }]);
  return { ...out, bundleOffset, blockMapSize: stored.mapSize };
}

/** Delta: the file's SHA-1 and size still equal the prior backup's (or it is gone). */
async function deltaMatch(pg: Storage, p: BackupFileParams): Promise<BackupFileResult | undefined> {
  if (!p.delta) return undefined;
  const r = await drain(pg, p.pgFile, [{ type: "sha1" }, { type: "size" }], p.bufferSize);
  if (!r) return { status: "missing", size: 0 };
  const size = findResult(r, "size")!.size;
  const checksum = findResult(r, "sha1")!.hash;
  return checksum === p.delta.checksum && size === p.delta.size ? { status: "unchanged", size, checksum } : undefined;
}

export function isMissing(e: unknown): boolean {
  return e instanceof PgbError && e.kind === "FileMissingError";
}

/** Copy every chunk of the reader into the writer, telling `wrote` each chunk's size. Closes the reader. */
export async function pump(reader: StorageRead, writer: StorageWrite, wrote?: (bytes: number) => void): Promise<void> {
  try {
    for (let chunk = await reader.read(); chunk !== null; chunk = await reader.read()) {
      await rateLimitTake(chunk.byteLength);
      await writer.write(chunk);
      wrote?.(chunk.byteLength);
    }
  } catch (e) {
    await reader.close().catch(() => {});
    throw e;
  }
  await reader.close();
}

async function copiedResult(pg: Storage, p: BackupFileParams, results: FilterResult[]): Promise<BackupFileResult> {
  const out: BackupFileResult = {
    status: "copied",
    size: findResult(results, "size", "file")!.size,
    checksum: findResult(results, "sha1", "file")!.hash,
    repoSize: findResult(results, "size", "repo")!.size,
    rck: findResult(results, "sha1", "repo")!.hash,
  };
  const page = findResult(results, "page-checksum");
  if (page) {
    out.pageAlign = page.align;
    out.pageErrors = page.errors.length ? await recheckPages(pg, p, page.errors) : [];
    if (out.pageErrors.length) logDetail(`page checksum errors in '${pg.path(p.pgFile)}' before recheck: ${page.errorTotal}`);
  }
  return out;
}

/**
 * A page can fail verification because PostgreSQL was writing it while we read it (a torn read).
 * Read each failed page again on its own: it counts as an error only if it still fails.
 */
export async function recheckPages(pg: Storage, p: Pick<BackupFileParams, "pgFile" | "pageChecksum">, pages: number[]): Promise<number[]> {
  const pc = p.pageChecksum!;
  const still: number[] = [];
  const bad = new Uint32Array(1);
  const lsnLimit = BigInt(pc.lsnLimit);
  for (const page of pages) {
    const r = await pg.openRead(p.pgFile, { offset: page * pc.pageSize, limit: pc.pageSize, ignoreMissing: true, bufferSize: pc.pageSize });
    if (!r) return [];
    const buf = await r.read();
    await r.close();
    if (!buf || buf.byteLength < pc.pageSize) continue; // truncated since: the page no longer exists
    if (pageVerify(buf, 1, pc.pageSize, pc.firstBlock + page, lsnLimit, bad) > 0) still.push(page);
  }
  return still;
}
