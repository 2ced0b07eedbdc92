/**
 * FFI binding to libpgbunker.so (native/pgbunker.c): page checksums, CRC-32C, XXH32 (lz4 content
 * checksums), block checksums (XXH3-128).
 *
 * The library is embedded in the compiled executable (`with { type: "file" }`) and dlopen'ed from
 * there; when running from source it is the freshly built native/libpgbunker.so.
 */
import { dlopen, FFIType } from "bun:ffi";
import { constants as osConstants } from "node:os";
import libPath from "../../native/libpgbunker.so" with { type: "file" };
import { err } from "../common/error.ts";

/** Must equal PGB_ABI_VERSION in native/pgbunker.h. */
const ABI_VERSION = 6;

const SYMBOLS = {
  pgb_abi_version: { args: [], returns: FFIType.u32 },
  pgb_page_checksum: { args: [FFIType.ptr, FFIType.u32, FFIType.u32], returns: FFIType.u16 },
  pgb_page_checksum_avx2: { args: [], returns: FFIType.i32 },
  pgb_page_checksum_force_baseline: { args: [FFIType.i32], returns: FFIType.void },
  pgb_page_verify: {
    args: [FFIType.ptr, FFIType.u32, FFIType.u32, FFIType.u32, FFIType.u64, FFIType.ptr, FFIType.u32],
    returns: FFIType.u32,
  },
  pgb_crc32c: { args: [FFIType.u32, FFIType.ptr, FFIType.u64], returns: FFIType.u32 },
  pgb_crc32c_hardware: { args: [], returns: FFIType.i32 },
  pgb_crc32c_force_table: { args: [FFIType.i32], returns: FFIType.void },
  pgb_lock_acquire: { args: [FFIType.cstring], returns: FFIType.i32 },
  pgb_syncfs: { args: [FFIType.cstring], returns: FFIType.i32 },
  pgb_xxh32_reset: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.void },
  pgb_xxh32_update: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.void },
  pgb_xxh32_digest: { args: [FFIType.ptr], returns: FFIType.u32 },
  pgb_xxh128_blocks: { args: [FFIType.ptr, FFIType.u64, FFIType.u32, FFIType.u32, FFIType.ptr], returns: FFIType.i64 },
  pgb_writer_new: { args: [], returns: FFIType.ptr },
  pgb_writer_submit: { args: [FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i64], returns: FFIType.i32 },
  pgb_writer_wait: { args: [FFIType.ptr], returns: FFIType.i32 },
} as const;

type Lib = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];
let lib: Lib | undefined;

function helper(): Lib {
  if (lib) return lib;
  try {
    lib = dlopen(libPath, SYMBOLS).symbols;
  } catch (e) {
    throw err("KernelError", `unable to load native helper '${libPath}': ${(e as Error).message}`, "rebuild with 'bun run build'.");
  }
  const abi = lib.pgb_abi_version();
  if (abi !== ABI_VERSION) throw err("AssertError", `native helper ABI ${abi} does not match expected ${ABI_VERSION}`, "rebuild with 'bun run build'.");
  return lib;
}

export function pageChecksum(page: Uint8Array, blockNo: number): number {
  return helper().pgb_page_checksum(page, page.byteLength, blockNo >>> 0);
}

/** True when page checksums run the AVX2 build of the loop. */
export function pageChecksumAvx2(): boolean {
  return helper().pgb_page_checksum_avx2() === 1;
}

/** Tests only: force the baseline x86-64 build of the loop (true) or back to auto-detect (false). */
export function pageChecksumForceBaseline(force: boolean): void {
  helper().pgb_page_checksum_force_baseline(force ? 1 : 0);
}

/**
 * Verify `pageCount` whole pages in `buf`, the first being block `firstBlock`. Pages whose LSN is at
 * or past `lsnLimit` are skipped (written during the backup; WAL replay rewrites them). Returns the
 * buffer-relative indexes of invalid pages (at most `bad.length`) and the total count.
 */
export function pageVerify(
  buf: Uint8Array, pageCount: number, pageSize: number, firstBlock: number, lsnLimit: bigint, bad: Uint32Array,
): number {
  if (pageCount === 0) return 0;
  return helper().pgb_page_verify(buf, pageCount, pageSize, firstBlock >>> 0, lsnLimit, bad, bad.length);
}

/** CRC-32C of `data`, continuing from `crc` (0 to start). */
export function crc32c(data: Uint8Array, crc = 0): number {
  if (data.byteLength === 0) return crc >>> 0;
  return helper().pgb_crc32c(crc >>> 0, data, data.byteLength) >>> 0;
}

export function crc32cHardware(): boolean {
  return helper().pgb_crc32c_hardware() === 1;
}

/** Tests only: force the table implementation (true) or back to auto-detect (false). */
export function crc32cForceTable(force: boolean): void {
  helper().pgb_crc32c_force_table(force ? 1 : 0);
}

/** sizeof(pgb_xxh32) in native/pgbunker.h. */
const XXH32_STATE_WORDS = 6;

/**
 * Streaming XXH32 (seed 0 unless given): lz4's content checksum, computed here because the system
 * liblz4's own is ~4x slower (native/pgbunker.c says why). One FFI call per buffer.
 */
export class Xxh32 {
  /** 64-bit words: the C state is 8-aligned. */
  readonly #state = new BigUint64Array(XXH32_STATE_WORDS);

  constructor(seed = 0) {
    helper().pgb_xxh32_reset(this.#state, seed >>> 0);
  }

  update(data: Uint8Array): void {
    if (data.byteLength > 0) helper().pgb_xxh32_update(this.#state, data, data.byteLength);
  }

  digest(): number {
    return helper().pgb_xxh32_digest(this.#state) >>> 0;
  }
}

/** XXH32 of a whole buffer. */
export function xxh32(data: Uint8Array, seed = 0): number {
  const h = new Xxh32(seed);
  h.update(data);
  return h.digest();
}

/**
 * Block checksums of pgBackRest's block incremental: for each `blockSize` block of `data` (the last
 * may be short) the first `checksumSize` bytes of its XXH3-128 hash (canonical form), one after the
 * other in the returned buffer. One FFI call for the whole buffer.
 */
export function blockChecksums(data: Uint8Array, blockSize: number, checksumSize: number): Uint8Array {
  const blocks = Math.ceil(data.byteLength / blockSize);
  const out = new Uint8Array(Math.max(1, blocks * checksumSize));
  if (blocks === 0) return out.subarray(0, 0);
  const n = Number(helper().pgb_xxh128_blocks(data, data.byteLength, blockSize, checksumSize, out));
  if (n < 0) throw err("KernelError", "unable to load libxxhash.so.0 (XXH3_128bits) for block incremental checksums", "install the xxHash library (Debian: apt-get install libxxhash0).");
  return out.subarray(0, n * checksumSize);
}

/** flock(LOCK_EX|LOCK_NB) on a created file: fd >= 0 holds the lock; negative is -errno (-11: held elsewhere). */
export function lockAcquire(path: string): number {
  return helper().pgb_lock_acquire(Buffer.from(path + "\0"));
}

/** syncfs(2) on the file system holding path: 0, or -errno. */
export function syncFileSystem(path: string): number {
  return helper().pgb_syncfs(Buffer.from(path + "\0"));
}

/** A -errno of this library as the error a failed node:fs call gives (its `code`, e.g. ENOSPC). */
export function errnoError(rc: number, action: string): Error & { code: string } {
  const code = errnoName(rc);
  return Object.assign(new Error(`${code}: ${action} failed`), { code, errno: rc });
}

/** The name of a -errno the helper returned ("EACCES"), for messages. */
export function errnoName(rc: number): string {
  return Object.entries(osConstants.errno).find(([, v]) => v === -rc)?.[0] ?? `errno ${-rc}`;
}

/**
 * The calling thread's background writer (native/pgbunker.c): writeStart hands a buffer over and
 * returns at once, unless the previous buffer is still being written (then it waits for it first);
 * the buffer must stay untouched until the next writeStart or writeWait returns. Both return 0 or
 * a -errno from a write. Each JavaScript thread (main, every worker) gets its own writer thread.
 */
export interface BackgroundWriter {
  writeStart(fd: number, buf: Uint8Array, length: number, offset: number): number;
  writeWait(): number;
}

let writer: BackgroundWriter | null | undefined;

/** This thread's background writer, or null where no thread can be started. */
export function backgroundWriter(): BackgroundWriter | null {
  if (writer !== undefined) return writer;
  const h = helper();
  const handle = h.pgb_writer_new();
  writer = handle === null ? null : {
    writeStart: (fd, buf, length, offset) => h.pgb_writer_submit(handle, fd, buf, length, offset),
    writeWait: () => h.pgb_writer_wait(handle),
  };
  return writer;
}
