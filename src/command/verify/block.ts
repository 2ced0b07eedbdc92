/**
 * Verify of a block incremental file (repo-block): the stored bytes were checked as one stream
 * (verify/file.ts); here the file's map is decoded and every block it references, in this backup
 * and in prior ones, is checked: its super block lies inside the stored file of the backup it
 * names (before that file's own map), decrypts and decompresses to the size the map says, and the
 * block's checksum (XXH3-128 truncated to the map's checksum size) is the map's. A file whose map
 * is sound restores; one whose map points at damaged or missing bytes does not, whatever its own
 * stored bytes' SHA-1 says.
 *
 * Memory: one map and one decoded super block at a time. Super blocks are visited per referenced
 * stored file in offset order (each read once even when many blocks of it are referenced), with
 * adjacent ones read through one open.
 */
import { PgbError } from "../../common/error.ts";
import type { CompressType } from "../../filter/filter.ts";
import { blockChecksums } from "../../native/helper.ts";
import { readBlockMap, sameBytes, type BlockMapItem } from "../../repo/block-map.ts";
import type { Storage } from "../../storage/storage.ts";
import { SuperBlockCursor, superBlockFilters, superBlockRuns } from "../shared/super-block.ts";
import type { VerifyFileResult } from "./file.ts";

/** Where one backup of the reference list stores this file's super blocks. */
export type VerifyBlockRef =
  | {
      label: string;
      /** Repository file (bundle or .pgbi) and its bundle id (0: not bundled). */
      path: string;
      bundleId: number;
      /** Stored super blocks lie in [start, end): the file's stored bytes up to its own map. */
      start: number;
      end: number;
      compressType: CompressType;
      cipherPass?: string;
    }
  /** The backup does not store the file (or its manifest is not there): any block pointing at it is lost. */
  | { label: string; problem: string };

export interface VerifyBlockParams {
  /** Manifest name, for messages. */
  name: string;
  blockSize: number;
  checksumSize: number;
  /** Stored size of the map at the end of the file's repository bytes. */
  mapSize: number;
  /** The file's original size (the map has one block per blockSize of it). */
  fileSize: number;
  /** The storing backup's reference list, resolved: a map's reference is an index into it. */
  refs: VerifyBlockRef[];
}

/** Problems after the first are counted, not described: one line per file in the report. */
class Findings {
  first: VerifyFileResult | undefined;
  count = 0;
  add(status: VerifyFileResult["status"], detail: string): void {
    this.count++;
    this.first ??= { status, detail };
  }
  result(): VerifyFileResult {
    if (!this.first) return { status: "ok" };
    return this.count === 1 ? this.first : { ...this.first, detail: `${this.first.detail}; ${this.count - 1} more block problem(s) in this map` };
  }
}

/**
 * Check the map of the file whose stored bytes are `path` [offset, offset + storedSize), and every
 * block it references. `cipherPass` is the storing backup's (the map is encrypted on its own).
 */
export async function verifyBlockFile(
  storage: Storage,
  loc: { path: string; offset: number; storedSize: number; cipherPass?: string },
  b: VerifyBlockParams,
): Promise<VerifyFileResult> {
  if (b.mapSize > loc.storedSize) return { status: "size", detail: `block map of ${b.mapSize} bytes does not fit in the ${loc.storedSize} stored bytes` };
  let items: BlockMapItem[];
  try {
    const data = await storage.get(loc.path, { offset: loc.offset + loc.storedSize - b.mapSize, limit: b.mapSize, filters: superBlockFilters("none", loc.cipherPass, false) });
    items = readBlockMap(data!, b.blockSize, b.checksumSize);
  } catch (e) {
    if (!(e instanceof PgbError)) throw e;
    return { status: "checksum", detail: `block map does not decode: ${e.message}` };
  }
  const blocks = Math.ceil(b.fileSize / b.blockSize);
  if (items.length !== blocks) return { status: "size", detail: `block map has ${items.length} blocks, a file of ${b.fileSize} bytes needs ${blocks}` };

  const found = new Findings();
  // Block numbers (in the file) by reference, each in super block order.
  const byRef = new Map<number, number[]>();
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    const ref = b.refs[it.reference];
    const where = `block ${i} of ${b.name}`;
    if (ref === undefined) {
      found.add("other", `${where} refers to backup #${it.reference}, the manifest's reference list has ${b.refs.length}`);
      continue;
    }
    if ("problem" in ref) {
      found.add("missing", `${where} is in backup ${ref.label}, which ${ref.problem}`);
      continue;
    }
    if (it.bundleId !== ref.bundleId) {
      found.add("other", `${where} is in bundle ${it.bundleId} of backup ${ref.label}, whose manifest stores the file in ${ref.bundleId ? `bundle ${ref.bundleId}` : "its own file"}`);
      continue;
    }
    if (it.offset < ref.start || it.offset + it.size > ref.end) {
      found.add("size", `${where}: its super block (offset ${it.offset}, ${it.size} bytes) in backup ${ref.label} lies outside the file's stored super blocks [${ref.start}, ${ref.end})`);
      continue;
    }
    let list = byRef.get(it.reference);
    if (!list) byRef.set(it.reference, (list = []));
    list.push(i);
  }

  for (const [reference, list] of byRef) {
    const ref = b.refs[reference] as Extract<VerifyBlockRef, { path: string }>;
    list.sort((x, y) => items[x]!.offset - items[y]!.offset || items[x]!.block - items[y]!.block);
    const sizes = new Map<number, number>();
    for (const i of list) sizes.set(items[i]!.offset, items[i]!.size);
    const cursor = new SuperBlockCursor(storage, ref.path, superBlockFilters(ref.compressType, ref.cipherPass, true), superBlockRuns(sizes));
    try {
      for (let k = 0; k < list.length;) {
        const first = items[list[k]!]!;
        let end = k;
        while (end < list.length && items[list[end]!]!.offset === first.offset) end++;
        const at = `super block at offset ${first.offset} of backup ${ref.label}'s ${ref.bundleId ? `bundle ${ref.bundleId}` : "file"}`;
        let sums: Uint8Array | undefined;
        try {
          sums = blockChecksums(await cursor.superBlock(first), b.blockSize, b.checksumSize);
        } catch (e) {
          if (!(e instanceof PgbError)) throw e;
          const status = e.kind === "FileMissingError" ? "missing" : "checksum";
          for (let j = k; j < end; j++) found.add(status, `block ${list[j]} of ${b.name}: ${at} does not decode: ${e.message}`);
          // A damaged super block ends the read of its run: reopen at the next one.
          await cursor.close();
        }
        for (let j = k; sums && j < end; j++) {
          const i = list[j]!;
          const it = items[i]!;
          const want = Math.min(b.blockSize, b.fileSize - i * b.blockSize);
          const have = Math.max(0, Math.min(b.blockSize, it.superBlockSize - it.block * b.blockSize));
          const sum = sums.subarray(it.block * b.checksumSize, (it.block + 1) * b.checksumSize);
          if (have !== want) found.add("size", `block ${i} of ${b.name} has ${have} bytes in the ${at}, the file needs ${want}`);
          else if (!sameBytes(sum, it.checksum)) found.add("checksum", `block ${i} of ${b.name} (block ${it.block} of the ${at}) does not match its checksum in the map`);
        }
        k = end;
      }
    } finally {
      await cursor.close();
    }
  }
  return found.result();
}
