/**
 * The verify job: read one stored file (a backup file, a bundled file or a WAL segment), undo its
 * encryption and compression, and compare what comes out with what the repository recorded: the
 * SHA-1 and size of the stored bytes (rck, repo-size, when recorded) and of the original file
 * (checksum, size). One pure unit of work over a Storage, so a worker thread or a remote can run it.
 */
import { PgbError } from "../../common/error.ts";
import { findResult, type CompressType, type FilterResult, type FilterSpec } from "../../filter/filter.ts";
import { Pipeline } from "../../filter/pipeline.ts";
import { parseWalHeader } from "../../postgres/wal.ts";
import type { Storage } from "../../storage/storage.ts";
import { type StorageSpec, workerStorage } from "../shared/storage.ts";
import { verifyBlockFile, type VerifyBlockParams } from "./block.ts";

/** Job type (command/jobs.ts): params are a batch of VerifyFileParams, the result their results in order. */
export const VERIFY_FILE_JOB = "verify-file";

export type VerifyStatus = "ok" | "missing" | "checksum" | "size" | "other";

export interface VerifyFileParams {
  storage: StorageSpec;
  /** Path relative to the repository. */
  path: string;
  /** Bundled file: where it starts in the bundle and how many stored bytes it has. */
  offset?: number;
  limit?: number;
  /** How the stored bytes are compressed (from the file's extension, or the backup's option for bundles). */
  compressType: CompressType;
  /** Passphrase of the file (backup files: the manifest's; WAL: archive.info's). */
  cipherPass?: string;
  /** What the repository recorded; what is undefined is not checked. */
  size?: number;
  sha1?: string;
  repoSize?: number;
  repoSha1?: string;
  /** Check only the stored bytes (rck, repo-size): block-incremental files are not one stream. */
  raw?: boolean;
  /** A bundle member of a backup-bundle-raw (block incremental) backup: encrypted without the cipher magic. */
  cipherRaw?: boolean;
  /** A block-incremental file: then its map and every block the map references (verify/block.ts). */
  block?: VerifyBlockParams;
  /** Also return the WAL segment size from the segment's long page header. */
  walHeader?: boolean;
  /** buffer-size: the largest buffer to use (small files get a smaller one). */
  bufferSize?: number;
}

export interface VerifyFileResult {
  status: VerifyStatus;
  detail?: string;
  /** Size of what came out (the original file's size), when it could be read. */
  size?: number;
  /** Segment size read from a WAL header (walHeader). */
  segmentSize?: number;
}


function filtersFor(p: VerifyFileParams): FilterSpec[] {
  const out: FilterSpec[] = [{ type: "sha1", id: "repo" }, { type: "size", id: "repo" }];
  if (p.raw) return [...out, { type: "sha1", id: "file" }, { type: "size", id: "file" }];
  if (p.cipherPass) out.push({ type: "decrypt", pass: p.cipherPass, raw: p.cipherRaw });
  // The file SHA-1 below is what verify compares, when one is recorded.
  if (p.compressType !== "none") out.push({ type: "decompress", compressType: p.compressType, outputVerified: p.sha1 !== undefined });
  out.push({ type: "sha1", id: "file" }, { type: "size", id: "file" });
  return out;
}

/**
 * Buffers sized to the file: most files of a backup are a few KB, and allocating a full buffer-size
 * (1MiB) buffer for each of them costs more than reading them.
 */
function bufferFor(p: VerifyFileParams): number {
  const max = p.bufferSize ?? 1024 * 1024;
  const want = Math.max(p.size ?? max, p.repoSize ?? 0);
  let size = 16 * 1024;
  while (size < want && size < max) size *= 2;
  return Math.min(size, max);
}

/**
 * Read the stored bytes and run them through `filters` here, keeping nothing but the results and
 * the first bytes when asked (WAL header): verify needs no output, so none is collected or copied.
 * (Over a remote storage the stored, compressed bytes are what crosses the network.)
 */
async function readThrough(storage: Storage, p: VerifyFileParams, filters: FilterSpec[], keepHead: boolean): Promise<{ results: FilterResult[]; head?: Uint8Array } | null> {
  const bufferSize = bufferFor(p);
  const r = await storage.openRead(p.path, { ignoreMissing: true, offset: p.offset, limit: p.limit, bufferSize });
  if (!r) return null;
  let head: Uint8Array | undefined;
  const pipeline = new Pipeline(filters, (out) => {
    if (keepHead && head === undefined && out.byteLength >= 40) head = out.slice(0, 40);
  }, bufferSize);
  let ended = false;
  try {
    for (let c = await r.read(); c !== null; c = await r.read()) pipeline.process(c);
    pipeline.end();
    ended = true;
    return { results: pipeline.results(), head };
  } finally {
    if (!ended) pipeline.free();
    await r.close();
  }
}

/** The job: a batch of files (small files go many to a job, so messages do not dominate). */
export async function verifyFiles(files: readonly VerifyFileParams[]): Promise<VerifyFileResult[]> {
  const out: VerifyFileResult[] = [];
  for (const f of files) out.push(await verifyFile(f));
  return out;
}

export async function verifyFile(p: VerifyFileParams): Promise<VerifyFileResult> {
  const storage = await workerStorage(p.storage);
  let read: Awaited<ReturnType<typeof readThrough>>;
  try {
    read = await readThrough(storage, p, filtersFor(p), p.walHeader === true);
  } catch (e) {
    if (!(e instanceof PgbError)) throw e;
    // Undecodable bytes: if the stored bytes no longer match their recorded SHA-1 they were
    // damaged in the repository (checksum); otherwise the reason is the decoder's (other).
    if (p.repoSha1 !== undefined) {
      const raw = await readThrough(storage, p, [{ type: "sha1", id: "repo" }], false).catch(() => null);
      const sha1 = raw ? findResult(raw.results, "sha1", "repo")?.hash : undefined;
      if (sha1 !== undefined && sha1 !== p.repoSha1) return { status: "checksum", detail: `stored bytes have SHA-1 ${sha1}, expected ${p.repoSha1}` };
    }
    return { status: "other", detail: `${e.kind}: ${e.message}` };
  }
  if (read === null) return { status: "missing" };
  const repoSize = findResult(read.results, "size", "repo")!.size;
  const repoSha1 = findResult(read.results, "sha1", "repo")!.hash;
  const size = findResult(read.results, "size", "file")!.size;
  const sha1 = findResult(read.results, "sha1", "file")!.hash;
  if (p.size !== undefined && size !== p.size) return { status: "size", detail: `size is ${size}, expected ${p.size}` };
  if (p.sha1 !== undefined && sha1 !== p.sha1) return { status: "checksum", detail: `SHA-1 is ${sha1}, expected ${p.sha1}` };
  if (p.repoSize !== undefined && repoSize !== p.repoSize) return { status: "size", detail: `stored size is ${repoSize}, expected ${p.repoSize}` };
  if (p.repoSha1 !== undefined && repoSha1 !== p.repoSha1) return { status: "checksum", detail: `stored bytes have SHA-1 ${repoSha1}, expected ${p.repoSha1}` };
  if (p.block) return verifyBlockFile(storage, { path: p.path, offset: p.offset ?? 0, storedSize: repoSize, cipherPass: p.cipherPass }, p.block);
  let segmentSize: number | undefined;
  if (p.walHeader && read.head) {
    try {
      segmentSize = parseWalHeader(read.head, p.path).segmentSize;
    } catch {
      segmentSize = undefined;
    }
  }
  return { status: "ok", size, segmentSize };
}
