/**
 * FFI binding to the system zlib (libz.so.1) for streaming gzip, as pgBackRest writes `.gz` files.
 * Bun's own zlib has no synchronous streaming API, and a worker's tight chunk loop needs one.
 */
import { FFIType, ptr, type Pointer } from "bun:ffi";
import { err } from "../common/error.ts";
import { lazyLibrary } from "./load.ts";

const zlib = lazyLibrary(
  "libz.so.1",
  {
    zlibVersion: { args: [], returns: FFIType.ptr },
    deflateInit2_: { args: [FFIType.ptr, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    deflate: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    deflateEnd: { args: [FFIType.ptr], returns: FFIType.i32 },
    inflateInit2_: { args: [FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    inflate: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    inflateEnd: { args: [FFIType.ptr], returns: FFIType.i32 },
    inflateReset: { args: [FFIType.ptr], returns: FFIType.i32 },
  },
  "install zlib (Debian: zlib1g).",
);

/** z_stream on LP64: field offsets. */
const Z = { size: 112, nextIn: 0, availIn: 8, nextOut: 24, availOut: 32, msg: 48 } as const;
const Z_OK = 0;
const Z_STREAM_END = 1;
const Z_BUF_ERROR = -5;
const Z_NO_FLUSH = 0;
const Z_FINISH = 4;
const GZIP_WINDOW = 15 + 16;
const ZLIB_WINDOW = 15;
const AUTO_WINDOW = 15 + 32;
const VERSION = new TextEncoder().encode("1.2.13\0");

const cleanup = new FinalizationRegistry<{ strm: Uint8Array; end: (p: Uint8Array) => unknown }>(({ strm, end }) => end(strm));

abstract class ZStream {
  protected readonly strm = new Uint8Array(Z.size);
  protected readonly view = new DataView(this.strm.buffer);
  protected readonly out: Uint8Array;
  protected open = true;

  constructor(outSize: number) {
    this.out = new Uint8Array(outSize);
  }

  protected setIn(input: Uint8Array): void {
    this.view.setBigUint64(Z.nextIn, input.byteLength ? BigInt(ptr(input)) : 0n, true);
    this.view.setUint32(Z.availIn, input.byteLength, true);
  }

  protected availIn(): number {
    return this.view.getUint32(Z.availIn, true);
  }

  protected resetOut(): void {
    this.view.setBigUint64(Z.nextOut, BigInt(ptr(this.out)), true);
    this.view.setUint32(Z.availOut, this.out.byteLength, true);
  }

  protected produced(): number {
    return this.out.byteLength - this.view.getUint32(Z.availOut, true);
  }

  protected fail(what: string, rc: number): never {
    throw err("FormatError", `gzip ${what} failed (zlib error ${rc})`, what === "decompress" ? "the file is not valid gzip data or is corrupt." : undefined);
  }
}

export class GzipCompressor extends ZStream {
  /** raw: zlib's own format instead of gzip's (pgBackRest's raw format: block incremental, raw bundles). */
  constructor(level = 6, outSize = 1024 * 1024, raw = false) {
    super(outSize);
    const rc = zlib().deflateInit2_(this.strm, level, 8, raw ? ZLIB_WINDOW : GZIP_WINDOW, 8, 0, VERSION, Z.size);
    if (rc !== Z_OK) this.fail("init", rc);
    cleanup.register(this, { strm: this.strm, end: (p) => zlib().deflateEnd(p) }, this);
  }

  #run(input: Uint8Array, flush: number, emit: (out: Uint8Array) => void): void {
    this.setIn(input);
    for (;;) {
      this.resetOut();
      const rc = zlib().deflate(this.strm, flush);
      if (rc !== Z_OK && rc !== Z_STREAM_END && rc !== Z_BUF_ERROR) this.fail("compress", rc);
      const n = this.produced();
      if (n > 0) emit(this.out.subarray(0, n));
      if (flush === Z_FINISH ? rc === Z_STREAM_END : this.availIn() === 0 && n < this.out.byteLength) break;
    }
  }

  update(input: Uint8Array, emit: (out: Uint8Array) => void): void {
    if (input.byteLength > 0) this.#run(input, Z_NO_FLUSH, emit);
  }

  end(emit: (out: Uint8Array) => void): void {
    this.#run(new Uint8Array(0), Z_FINISH, emit);
    this.free();
  }

  free(): void {
    if (!this.open) return;
    this.open = false;
    zlib().deflateEnd(this.strm);
    cleanup.unregister(this);
  }
}

/** Decompresses gzip (and zlib) streams; concatenated gzip members are accepted. */
export class GzipDecompressor extends ZStream {
  #ended = false;

  constructor(outSize = 1024 * 1024) {
    super(outSize);
    const rc = zlib().inflateInit2_(this.strm, AUTO_WINDOW, VERSION, Z.size);
    if (rc !== Z_OK) this.fail("init", rc);
    cleanup.register(this, { strm: this.strm, end: (p) => zlib().inflateEnd(p) }, this);
  }

  update(input: Uint8Array, emit: (out: Uint8Array) => void): void {
    let rest = input;
    while (rest.byteLength > 0) {
      if (this.#ended) {
        zlib().inflateReset(this.strm); // next gzip member
        this.#ended = false;
      }
      this.setIn(rest);
      let rc: number;
      for (;;) {
        this.resetOut();
        rc = zlib().inflate(this.strm, Z_NO_FLUSH);
        if (rc !== Z_OK && rc !== Z_STREAM_END && rc !== Z_BUF_ERROR) this.fail("decompress", rc);
        const n = this.produced();
        if (n > 0) emit(this.out.subarray(0, n));
        if (rc === Z_STREAM_END) break;
        if (n === 0 || (this.availIn() === 0 && n < this.out.byteLength)) break; // needs more input
      }
      rest = rest.subarray(rest.byteLength - this.availIn());
      if (rc !== Z_STREAM_END) break;
      this.#ended = true;
    }
  }

  end(): void {
    const complete = this.#ended;
    this.free();
    if (!complete) throw err("FormatError", "gzip stream is truncated: the stream did not end", "the file is incomplete or corrupt.");
  }

  free(): void {
    if (!this.open) return;
    this.open = false;
    zlib().inflateEnd(this.strm);
    cleanup.unregister(this);
  }
}

export type { Pointer };
