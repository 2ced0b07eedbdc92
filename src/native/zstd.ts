/**
 * FFI binding to the system libzstd (libzstd.so.1), streaming API, for compress-type=zst.
 */
import { FFIType, ptr, type Pointer } from "bun:ffi";
import { err } from "../common/error.ts";
import { lazyLibrary } from "./load.ts";

const zstd = lazyLibrary(
  "libzstd.so.1",
  {
    ZSTD_isError: { args: [FFIType.u64], returns: FFIType.u32 },
    ZSTD_getErrorName: { args: [FFIType.u64], returns: FFIType.cstring },
    ZSTD_createCCtx: { args: [], returns: FFIType.ptr },
    ZSTD_freeCCtx: { args: [FFIType.ptr], returns: FFIType.u64 },
    ZSTD_CCtx_setParameter: { args: [FFIType.ptr, FFIType.i32, FFIType.i32], returns: FFIType.u64 },
    ZSTD_CCtx_setPledgedSrcSize: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.u64 },
    ZSTD_compressStream2: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.u64 },
    ZSTD_createDCtx: { args: [], returns: FFIType.ptr },
    ZSTD_freeDCtx: { args: [FFIType.ptr], returns: FFIType.u64 },
    ZSTD_decompressStream: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.u64 },
  },
  "install the zstd library (Debian: libzstd1).",
);

const ZSTD_c_compressionLevel = 100;
const ZSTD_e_continue = 0;
const ZSTD_e_end = 2;

function check(code: number | bigint, what: string): number {
  if (zstd().ZSTD_isError(code) !== 0)
    throw err("FormatError", `zstd ${what} failed: ${zstd().ZSTD_getErrorName(code)}`, what === "decompress" ? "the file is not valid zstd data or is corrupt." : undefined);
  return Number(code);
}

/** ZSTD_inBuffer / ZSTD_outBuffer: { void* ptr; size_t size; size_t pos; } */
class ZBuffer {
  readonly raw = new BigUint64Array(3);
  set(buf: Uint8Array): void {
    this.raw[0] = buf.byteLength ? BigInt(ptr(buf)) : 0n;
    this.raw[1] = BigInt(buf.byteLength);
    this.raw[2] = 0n;
  }
  get pos(): number {
    return Number(this.raw[2]);
  }
  get size(): number {
    return Number(this.raw[1]);
  }
}

const cleanup = new FinalizationRegistry<() => void>((free) => free());

export class ZstdCompressor {
  #ctx: Pointer | null;
  readonly #out: Uint8Array;
  readonly #inBuf = new ZBuffer();
  readonly #outBuf = new ZBuffer();

  /** contentSize: written in the frame header (a chunk frame of a large file); the frame fails to end unless exactly this many bytes came in. */
  constructor(level = 3, outSize = 1024 * 1024, contentSize?: number) {
    const ctx = zstd().ZSTD_createCCtx();
    if (!ctx) throw err("MemoryError", "unable to create zstd compression context");
    this.#ctx = ctx as Pointer;
    check(zstd().ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, level), "set level");
    if (contentSize !== undefined) check(zstd().ZSTD_CCtx_setPledgedSrcSize(ctx, BigInt(contentSize)), "set content size");
    this.#out = new Uint8Array(outSize);
    cleanup.register(this, () => zstd().ZSTD_freeCCtx(ctx), this);
  }

  #run(input: Uint8Array, op: number, emit: (out: Uint8Array) => void): void {
    this.#inBuf.set(input);
    for (;;) {
      this.#outBuf.set(this.#out);
      const remaining = check(zstd().ZSTD_compressStream2(this.#ctx!, this.#outBuf.raw, this.#inBuf.raw, op), "compress");
      if (this.#outBuf.pos > 0) emit(this.#out.subarray(0, this.#outBuf.pos));
      if (op === ZSTD_e_end ? remaining === 0 : this.#inBuf.pos === this.#inBuf.size) break;
    }
  }

  update(input: Uint8Array, emit: (out: Uint8Array) => void): void {
    if (input.byteLength > 0) this.#run(input, ZSTD_e_continue, emit);
  }

  end(emit: (out: Uint8Array) => void): void {
    this.#run(new Uint8Array(0), ZSTD_e_end, emit);
    this.free();
  }

  free(): void {
    if (this.#ctx === null) return;
    zstd().ZSTD_freeCCtx(this.#ctx);
    cleanup.unregister(this);
    this.#ctx = null;
  }
}

export class ZstdDecompressor {
  #ctx: Pointer | null;
  readonly #out: Uint8Array;
  readonly #inBuf = new ZBuffer();
  readonly #outBuf = new ZBuffer();
  #frameDone = false;

  constructor(outSize = 1024 * 1024) {
    const ctx = zstd().ZSTD_createDCtx();
    if (!ctx) throw err("MemoryError", "unable to create zstd decompression context");
    this.#ctx = ctx as Pointer;
    this.#out = new Uint8Array(outSize);
    cleanup.register(this, () => zstd().ZSTD_freeDCtx(ctx), this);
  }

  update(input: Uint8Array, emit: (out: Uint8Array) => void): void {
    if (input.byteLength === 0) return;
    this.#inBuf.set(input);
    for (;;) {
      this.#outBuf.set(this.#out);
      const before = this.#inBuf.pos;
      const hint = check(zstd().ZSTD_decompressStream(this.#ctx!, this.#outBuf.raw, this.#inBuf.raw), "decompress");
      const n = this.#outBuf.pos;
      if (n > 0) emit(this.#out.subarray(0, n));
      // A call that only drained nothing says nothing about the frame: keep the last verdict.
      if (n > 0 || this.#inBuf.pos > before) this.#frameDone = hint === 0;
      if (this.#inBuf.pos === this.#inBuf.size && n < this.#out.byteLength) break;
    }
  }

  end(): void {
    const complete = this.#frameDone;
    this.free();
    if (!complete) throw err("FormatError", "zstd stream is truncated: the frame did not end", "the file is incomplete or corrupt.");
  }

  free(): void {
    if (this.#ctx === null) return;
    zstd().ZSTD_freeDCtx(this.#ctx);
    cleanup.unregister(this);
    this.#ctx = null;
  }
}
