/**
 * Storing a file by blocks (repo-block, pgBackRest's format): the file is cut into blocks, each
 * block's checksum compared with the prior backup's map; changed (or new) blocks are gathered into
 * super blocks, each compressed and encrypted on its own ("raw") and written out, and the map —
 * unchanged blocks pointing into earlier backups, changed ones into this one — follows them,
 * encrypted on its own. Memory: one super block and the map (about a block per GiB of file).
 */
import { err } from "../../common/error.ts";
import type { CompressType, FilterSpec } from "../../filter/filter.ts";
import { findResult } from "../../filter/filter.ts";
import { filterBuffer, Pipeline } from "../../filter/pipeline.ts";
import { blockChecksums } from "../../native/helper.ts";
import { readBlockMap, sameBytes, writeBlockMap, type BlockMapItem } from "../../repo/block-map.ts";
import type { Storage, StorageRead } from "../../storage/storage.ts";

export interface BackupBlockIncr {
  blockSize: number;
  checksumSize: number;
  /** Changed blocks are compressed together until a super block holds this many bytes. */
  superBlockSize: number;
  /** This backup's index in its backup-reference list. */
  reference: number;
  /** The prior backup's map of the file (its stored bytes' location), when it has one. */
  priorMap?: { repoFile: string; offset: number; size: number };
}

export interface BlockStoreResult {
  /** Bytes written to the repository (super blocks + map), their SHA-1, and the map's stored size. */
  repoSize: number;
  rck: string;
  mapSize: number;
}

/** Filters of one super block (decompress/decrypt for reading are in restore/block.ts). */
function storeFilters(compressType: CompressType, compressLevel: number | undefined, cipherPass: string | undefined, compress: boolean): FilterSpec[] {
  const f: FilterSpec[] = [];
  if (compress && compressType !== "none") f.push({ type: "compress", compressType, level: compressLevel, raw: true });
  if (cipherPass) f.push({ type: "encrypt", pass: cipherPass, raw: true });
  return f;
}

/**
 * Read the file from `reader` (its own filters: sha1, size, page checksums) and write the stored
 * form with `write`, which starts at `startOffset` of the repository file (`bundleId` 0: a file of
 * its own). Nothing is written when no block changed and the map stays as it was.
 */
export async function storeBlocks(
  repo: Storage, reader: StorageRead, b: BackupBlockIncr, o: { compressType: CompressType; compressLevel?: number; cipherPass?: string; bundleId: number; startOffset: number },
  write: (chunk: Uint8Array) => Promise<void>,
): Promise<BlockStoreResult | null> {
  const prior = b.priorMap ? await loadPriorMap(repo, b, o.cipherPass) : [];
  const sbFilters = storeFilters(o.compressType, o.compressLevel, o.cipherPass, true);
  const sha1 = new Pipeline([{ type: "sha1" }]);
  const items: BlockMapItem[] = [];
  let written = 0;
  let changed = 0;

  // The super block being gathered, and the map items waiting for its offset and stored size.
  const sb = new Uint8Array(b.superBlockSize + b.blockSize);
  let sbLen = 0;
  let waiting: BlockMapItem[] = [];
  const out = async (bytes: Uint8Array) => {
    sha1.process(bytes);
    await write(bytes);
    written += bytes.byteLength;
  };
  const flush = async () => {
    if (sbLen === 0) return;
    const stored = sbFilters.length ? filterBuffer(sb.subarray(0, sbLen), sbFilters).data : sb.slice(0, sbLen);
    for (const it of waiting) Object.assign(it, { offset: o.startOffset + written, size: stored.byteLength, superBlockSize: sbLen });
    await out(stored);
    sbLen = 0;
    waiting = [];
  };
  const block = async (data: Uint8Array, checksum: Uint8Array) => {
    const i = items.length;
    const before = prior[i];
    if (before && sameBytes(before.checksum, checksum)) {
      items.push(before);
      return;
    }
    const it: BlockMapItem = { reference: b.reference, bundleId: o.bundleId, offset: 0, size: 0, superBlockSize: 0, block: waiting.length, checksum: checksum.slice() };
    items.push(it);
    waiting.push(it);
    changed++;
    sb.set(data, sbLen);
    sbLen += data.byteLength;
    if (sbLen >= b.superBlockSize) await flush();
  };

  // Whole blocks from the read chunks (a partial block carried to the next chunk), hashed a chunk at a time.
  const carry = new Uint8Array(b.blockSize);
  let carryLen = 0;
  for (let chunk = await reader.read(); chunk !== null; chunk = await reader.read()) {
    let rest = chunk;
    if (carryLen > 0) {
      const take = Math.min(b.blockSize - carryLen, rest.byteLength);
      carry.set(rest.subarray(0, take), carryLen);
      carryLen += take;
      rest = rest.subarray(take);
      if (carryLen < b.blockSize) continue;
      await block(carry, blockChecksums(carry, b.blockSize, b.checksumSize));
      carryLen = 0;
    }
    const whole = rest.byteLength - (rest.byteLength % b.blockSize);
    if (whole > 0) {
      const sums = blockChecksums(rest.subarray(0, whole), b.blockSize, b.checksumSize);
      for (let at = 0, k = 0; at < whole; at += b.blockSize, k += b.checksumSize) await block(rest.subarray(at, at + b.blockSize), sums.subarray(k, k + b.checksumSize));
    }
    carry.set(rest.subarray(whole), 0);
    carryLen = rest.byteLength - whole;
  }
  if (carryLen > 0) await block(carry.subarray(0, carryLen), blockChecksums(carry.subarray(0, carryLen), b.blockSize, b.checksumSize));
  await flush();

  // No new block and no block dropped: the prior map (and the prior backup's copy) still hold.
  if (changed === 0 && items.length === prior.length) return null;
  if (items.length === 0) throw err("AssertError", "a block incremental file of no blocks");
  const map = writeBlockMap(items, b.blockSize, b.checksumSize);
  const mapFilters = storeFilters(o.compressType, o.compressLevel, o.cipherPass, false);
  const storedMap = mapFilters.length ? filterBuffer(map, mapFilters).data : map;
  await out(storedMap);
  sha1.end();
  return { repoSize: written, rck: findResult(sha1.results(), "sha1")!.hash, mapSize: storedMap.byteLength };
}

async function loadPriorMap(repo: Storage, b: BackupBlockIncr, cipherPass: string | undefined): Promise<BlockMapItem[]> {
  const m = b.priorMap!;
  const data = await repo.get(m.repoFile, { offset: m.offset, limit: m.size, filters: cipherPass ? [{ type: "decrypt", pass: cipherPass, raw: true }] : [] });
  return readBlockMap(data!, b.blockSize, b.checksumSize);
}
