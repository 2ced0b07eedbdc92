/**
 * A chain of filters run as a tight synchronous loop: `process(chunk)` pushes the chunk through
 * every filter to the sink; `end()` flushes each filter in order. Output handed to the sink is a
 * view that is valid only during the sink call, so the sink either consumes it at once (write to
 * a file descriptor, hash) or copies it.
 *
 * The usual backup order is sha1 → size → page-checksum → compress → sha1 → size: the first pair
 * describes the PostgreSQL file, the last pair the stored bytes.
 */
import { err } from "../common/error.ts";
import { CompressFilter } from "./compress.ts";
import { Crc32cFilter } from "./crc32c.ts";
import type { Emit, Filter, FilterResult, FilterSpec } from "./filter.ts";
import { PageChecksumFilter } from "./page-checksum.ts";
import { Sha1Filter } from "./sha1.ts";
import { SizeFilter } from "./size.ts";
import { CipherFilter } from "./cipher.ts";

export function createFilter(spec: FilterSpec, bufferSize = 1024 * 1024): Filter {
  switch (spec.type) {
    case "size": return new SizeFilter(spec);
    case "sha1": return new Sha1Filter(spec);
    case "crc32c": return new Crc32cFilter(spec);
    case "page-checksum": return new PageChecksumFilter(spec);
    case "compress":
    case "decompress": return new CompressFilter(spec, bufferSize);
    case "encrypt":
    case "decrypt": return new CipherFilter(spec);
    default: throw err("AssertError", `unknown filter type '${(spec as { type: string }).type}'`);
  }
}

export class Pipeline {
  readonly #filters: Filter[];
  readonly #emitters: Emit[];
  #sink: Emit;
  #ended = false;

  constructor(filters: readonly (Filter | FilterSpec)[], sink: Emit = () => {}, bufferSize = 1024 * 1024) {
    this.#filters = filters.map((f) => ("process" in f ? f : createFilter(f, bufferSize)));
    this.#sink = sink;
    // emitters[i] receives the output of filter i and feeds filter i+1 (or the sink).
    this.#emitters = this.#filters.map((_, i) => {
      const next = this.#filters[i + 1];
      return next ? (out: Uint8Array) => next.process(out, this.#emitters[i + 1]!) : (out: Uint8Array) => this.#sink(out);
    });
  }

  get empty(): boolean {
    return this.#filters.length === 0;
  }

  setSink(sink: Emit): void {
    this.#sink = sink;
  }

  process(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    if (this.#filters.length === 0) this.#sink(chunk);
    else this.#filters[0]!.process(chunk, this.#emitters[0]!);
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (let i = 0; i < this.#filters.length; i++) this.#filters[i]!.flush(this.#emitters[i]!);
  }

  results(): FilterResult[] {
    return this.#filters.map((f) => f.result());
  }

  free(): void {
    for (const f of this.#filters) f.free?.();
  }
}

/** Run a whole in-memory buffer through filters (small files: info files, WAL, tests). */
export function filterBuffer(data: Uint8Array, specs: readonly FilterSpec[]): { data: Uint8Array; results: FilterResult[] } {
  const parts: Uint8Array[] = [];
  let total = 0;
  const p = new Pipeline(specs, (out) => {
    parts.push(out.slice());
    total += out.byteLength;
  });
  try {
    p.process(data);
    p.end();
  } finally {
    p.free();
  }
  const joined = new Uint8Array(total);
  let pos = 0;
  for (const part of parts) {
    joined.set(part, pos);
    pos += part.byteLength;
  }
  return { data: joined, results: p.results() };
}
