/**
 * FFI binding to the system liblz4 (liblz4.so.1), LZ4 frame API. Streaming: one call per input
 * buffer, output written into a caller-owned buffer, so memory stays bounded by the buffer size.
 *
 * Frames match what pgBackRest and the `lz4` command write and read: 64 KiB linked blocks,
 * content checksum on, no block checksum, no content size. The content checksum (XXH32 of the
 * input) is computed by libpgbunker, not liblz4 (whose build of it costs ~28% of a level-1
 * compression): liblz4 is asked for a frame without it, and the compressor sets the flag in the
 * frame header (with the header's checksum byte) and appends the checksum after the end mark,
 * which gives the same bytes liblz4 writes with the checksum on.
 */
import { FFIType, type Pointer } from "bun:ffi";
import { err } from "../common/error.ts";
import { giveBuffer, takeBuffer } from "./buffer-pool.ts";
import { xxh32, Xxh32 } from "./helper.ts";
import { lazyLibrary } from "./load.ts";

const SYMBOLS = {
  LZ4F_isError: { args: [FFIType.u64], returns: FFIType.u32 },
  LZ4F_getErrorName: { args: [FFIType.u64], returns: FFIType.cstring },
  LZ4F_createCompressionContext: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.u64 },
  LZ4F_freeCompressionContext: { args: [FFIType.ptr], returns: FFIType.u64 },
  LZ4F_compressBegin: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr], returns: FFIType.u64 },
  LZ4F_compressBound: { args: [FFIType.u64, FFIType.ptr], returns: FFIType.u64 },
  LZ4F_compressUpdate: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr, FFIType.u64, FFIType.ptr], returns: FFIType.u64 },
  LZ4F_compressEnd: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr], returns: FFIType.u64 },
  LZ4F_createDecompressionContext: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.u64 },
  LZ4F_freeDecompressionContext: { args: [FFIType.ptr], returns: FFIType.u64 },
  LZ4F_decompress: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.u64 },
} as const;

const LZ4F_VERSION = 100;
/** sizeof(LZ4F_preferences_t) on LP64. */
const PREFS_SIZE = 56;
const BLOCK_MAX_64KB = 4;
/** Chunk frames (one per chunk of a large file) use 4 MiB blocks: restore walks the block headers to find where a frame ends, one read per block. */
const BLOCK_MAX_4MB = 7;
const BLOCK_LINKED = 0;
/** FLG bit of a frame with a content checksum (lz4 frame format, frame descriptor). */
const FLG_CONTENT_CHECKSUM = 0x04;
/** Magic number (4 bytes) before the frame descriptor. */
const MAGIC_SIZE = 4;

const lz4 = lazyLibrary("liblz4.so.1", SYMBOLS, "install the lz4 library (Debian: apt-get install liblz4-1).");

function check(code: number | bigint, what: string): number {
  const l = lz4();
  if (l.LZ4F_isError(code) !== 0) throw err("FormatError", `lz4 ${what} failed: ${l.LZ4F_getErrorName(code)}`);
  return Number(code);
}

/** Content checksum always off: the compressor adds it itself (see the header). */
function preferences(level: number, contentSize?: number): Uint8Array {
  const prefs = new Uint8Array(PREFS_SIZE);
  const v = new DataView(prefs.buffer);
  v.setInt32(0, contentSize !== undefined ? BLOCK_MAX_4MB : BLOCK_MAX_64KB, true); // frameInfo.blockSizeID
  if (contentSize !== undefined) v.setBigUint64(16, BigInt(contentSize), true); // frameInfo.contentSize (0: not written)
  v.setInt32(4, BLOCK_LINKED, true); // frameInfo.blockMode
  // frameInfo.contentChecksumFlag (offset 8) stays 0.
  v.setInt32(32, level, true); // compressionLevel
  return prefs;
}

const cleanup = new FinalizationRegistry<{ ctx: Pointer; free: (p: Pointer) => unknown }>(({ ctx, free }) => free(ctx));

/** Streaming LZ4 frame compressor. Output views are valid until the next call. */
export class Lz4Compressor {
  readonly #prefs: Uint8Array;
  /** The content checksum of the input so far (null: raw, no checksum). */
  readonly #content: Xxh32 | null;
  #ctx: Pointer | null;
  #out: Uint8Array;
  #started = false;

  /**
   * raw: no content checksum (pgBackRest's raw format: block incremental super blocks, raw bundles).
   * contentSize: a chunk frame of a large file (restore decompresses frames in parallel at offsets
   * it reads from their headers); the frame fails to end unless exactly this many bytes came in.
   */
  constructor(level = 1, maxInput = 1024 * 1024, raw = false, contentSize?: number) {
    const l = lz4();
    this.#prefs = preferences(level, contentSize);
    this.#content = raw ? null : new Xxh32();
    const holder = new BigUint64Array(1);
    check(l.LZ4F_createCompressionContext(holder, LZ4F_VERSION), "create compression context");
    this.#ctx = Number(holder[0]) as Pointer;
    this.#out = takeBuffer(this.#bound(maxInput));
    cleanup.register(this, { ctx: this.#ctx, free: (p) => lz4().LZ4F_freeCompressionContext(p) }, this);
  }

  #bound(n: number): number {
    return Math.max(check(lz4().LZ4F_compressBound(n, this.#prefs), "bound"), 64) + 64;
  }

  #ensure(n: number): void {
    const need = this.#bound(n);
    if (this.#out.byteLength < need) {
      giveBuffer(this.#out);
      this.#out = takeBuffer(need);
    }
  }

  #begin(): number {
    if (this.#started) return 0;
    this.#started = true;
    const head = check(lz4().LZ4F_compressBegin(this.#ctx!, this.#out, this.#out.byteLength, this.#prefs), "begin");
    if (this.#content) {
      // Descriptor = FLG .. the byte before HC; HC = second byte of the descriptor's XXH32.
      this.#out[MAGIC_SIZE]! |= FLG_CONTENT_CHECKSUM;
      this.#out[head - 1] = (xxh32(this.#out.subarray(MAGIC_SIZE, head - 1)) >>> 8) & 0xff;
    }
    return head;
  }

  /** Compress a chunk; returns the compressed bytes produced (possibly empty). */
  update(input: Uint8Array): Uint8Array {
    this.#ensure(input.byteLength);
    const head = this.#begin();
    this.#content?.update(input);
    const n = check(
      lz4().LZ4F_compressUpdate(this.#ctx!, this.#out.subarray(head), this.#out.byteLength - head, input, input.byteLength, null),
      "compress",
    );
    return this.#out.subarray(0, head + n);
  }

  /** Finish the frame; returns the trailing bytes (see giveBuffer) and releases the context and the buffer. */
  end(): Uint8Array {
    const head = this.#begin();
    let n = check(lz4().LZ4F_compressEnd(this.#ctx!, this.#out.subarray(head), this.#out.byteLength - head, null), "end");
    if (this.#content) {
      // After the end mark: the content checksum, little-endian (#bound leaves room for it).
      new DataView(this.#out.buffer, this.#out.byteOffset + head + n, 4).setUint32(0, this.#content.digest(), true);
      n += 4;
    }
    const tail = this.#out.subarray(0, head + n);
    this.free();
    return tail;
  }

  free(): void {
    if (this.#ctx === null) return;
    lz4().LZ4F_freeCompressionContext(this.#ctx);
    cleanup.unregister(this);
    this.#ctx = null;
    giveBuffer(this.#out);
  }
}

/** Streaming LZ4 frame decompressor (accepts concatenated frames, as the lz4 command does). */
export class Lz4Decompressor {
  #ctx: Pointer | null;
  /** The pooled buffer, and the view of it the output goes to. */
  readonly #buf: Uint8Array;
  readonly #out: Uint8Array;
  readonly #sizes = new BigUint64Array(2); // [dstSize, srcSize] in/out
  #frameDone = true;
  #sawFrame = false;

  /** LZ4F_decompressOptions_t: { stableDst, skipChecksums, reserved1, reserved0 }, 4 unsigned each. */
  readonly #options = new Uint32Array(4);

  /**
   * skipChecksum: the caller checks the SHA-1 of the output (restore, archive-get, verify), so the
   * frame's own content checksum (xxh32, ~15% of a restore worker's CPU) need not be computed.
   * A liblz4 older than 1.9.4 ignores the flag (a reserved field there) and keeps checking.
   */
  constructor(outSize = 1024 * 1024, opts: { skipChecksum?: boolean } = {}) {
    const holder = new BigUint64Array(1);
    check(lz4().LZ4F_createDecompressionContext(holder, LZ4F_VERSION), "create decompression context");
    this.#ctx = Number(holder[0]) as Pointer;
    this.#buf = takeBuffer(outSize);
    this.#out = this.#buf.subarray(0, outSize);
    if (opts.skipChecksum) this.#options[1] = 1;
    cleanup.register(this, { ctx: this.#ctx, free: (p) => lz4().LZ4F_freeDecompressionContext(p) }, this);
  }

  /** Decompress a chunk, calling emit for each piece of output (views valid during the call). */
  update(input: Uint8Array, emit: (out: Uint8Array) => void): void {
    const l = lz4();
    const sizes = this.#sizes;
    const dstSizePtr = sizes.subarray(0, 1);
    const srcSizePtr = sizes.subarray(1, 2);
    let pos = 0;
    if (input.byteLength === 0) return;
    for (;;) {
      sizes[0] = BigInt(this.#out.byteLength);
      sizes[1] = BigInt(input.byteLength - pos);
      const hint = check(l.LZ4F_decompress(this.#ctx!, this.#out, dstSizePtr, input.subarray(pos), srcSizePtr, this.#options), "decompress");
      const produced = Number(sizes[0]);
      const consumed = Number(sizes[1]);
      pos += consumed;
      if (produced > 0) emit(this.#out.subarray(0, produced));
      if (consumed > 0 || produced > 0) {
        this.#sawFrame = true;
        this.#frameDone = hint === 0;
      }
      // Stop when the input is used up and the context has nothing more to flush.
      if (pos >= input.byteLength && produced < this.#out.byteLength) break;
      if (consumed === 0 && produced === 0) break;
    }
  }

  /** Check that the input ended on a frame boundary, and release the context. */
  end(): void {
    const complete = this.#frameDone && this.#sawFrame;
    this.free();
    if (!complete) throw err("FormatError", "lz4 stream is truncated: the frame did not end", "the file is incomplete or corrupt.");
  }

  free(): void {
    if (this.#ctx === null) return;
    lz4().LZ4F_freeDecompressionContext(this.#ctx);
    cleanup.unregister(this);
    this.#ctx = null;
    giveBuffer(this.#buf);
  }
}
