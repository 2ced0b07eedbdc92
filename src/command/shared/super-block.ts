/**
 * Reading the super blocks of a block incremental file (repo-block) from one repository file (a
 * backup's bundle or `.pgbi` file), forward only: restore assembles files from them, verify checks
 * them. One decoded super block is held at a time; adjacent super blocks that are needed are read
 * through one open (`runEnd`), so a file's blocks cost one request per run, not one per block.
 */
import { err } from "../../common/error.ts";
import type { CompressType, FilterSpec } from "../../filter/filter.ts";
import { filterBuffer } from "../../filter/pipeline.ts";
import type { BlockMapItem } from "../../repo/block-map.ts";
import type { Storage, StorageRead } from "../../storage/storage.ts";

/** Bytes of a repository read, forward only, in exact amounts. */
export class ByteReader {
  #pending: Uint8Array = new Uint8Array(0);
  constructor(readonly read: StorageRead) {}

  /** Exactly n bytes (fewer only at the end of the read). */
  async take(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      if (this.#pending.byteLength === 0) {
        const chunk = await this.read.read();
        if (chunk === null) return out.subarray(0, got);
        this.#pending = chunk;
      }
      const k = Math.min(n - got, this.#pending.byteLength);
      out.set(this.#pending.subarray(0, k), got);
      this.#pending = this.#pending.subarray(k);
      got += k;
    }
    return out;
  }
}

/** Super blocks of one repository file, read forward. */
export class SuperBlockCursor {
  #reader: ByteReader | undefined;
  #at = -1;
  #current: { offset: number; data: Uint8Array } | undefined;

  constructor(
    readonly repo: Storage,
    readonly path: string,
    /** What opens one stored super block: raw decrypt, then decompress (superBlockFilters). */
    readonly filters: FilterSpec[],
    /** Where each run of adjacent needed super blocks ends, by its start offset. */
    readonly runEnd: Map<number, number>,
  ) {}

  /** The decoded super block `item` lies in; its size is checked against the map's. */
  async superBlock(item: BlockMapItem): Promise<Uint8Array> {
    if (this.#current?.offset === item.offset) return this.#current.data;
    if (this.#reader === undefined || this.#at !== item.offset) {
      await this.close();
      const end = this.runEnd.get(item.offset) ?? item.offset + item.size;
      const r = await this.repo.openRead(this.path, { offset: item.offset, limit: end - item.offset, ignoreMissing: true });
      if (r === null) throw err("FileMissingError", `'${this.repo.path(this.path)}' is missing: it holds super blocks a block map refers to`);
      this.#reader = new ByteReader(r);
      this.#at = item.offset;
    }
    const stored = await this.#reader.take(item.size);
    if (stored.byteLength !== item.size) throw err("FormatError", `super block at offset ${item.offset} of '${this.repo.path(this.path)}' is truncated: ${stored.byteLength} of ${item.size} bytes`);
    this.#at += item.size;
    // Forget the previous one first: what is held stays one super block.
    this.#current = undefined;
    const data = this.filters.length ? filterBuffer(stored, this.filters).data : stored;
    if (data.byteLength !== item.superBlockSize)
      throw err("FormatError", `super block at offset ${item.offset} of '${this.repo.path(this.path)}' holds ${data.byteLength} bytes, its map says ${item.superBlockSize}`);
    this.#current = { offset: item.offset, data };
    return data;
  }

  /** The bytes of one block (the last of a file may be short). */
  async block(item: BlockMapItem, blockSize: number): Promise<Uint8Array> {
    const data = await this.superBlock(item);
    const at = item.block * blockSize;
    return data.subarray(at, Math.min(at + blockSize, data.byteLength));
  }

  async close(): Promise<void> {
    await this.#reader?.read.close();
    this.#reader = undefined;
  }
}

/**
 * Where each run of adjacent super blocks ends, by its start offset, for the super blocks
 * (offset → stored size) that are needed from one repository file.
 */
export function superBlockRuns(sizes: ReadonlyMap<number, number>): Map<number, number> {
  const offsets = [...sizes.keys()].sort((x, y) => x - y);
  const runEnd = new Map<number, number>();
  for (let i = 0; i < offsets.length;) {
    let end = offsets[i]! + sizes.get(offsets[i]!)!;
    let j = i + 1;
    while (j < offsets.length && offsets[j] === end) end += sizes.get(offsets[j++]!)!;
    runEnd.set(offsets[i]!, end);
    i = j;
  }
  return runEnd;
}

/** Filters that open one stored super block (or, without decompress, a map: decrypt only). */
export function superBlockFilters(compressType: CompressType, cipherPass: string | undefined, withDecompress: boolean): FilterSpec[] {
  const f: FilterSpec[] = [];
  if (cipherPass !== undefined) f.push({ type: "decrypt", pass: cipherPass, raw: true });
  if (withDecompress && compressType !== "none") f.push({ type: "decompress", compressType, outputVerified: true });
  return f;
}
