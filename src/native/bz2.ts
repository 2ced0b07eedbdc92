/**
 * FFI binding to the system libbz2 (libbz2.so.1.0) for compress-type=bz2, streaming.
 */
import { FFIType, ptr } from "bun:ffi";
import { err } from "../common/error.ts";
import { lazyLibrary } from "./load.ts";

const bz2 = lazyLibrary(
  "libbz2.so.1.0",
  {
    BZ2_bzCompressInit: { args: [FFIType.ptr, FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    BZ2_bzCompress: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    BZ2_bzCompressEnd: { args: [FFIType.ptr], returns: FFIType.i32 },
    BZ2_bzDecompressInit: { args: [FFIType.ptr, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    BZ2_bzDecompress: { args: [FFIType.ptr], returns: FFIType.i32 },
    BZ2_bzDecompressEnd: { args: [FFIType.ptr], returns: FFIType.i32 },
  },
  "install the bzip2 library (Debian: libbz2-1.0).",
);

/** bz_stream on LP64: field offsets. */
const B = { size: 80, nextIn: 0, availIn: 8, nextOut: 24, availOut: 32 } as const;
const BZ_OK = 0;
const BZ_RUN_OK = 1;
const BZ_FINISH_OK = 3;
const BZ_STREAM_END = 4;
const BZ_RUN = 0;
const BZ_FINISH = 2;

const cleanup = new FinalizationRegistry<() => void>((free) => free());

abstract class BzStream {
  protected readonly strm = new Uint8Array(B.size);
  protected readonly view = new DataView(this.strm.buffer);
  protected readonly out: Uint8Array;
  protected open = true;

  constructor(outSize: number) {
    this.out = new Uint8Array(outSize);
  }
  protected setIn(input: Uint8Array): void {
    this.view.setBigUint64(B.nextIn, input.byteLength ? BigInt(ptr(input)) : 0n, true);
    this.view.setUint32(B.availIn, input.byteLength, true);
  }
  protected availIn(): number {
    return this.view.getUint32(B.availIn, true);
  }
  protected resetOut(): void {
    this.view.setBigUint64(B.nextOut, BigInt(ptr(this.out)), true);
    this.view.setUint32(B.availOut, this.out.byteLength, true);
  }
  protected produced(): number {
    return this.out.byteLength - this.view.getUint32(B.availOut, true);
  }
}

export class Bz2Compressor extends BzStream {
  constructor(level = 9, outSize = 1024 * 1024) {
    super(outSize);
    const rc = bz2().BZ2_bzCompressInit(this.strm, Math.min(Math.max(level, 1), 9), 0, 0);
    if (rc !== BZ_OK) throw err("FormatError", `bz2 init failed (error ${rc})`);
    const strm = this.strm;
    cleanup.register(this, () => bz2().BZ2_bzCompressEnd(strm), this);
  }

  update(input: Uint8Array, emit: (out: Uint8Array) => void): void {
    if (input.byteLength === 0) return;
    this.setIn(input);
    while (this.availIn() > 0) {
      this.resetOut();
      const rc = bz2().BZ2_bzCompress(this.strm, BZ_RUN);
      if (rc !== BZ_RUN_OK) throw err("FormatError", `bz2 compress failed (error ${rc})`);
      const n = this.produced();
      if (n > 0) emit(this.out.subarray(0, n));
    }
  }

  end(emit: (out: Uint8Array) => void): void {
    this.setIn(new Uint8Array(0));
    for (;;) {
      this.resetOut();
      const rc = bz2().BZ2_bzCompress(this.strm, BZ_FINISH);
      if (rc !== BZ_FINISH_OK && rc !== BZ_STREAM_END) throw err("FormatError", `bz2 finish failed (error ${rc})`);
      const n = this.produced();
      if (n > 0) emit(this.out.subarray(0, n));
      if (rc === BZ_STREAM_END) break;
    }
    this.free();
  }

  free(): void {
    if (!this.open) return;
    this.open = false;
    bz2().BZ2_bzCompressEnd(this.strm);
    cleanup.unregister(this);
  }
}

export class Bz2Decompressor extends BzStream {
  #ended = false;

  constructor(outSize = 1024 * 1024) {
    super(outSize);
    const rc = bz2().BZ2_bzDecompressInit(this.strm, 0, 0);
    if (rc !== BZ_OK) throw err("FormatError", `bz2 init failed (error ${rc})`);
    const strm = this.strm;
    cleanup.register(this, () => bz2().BZ2_bzDecompressEnd(strm), this);
  }

  update(input: Uint8Array, emit: (out: Uint8Array) => void): void {
    if (input.byteLength === 0 || this.#ended) {
      if (input.byteLength > 0) throw err("FormatError", "bz2 stream has data after its end", "the file is corrupt.");
      return;
    }
    this.setIn(input);
    for (;;) {
      this.resetOut();
      const rc = bz2().BZ2_bzDecompress(this.strm);
      if (rc !== BZ_OK && rc !== BZ_STREAM_END) throw err("FormatError", `bz2 decompress failed (error ${rc})`, "the file is not valid bzip2 data or is corrupt.");
      const n = this.produced();
      if (n > 0) emit(this.out.subarray(0, n));
      if (rc === BZ_STREAM_END) {
        this.#ended = true;
        break;
      }
      if (this.availIn() === 0 && n < this.out.byteLength) break;
    }
  }

  end(): void {
    const complete = this.#ended;
    this.free();
    if (!complete) throw err("FormatError", "bz2 stream is truncated: the stream did not end", "the file is incomplete or corrupt.");
  }

  free(): void {
    if (!this.open) return;
    this.open = false;
    bz2().BZ2_bzDecompressEnd(this.strm);
    cleanup.unregister(this);
  }
}
