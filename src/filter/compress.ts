/**
 * The one place that maps compression type ↔ filter: the compress/decompress filters over the
 * native codecs (lz4, gz, zst, bz2). Type names, extensions and levels: common/compress-type.ts.
 */
import { COMPRESS_EXT, COMPRESS_LEVEL_DEFAULT, COMPRESS_LEVEL_RANGE } from "../common/compress-type.ts";
import { err } from "../common/error.ts";
import { Bz2Compressor, Bz2Decompressor } from "../native/bz2.ts";
import { Lz4Compressor, Lz4Decompressor } from "../native/lz4.ts";
import { GzipCompressor, GzipDecompressor } from "../native/zlib.ts";
import { ZstdCompressor, ZstdDecompressor } from "../native/zstd.ts";
import type { CompressType, Emit, Filter, FilterSpec, PlainResult } from "./filter.ts";

export { COMPRESS_EXT } from "../common/compress-type.ts";

/** Compression type of a repository file name, from its extension. */
export function compressTypeOfName(name: string): CompressType {
  for (const [type, ext] of Object.entries(COMPRESS_EXT)) if (ext !== "" && name.endsWith(ext)) return type as CompressType;
  return "none";
}

export function compressLevel(type: Exclude<CompressType, "none">, level: number | undefined): number {
  const l = level ?? COMPRESS_LEVEL_DEFAULT[type];
  const [lo, hi] = COMPRESS_LEVEL_RANGE[type];
  if (l < lo || l > hi)
    throw err("OptionInvalidValueError", `'${l}' is out of range for 'compress-level' option with compress-type=${type}`, `use a level from ${lo} to ${hi}.`);
  return l;
}

interface Codec {
  update(input: Uint8Array, emit: Emit): void;
  end(emit: Emit): void;
  free(): void;
}

function compressor(type: Exclude<CompressType, "none">, level: number, bufferSize: number, raw: boolean, contentSize?: number): Codec {
  switch (type) {
    case "lz4": {
      const c = new Lz4Compressor(level, bufferSize, raw, contentSize);
      return {
        update: (input, emit) => {
          const out = c.update(input);
          if (out.byteLength > 0) emit(out);
        },
        end: (emit) => emit(c.end()),
        free: () => c.free(),
      };
    }
    case "gz": return new GzipCompressor(level, bufferSize, raw);
    case "zst": return new ZstdCompressor(level, bufferSize, contentSize);
    case "bz2": return new Bz2Compressor(level, bufferSize);
  }
}

function decompressor(type: Exclude<CompressType, "none">, bufferSize: number, outputVerified: boolean): Codec {
  const d = type === "lz4" ? new Lz4Decompressor(bufferSize, { skipChecksum: outputVerified }) : type === "gz" ? new GzipDecompressor(bufferSize) : type === "zst" ? new ZstdDecompressor(bufferSize) : new Bz2Decompressor(bufferSize);
  return { update: (input, emit) => d.update(input, emit), end: () => d.end(), free: () => d.free() };
}

export class CompressFilter implements Filter {
  readonly spec: FilterSpec;
  readonly #codec: Codec;

  constructor(spec: Extract<FilterSpec, { type: "compress" | "decompress" }>, bufferSize = 1024 * 1024) {
    this.spec = spec;
    this.#codec = spec.type === "compress"
      ? compressor(spec.compressType, compressLevel(spec.compressType, spec.level), bufferSize, spec.raw === true, spec.contentSize)
      : decompressor(spec.compressType, bufferSize, spec.outputVerified === true);
  }

  process(input: Uint8Array, emit: Emit): void {
    this.#codec.update(input, emit);
  }

  flush(emit: Emit): void {
    this.#codec.end(emit);
  }

  result(): PlainResult {
    return { type: this.spec.type as "compress" | "decompress", id: this.spec.id };
  }

  free(): void {
    this.#codec.free();
  }
}
