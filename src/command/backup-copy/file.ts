/**
 * The per-file unit of backup-copy, run in a worker: read a stored file (or a member of a bundle)
 * from the source repository, check the SHA-1 and size of its content against the manifest, and
 * write it into the target repository as the target stores files (its compression, its
 * passphrase). Only the Storage contract is used, so any pair of drivers works.
 *
 * When both sides store alike (same compression, no encryption) the stored bytes are written as
 * they are and decompressed on the side only to be checked; otherwise they are decrypted,
 * decompressed, checked, compressed and encrypted again in one pass. A stored file the target
 * already holds from an interrupted copy is kept when its stored bytes' SHA-1 still matches.
 */
import { err } from "../../common/error.ts";
import { rateLimitTake } from "../../common/rate-limit.ts";
import { findResult, type CompressType, type FilterSpec } from "../../filter/filter.ts";
import { Pipeline } from "../../filter/pipeline.ts";
import type { Storage, StorageWrite } from "../../storage/storage.ts";
import { type StorageSpec, workerStorage } from "../shared/storage.ts";

export const COPY_FILE_JOB = "backup-copy-file";
export const COPY_BUNDLE_JOB = "backup-copy-bundle";

/** How one side stores files. */
export interface StoreFormat {
  compressType: CompressType;
  compressLevel?: number;
  cipherPass?: string;
}

export interface CopyCommon {
  source: StorageSpec;
  target: StorageSpec;
  from: StoreFormat;
  to: StoreFormat;
  bufferSize: number;
}

/** What the content must be: the manifest's (or a WAL name's) SHA-1 and size; none for files that have none (history). */
export interface Expect {
  checksum?: string;
  size?: number;
  /** Name for messages. */
  name: string;
}

export interface CopyFileParams extends CopyCommon {
  sourceFile: string;
  targetFile: string;
  expect: Expect;
  /** An interrupted copy recorded this file: keep the target's when its stored bytes still match. */
  resume?: { rck: string; repoSize: number };
}

export interface CopyBundleParams extends CopyCommon {
  sourceFile: string;
  targetFile: string;
  members: (Expect & { offset: number; repoSize: number })[];
}

export interface CopiedFile {
  status: "copied" | "kept";
  /** Stored bytes in the target: size and SHA-1. */
  repoSize: number;
  rck: string;
  /** Size of the content (what was checked). */
  size: number;
  /** Bundles: where the member starts in the target's bundle. */
  bundleOffset?: number;
}

function decodeSpecs(f: StoreFormat): FilterSpec[] {
  const out: FilterSpec[] = [];
  if (f.cipherPass) out.push({ type: "decrypt", pass: f.cipherPass });
  if (f.compressType !== "none") out.push({ type: "decompress", compressType: f.compressType });
  return out;
}

function encodeSpecs(f: StoreFormat): FilterSpec[] {
  const out: FilterSpec[] = [];
  if (f.compressType !== "none") out.push({ type: "compress", compressType: f.compressType, level: f.compressLevel });
  if (f.cipherPass) out.push({ type: "encrypt", pass: f.cipherPass });
  return out;
}

/** Stored bytes written as they are: both sides store alike and neither encrypts (a new passphrase means new bytes). */
export function storesAlike(from: StoreFormat, to: StoreFormat): boolean {
  return from.compressType === to.compressType && !from.cipherPass && !to.cipherPass;
}

/**
 * Stream one stored file (the range offset..offset+limit of it) into `writer`, returning what was
 * written and the content's SHA-1/size, which are checked against `expect` before returning.
 */
async function transfer(src: Storage, path: string, range: { offset?: number; limit?: number }, writer: StorageWrite, c: CopyCommon, expect: Expect): Promise<Omit<CopiedFile, "status">> {
  const alike = storesAlike(c.from, c.to);
  const pending: Uint8Array[] = [];
  // Alike: the chunk itself is written; the pipeline only checks. Otherwise the pipeline's output is written.
  const check = new Pipeline(
    alike
      ? [{ type: "sha1", id: "repo" }, { type: "size", id: "repo" }, ...decodeSpecs(c.from), { type: "sha1", id: "file" }, { type: "size", id: "file" }]
      : [...decodeSpecs(c.from), { type: "sha1", id: "file" }, { type: "size", id: "file" }, ...encodeSpecs(c.to), { type: "sha1", id: "repo" }, { type: "size", id: "repo" }],
    alike ? () => {} : (out) => void pending.push(out.slice()),
    c.bufferSize,
  );
  const r = await src.openRead(path, { offset: range.offset, limit: range.limit, bufferSize: c.bufferSize });
  if (!r) throw err("FileMissingError", `unable to open missing file '${src.path(path)}' for read`);
  const flush = async () => {
    for (const out of pending.splice(0)) await writer.write(out);
  };
  try {
    for (let chunk = await r.read(); chunk !== null; chunk = await r.read()) {
      await rateLimitTake(chunk.byteLength);
      if (alike) await writer.write(chunk);
      check.process(chunk);
      await flush();
    }
    check.end();
    await flush();
  } finally {
    check.free();
    await r.close();
  }
  const results = check.results();
  const size = findResult(results, "size", "file")!.size;
  const checksum = findResult(results, "sha1", "file")!.hash;
  if ((expect.size !== undefined && size !== expect.size) || (expect.checksum !== undefined && checksum !== expect.checksum))
    throw err(
      "ChecksumError",
      `'${src.path(path)}'${range.offset !== undefined ? ` (offset ${range.offset})` : ""}, ${expect.name} in the source repository, holds ${size} bytes with SHA-1 ${checksum}, expected ${expect.size ?? "any size"} with ${expect.checksum ?? "any SHA-1"}`,
      "the source copy is damaged: run 'pgbunker verify' on the source repository; nothing of this backup was listed in the target.",
    );
  return { size, repoSize: findResult(results, "size", "repo")!.size, rck: findResult(results, "sha1", "repo")!.hash };
}

/** The target file's stored bytes match what an interrupted copy recorded. */
async function stillThere(target: Storage, path: string, want: { rck: string; repoSize: number }, bufferSize: number): Promise<boolean> {
  const r = await target.openRead(path, { ignoreMissing: true, filters: [{ type: "sha1" }, { type: "size" }], bufferSize });
  if (!r) return false;
  try {
    while ((await r.read()) !== null);
  } finally {
    await r.close();
  }
  const res = r.results();
  return findResult(res, "sha1")!.hash === want.rck && findResult(res, "size")!.size === want.repoSize;
}

export async function copyFile(p: CopyFileParams): Promise<CopiedFile> {
  const src = await workerStorage(p.source);
  const dst = await workerStorage(p.target);
  if (p.resume && (await stillThere(dst, p.targetFile, p.resume, p.bufferSize)))
    return { status: "kept", repoSize: p.resume.repoSize, rck: p.resume.rck, size: p.expect.size ?? 0 };
  // Durability: one syncTree of the target before the manifest is written (or a sync per file where the driver has none).
  const w = await dst.openWrite(p.targetFile, { bufferSize: p.bufferSize, sync: !dst.canSyncTree });
  try {
    const out = await transfer(src, p.sourceFile, {}, w, p, p.expect);
    await w.close();
    return { status: "copied", ...out };
  } catch (e) {
    await w.abort().catch(() => {});
    throw e;
  }
}

/** A bundle: its members, in order, each one complete stream, into one new bundle written atomically. */
export async function copyBundle(p: CopyBundleParams): Promise<CopiedFile[]> {
  const src = await workerStorage(p.source);
  const dst = await workerStorage(p.target);
  const w = await dst.openWrite(p.targetFile, { bufferSize: p.bufferSize, sync: !dst.canSyncTree });
  const out: CopiedFile[] = [];
  let offset = 0;
  try {
    for (const m of p.members) {
      const r = await transfer(src, p.sourceFile, { offset: m.offset, limit: m.repoSize }, w, p, m);
      out.push({ status: "copied", ...r, bundleOffset: offset });
      offset += r.repoSize;
    }
    await w.close();
  } catch (e) {
    await w.abort().catch(() => {});
    throw e;
  }
  return out;
}
