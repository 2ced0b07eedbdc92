/**
 * Restore of a block incremental file (repo-block): its map, read from the end of the file's
 * stored bytes, says for every block which backup's super block holds it; the file is written in
 * block order, through the same atomic, SHA-1-checked write as any restored file.
 *
 * With --delta the file already in place is read once, hashed block by block: a block whose
 * checksum equals the map's is taken from it, and only the others are fetched from the
 * repository. Super blocks are read forward only, one cursor per backup (each backup stores its
 * blocks in file order), so memory stays at one decompressed super block per backup in the chain.
 */
import { err } from "../../common/error.ts";
import { findResult, type FilterSpec } from "../../filter/filter.ts";
import { filterBuffer } from "../../filter/pipeline.ts";
import { blockChecksums } from "../../native/helper.ts";
import { readBlockMap, sameBytes, type BlockMapItem } from "../../repo/block-map.ts";
import { BLOCK_INCR_EXT, repoPath } from "../../repo/layout.ts";
import type { Storage, StorageRead } from "../../storage/storage.ts";
import type { RestoreFileParams } from "./file.ts";

/** What a job needs to find a block incremental file's blocks. */
export interface RestoreBlockIncr {
  blockSize: number;
  checksumSize: number;
  /** Stored size of the map at the end of the file's repository bytes. */
  mapSize: number;
  stanza: string;
  /** The manifest's backup-reference list: a map's reference is an index into it. */
  references: string[];
}

/** Bytes of a repository read, forward only, in exact amounts. */
class ByteReader {
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

/** Super blocks of one repository file (one backup's bundle or .pgbi file), read forward. */
class SuperBlockCursor {
  #reader: ByteReader | undefined;
  #at = -1;
  #current: { offset: number; data: Uint8Array } | undefined;

  constructor(
    readonly repo: Storage,
    readonly path: string,
    readonly filters: FilterSpec[],
    /** Where each run of adjacent needed super blocks ends, by its start offset. */
    readonly runEnd: Map<number, number>,
  ) {}

  async block(item: BlockMapItem, blockSize: number): Promise<Uint8Array> {
    if (this.#current?.offset !== item.offset) {
      if (this.#reader === undefined || this.#at !== item.offset) {
        await this.close();
        const end = this.runEnd.get(item.offset) ?? item.offset + item.size;
        const r = await this.repo.openRead(this.path, { offset: item.offset, limit: end - item.offset });
        this.#reader = new ByteReader(r!);
        this.#at = item.offset;
      }
      const stored = await this.#reader.take(item.size);
      if (stored.byteLength !== item.size) throw err("FormatError", `super block at offset ${item.offset} of '${this.repo.path(this.path)}' is truncated: ${stored.byteLength} of ${item.size} bytes`);
      this.#at += item.size;
      const data = this.filters.length ? filterBuffer(stored, this.filters).data : stored;
      if (data.byteLength !== item.superBlockSize)
        throw err("FormatError", `super block at offset ${item.offset} of '${this.repo.path(this.path)}' holds ${data.byteLength} bytes, its map says ${item.superBlockSize}`);
      this.#current = { offset: item.offset, data };
    }
    const at = item.block * blockSize;
    return this.#current.data.subarray(at, Math.min(at + blockSize, this.#current.data.byteLength));
  }

  async close(): Promise<void> {
    await this.#reader?.read.close();
    this.#reader = undefined;
  }
}

/** Filters that open one stored super block (or a map: decrypt only). */
function superBlockFilters(p: RestoreFileParams, withDecompress: boolean): FilterSpec[] {
  const f: FilterSpec[] = [];
  if (p.cipherPass !== undefined) f.push({ type: "decrypt", pass: p.cipherPass, raw: true });
  if (withDecompress && p.compressType !== "none") f.push({ type: "decompress", compressType: p.compressType, outputVerified: true });
  return f;
}

/** The repository file holding a reference's super blocks of this file. */
function storedFile(p: RestoreFileParams, b: RestoreBlockIncr, item: { reference: number; bundleId: number }): string {
  const label = b.references[item.reference];
  if (label === undefined) throw err("FormatError", `block map of '${p.name}' refers to backup #${item.reference}, the manifest lists ${b.references.length}`);
  return item.bundleId > 0 ? repoPath.bundleFile(b.stanza, label, item.bundleId) : repoPath.backupFile(b.stanza, label, p.name, BLOCK_INCR_EXT);
}

/** Read and decode the file's map. */
export async function loadBlockMap(repo: Storage, p: RestoreFileParams, b: RestoreBlockIncr): Promise<BlockMapItem[]> {
  const mapOffset = (p.offset ?? 0) + (p.limit ?? 0) - b.mapSize;
  const data = await repo.get(p.repoFile, { offset: mapOffset, limit: b.mapSize, filters: superBlockFilters(p, false) });
  const items = readBlockMap(data!, b.blockSize, b.checksumSize);
  if (items.length !== Math.ceil(p.size / b.blockSize))
    throw err("FormatError", `block map of '${p.name}' has ${items.length} blocks, a file of ${p.size} bytes needs ${Math.ceil(p.size / b.blockSize)}`);
  return items;
}

/** What is in place (delta): block checksums and SHA-1 of its first `size` bytes, and its length. */
export interface InPlace {
  checksums: Uint8Array;
  sha1: string;
  size: number;
}

/** Read the file in place once (delta): null when it is missing. */
export async function inPlace(pg: Storage, p: RestoreFileParams, b: RestoreBlockIncr): Promise<InPlace | null> {
  const r = await pg.openRead(p.dest, { ignoreMissing: true, limit: p.size, bufferSize: p.bufferSize, filters: [{ type: "sha1" }, { type: "size" }] });
  if (!r) return null;
  const parts: Uint8Array[] = [];
  const reader = new ByteReader(r);
  try {
    // Whole blocks at a time (a buffer's worth), one native call each.
    const per = Math.max(1, Math.floor((p.bufferSize ?? 1024 * 1024) / b.blockSize)) * b.blockSize;
    for (;;) {
      const chunk = await reader.take(per);
      if (chunk.byteLength) parts.push(blockChecksums(chunk, b.blockSize, b.checksumSize));
      if (chunk.byteLength < per) break;
    }
  } finally {
    await r.close();
  }
  const res = r.results();
  return { checksums: Buffer.concat(parts), sha1: findResult(res, "sha1")!.hash, size: findResult(res, "size")!.size };
}

const sameChecksum = (a: Uint8Array, at: number, b: Uint8Array) => sameBytes(a.subarray(at, at + b.byteLength), b);

/**
 * Write the file from its map. Returns how many bytes came from the repository (the rest were
 * already in place).
 */
export async function restoreBlockFile(pg: Storage, repo: Storage, p: RestoreFileParams, b: RestoreBlockIncr, placed: InPlace | null, write: (chunk: Uint8Array) => Promise<void>): Promise<number> {
  const items = await loadBlockMap(repo, p, b);
  const have = placed?.checksums ?? null;
  const cs = b.checksumSize;
  const fromDisk = (i: number) => have !== null && (i + 1) * cs <= have.byteLength && sameChecksum(have, i * cs, items[i]!.checksum);

  // The cursors, and for each the runs of adjacent super blocks that are needed.
  const cursors = new Map<string, SuperBlockCursor>();
  const filters = superBlockFilters(p, true);
  const needed = new Map<string, Map<number, number>>(); // key → offset → size
  for (let i = 0; i < items.length; i++) {
    if (fromDisk(i)) continue;
    const it = items[i]!;
    const key = `${it.reference}/${it.bundleId}`;
    let m = needed.get(key);
    if (!m) needed.set(key, (m = new Map()));
    m.set(it.offset, it.size);
  }
  for (const [key, sbs] of needed) {
    const offsets = [...sbs.keys()].sort((x, y) => x - y);
    const runEnd = new Map<number, number>();
    for (let i = 0; i < offsets.length;) {
      let end = offsets[i]! + sbs.get(offsets[i]!)!;
      let j = i + 1;
      while (j < offsets.length && offsets[j] === end) end += sbs.get(offsets[j++]!)!;
      runEnd.set(offsets[i]!, end);
      i = j;
    }
    const [reference, bundleId] = key.split("/").map(Number) as [number, number];
    cursors.set(key, new SuperBlockCursor(repo, storedFile(p, b, { reference, bundleId }), filters, runEnd));
  }

  const disk = have !== null ? await pg.openRead(p.dest, { limit: p.size, bufferSize: p.bufferSize }) : null;
  const diskReader = disk ? new ByteReader(disk) : null;
  let diskAt = 0;
  let fetched = 0;
  try {
    for (let i = 0; i < items.length; i++) {
      const len = Math.min(b.blockSize, p.size - i * b.blockSize);
      let block: Uint8Array;
      if (fromDisk(i)) {
        // Forward only: skip the blocks between (they came from the repository).
        if (diskAt < i * b.blockSize) {
          await diskReader!.take(i * b.blockSize - diskAt);
          diskAt = i * b.blockSize;
        }
        block = await diskReader!.take(len);
        diskAt += block.byteLength;
      } else {
        const it = items[i]!;
        block = await cursors.get(`${it.reference}/${it.bundleId}`)!.block(it, b.blockSize);
        if (!sameChecksum(blockChecksums(block, b.blockSize, cs), 0, it.checksum))
          throw err("ChecksumError", `block ${i} of '${p.name}' (offset ${it.offset} of backup ${b.references[it.reference]}) does not match its checksum in the block map`);
        fetched += block.byteLength;
      }
      if (block.byteLength !== len) throw err("FormatError", `block ${i} of '${p.name}' has ${block.byteLength} bytes, expected ${len}`);
      await write(block);
    }
  } finally {
    for (const c of cursors.values()) await c.close();
    await disk?.close();
  }
  return fetched;
}
