/**
 * Filters are data: a FilterSpec is a plain, serialisable description (so a pipeline can be rebuilt
 * inside a worker or on the remote side, and runs where the bytes are); `createFilter` turns it into
 * a live Filter. A live filter is a synchronous chunk processor: `process` pushes zero or more output
 * views to `emit`, each valid only during that call (no copies on the hot path).
 */

export type { CompressType } from "../common/compress-type.ts";
import type { CompressType } from "../common/compress-type.ts";

export type FilterSpec =
  | { type: "size"; id?: string }
  | { type: "sha1"; id?: string }
  /** Cheap equality of two reads of the same bytes (filter/crc32c.ts). */
  | { type: "crc32c"; id?: string }
  /** Verify PostgreSQL data pages. `firstBlock`: block number of the file's first page (segment × relseg). */
  | { type: "page-checksum"; id?: string; firstBlock: number; lsnLimit: string; pageSize?: number }
  /** raw: as pgBackRest compresses block incremental super blocks and raw bundles (gz as zlib, lz4 without content checksum). */
  /** contentSize (lz4, zst): written in the frame header, for a chunk frame of a large file (backup/chunk.ts). */
  | { type: "compress"; id?: string; compressType: Exclude<CompressType, "none">; level?: number; raw?: boolean; contentSize?: number }
  /** outputVerified: the pipeline checks a SHA-1 of the output, so a format's own checksum (lz4's) is skipped. */
  | { type: "decompress"; id?: string; compressType: Exclude<CompressType, "none">; outputVerified?: boolean }
  /** raw: the salt without the "Salted__" magic before it (block incremental, raw bundles). */
  | { type: "encrypt"; id?: string; pass: string; raw?: boolean }
  | { type: "decrypt"; id?: string; pass: string; raw?: boolean };

export type Emit = (out: Uint8Array) => void;

export interface SizeResult { type: "size"; id?: string; size: number }
export interface Sha1Result { type: "sha1"; id?: string; hash: string }
export interface Crc32cResult { type: "crc32c"; id?: string; crc: number }
export interface PageChecksumResult {
  type: "page-checksum";
  id?: string;
  /** True when every page verified. */
  valid: boolean;
  /** False when the file size is not a whole number of pages. */
  align: boolean;
  /** File-relative page numbers that failed (capped; `errorTotal` has the full count). */
  errors: number[];
  errorTotal: number;
}
export interface PlainResult { type: "compress" | "decompress" | "encrypt" | "decrypt"; id?: string }
export type FilterResult = SizeResult | Sha1Result | Crc32cResult | PageChecksumResult | PlainResult;

export interface Filter {
  readonly spec: FilterSpec;
  process(input: Uint8Array, emit: Emit): void;
  flush(emit: Emit): void;
  result(): FilterResult;
  /** Release native resources early (on error); safe to call twice. */
  free?(): void;
}

/** Find a result by id, or by type when ids are not used (first match). */
export function findResult<T extends FilterResult["type"]>(
  results: readonly FilterResult[], type: T, id?: string,
): Extract<FilterResult, { type: T }> | undefined {
  return results.find((r) => r.type === type && (id === undefined || r.id === id)) as Extract<FilterResult, { type: T }> | undefined;
}

/** The last result of a type: in a pipeline that ends with sha1/size, the one describing the bytes written. */
export function findLastResult<T extends FilterResult["type"]>(results: readonly FilterResult[], type: T): Extract<FilterResult, { type: T }> | undefined {
  for (let i = results.length - 1; i >= 0; i--) if (results[i]!.type === type) return results[i] as Extract<FilterResult, { type: T }>;
  return undefined;
}
