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
import { blockChecksums } from "../../native/helper.ts";
import { readBlockMap, sameBytes, type BlockMapItem } from "../../repo/block-map.ts";
import { BLOCK_INCR_EXT, repoPath } from "../../repo/layout.ts";
import type { Storage } from "../../storage/storage.ts";
import { ByteReader, SuperBlockCursor, superBlockFilters as sharedFilters, superBlockRuns } from "../shared/super-block.ts";
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

/** Filters that open one stored super block (or a map: decrypt only). */
function superBlockFilters(p: RestoreFileParams, withDecompress: boolean): FilterSpec[] {
  return sharedFilters(p.compressType, p.cipherPass, withDecompress);
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
    const runEnd = superBlockRuns(sbs);
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
