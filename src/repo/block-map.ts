/**
 * Block incremental maps (pgBackRest's repo-block format): for every block of a file, where its
 * bytes are stored — which backup (an index into the manifest's backup-reference list), which
 * bundle (0: the file's own `.pgbi` repository file), the offset and stored size of the super
 * block holding it, its number inside that super block — and a checksum of its content.
 *
 * A stored block incremental file is its new super blocks (each compressed and encrypted on its
 * own, "raw": no cipher magic, no lz4 content checksum) followed by the map (encrypted on its own
 * when the repository is, never compressed); the manifest's `bim` is the map's stored size.
 *
 * Encoding, all integers unsigned LEB128 ("varint-128"):
 *   flags (version 0)
 *   references, each: ref << 3 | flags (1 last reference, 2 bundle id follows | continues the
 *     previous super block of this reference, 4 offset follows | that continued super block is the
 *     reference's last); a first appearance gives bundle id and offset (when not 0), a later one
 *     either continues the super block left off or starts one at the end of the previous (plus a
 *     gap when flag 4);
 *     super blocks, each: stored size << 3 | flags (1 last, 2 super block size follows, 4 block
 *       count/offset follows) — the first size of the map as is, later ones zigzag deltas from the
 *       one before; super block size as (size / blockSize) << 1 | has-remainder, then remainder;
 *       block count as (count - 1) << 1 | has-offset, then the skipped block numbers;
 *       then one checksum (checksumSize bytes) per block.
 *
 * Checksums are the first checksumSize bytes of the block's XXH3-128 (native/helper.ts).
 */
import { err } from "../common/error.ts";

/** `bi` in the manifest counts block size in units of this. */
export const BLOCK_INCR_SIZE_FACTOR = 8192;
/** Checksum size when the manifest has no `bic`. */
export const BLOCK_INCR_CHECKSUM_SIZE_MIN = 6;

export interface BlockMapItem {
  /** Index into the manifest's backup-reference list. */
  reference: number;
  /** Bundle holding the super block, 0 when it is the file's own repository file. */
  bundleId: number;
  /** Offset of the super block in the repository file, and its stored (compressed, encrypted) size. */
  offset: number;
  size: number;
  /** Uncompressed size of the super block. */
  superBlockSize: number;
  /** Number of this block inside its super block. */
  block: number;
  checksum: Uint8Array;
}

/** Two checksums (or any byte strings) are equal. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

const LAST = 1;
const REF_BUNDLE_OR_CONTINUE = 2;
const REF_OFFSET_OR_CONTINUE_LAST = 4;
const SB_SIZE_CHANGE = 2;
const SB_TOTAL_OFFSET = 4;

/** Integer ops on values past 2^31 (offsets, sizes): plain arithmetic, never bit operators. */
const shr = (v: number, bits: number) => Math.floor(v / 2 ** bits);
const zigzagDecode = (v: number) => (v % 2 === 0 ? v / 2 : -(v + 1) / 2);
const zigzagEncode = (v: number) => (v >= 0 ? v * 2 : -v * 2 - 1);
const blocksIn = (superBlockSize: number, blockSize: number) => Math.ceil(superBlockSize / blockSize);

class VarReader {
  pos = 0;
  constructor(readonly data: Uint8Array) {}
  varint(): number {
    let v = 0;
    for (let mul = 1; ; mul *= 128) {
      if (this.pos >= this.data.byteLength) throw err("FormatError", `block map is truncated at byte ${this.pos}`);
      const b = this.data[this.pos++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      if (mul > 2 ** 49) throw err("FormatError", `block map has an oversized integer at byte ${this.pos}`);
    }
  }
  bytes(n: number): Uint8Array {
    if (this.pos + n > this.data.byteLength) throw err("FormatError", `block map is truncated at byte ${this.pos}`);
    const out = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

interface RefState { superBlockSize: number; bundleId: number; offset: number; size: number; block: number }

/** Decode a map (checksums are views into `data`). */
export function readBlockMap(data: Uint8Array, blockSize: number, checksumSize: number): BlockMapItem[] {
  const r = new VarReader(data);
  if (r.varint() % 2 !== 0) throw err("FormatError", "block map version must be zero", "was it written by a newer pgBackRest? upgrade pgbunker.");
  const out: BlockMapItem[] = [];
  const refs = new Map<number, RefState>();
  let sizeLast = 0;
  for (;;) {
    const refEnc = r.varint();
    const reference = shr(refEnc, 3);
    let st = refs.get(reference);
    let continued = false;
    let offset: number;
    if (!st) {
      const bundleId = refEnc & REF_BUNDLE_OR_CONTINUE ? r.varint() : 0;
      offset = refEnc & REF_OFFSET_OR_CONTINUE_LAST ? r.varint() : 0;
      st = { superBlockSize: blockSize, bundleId, offset, size: 0, block: 0 };
      refs.set(reference, st);
    } else if (refEnc & REF_BUNDLE_OR_CONTINUE) {
      offset = st.offset;
      continued = true;
    } else {
      offset = st.offset + st.size + (refEnc & REF_OFFSET_OR_CONTINUE_LAST ? r.varint() : 0);
      st.offset = offset;
    }
    for (let first = true; ; first = false) {
      let sbEnc: number;
      let size: number;
      if (continued) {
        sbEnc = SB_TOTAL_OFFSET | (refEnc & REF_OFFSET_OR_CONTINUE_LAST ? LAST : 0);
        size = st.size;
        continued = false;
      } else {
        sbEnc = r.varint();
        size = shr(sbEnc, 3);
        if (sizeLast !== 0) size = zigzagDecode(size) + sizeLast;
        if (sbEnc & SB_SIZE_CHANGE) {
          const enc = r.varint();
          st.superBlockSize = shr(enc, 1) * blockSize + (enc % 2 ? r.varint() : 0);
        }
        if (!first) offset += sizeLast;
        st.offset = offset;
        st.size = size;
        st.block = 0;
      }
      sizeLast = size;
      let total: number;
      if (sbEnc & SB_TOTAL_OFFSET) {
        const enc = r.varint();
        total = shr(enc, 1) + 1;
        if (enc % 2) st.block += r.varint();
      } else total = blocksIn(st.superBlockSize, blockSize);
      for (let i = 0; i < total; i++)
        out.push({ reference, bundleId: st.bundleId, offset, size, superBlockSize: st.superBlockSize, block: st.block + i, checksum: r.bytes(checksumSize) });
      st.block += total;
      if (sbEnc & LAST) break;
    }
    if (refEnc & LAST) break;
  }
  if (r.pos !== data.byteLength) throw err("FormatError", `block map has ${data.byteLength - r.pos} bytes after its end`);
  return out;
}

class VarWriter {
  #buf = new Uint8Array(4096);
  #len = 0;
  #room(n: number): void {
    if (this.#len + n <= this.#buf.byteLength) return;
    const next = new Uint8Array(Math.max(this.#buf.byteLength * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
  varint(v: number): void {
    this.#room(10);
    while (v >= 0x80) {
      this.#buf[this.#len++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.#buf[this.#len++] = v;
  }
  bytes(b: Uint8Array): void {
    this.#room(b.byteLength);
    this.#buf.set(b, this.#len);
    this.#len += b.byteLength;
  }
  result(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/**
 * Encode a map. Items are in file block order; within one reference, offsets never decrease (each
 * backup stores its new blocks in file order), which is what the encoding relies on.
 */
export function writeBlockMap(items: readonly BlockMapItem[], blockSize: number, checksumSize: number): Uint8Array {
  if (items.length === 0) throw err("AssertError", "a block map needs at least one block");
  const w = new VarWriter();
  w.varint(0);
  const refs = new Map<number, RefState>();
  let sizeLast = 0;
  let i = 0;
  while (i < items.length) {
    // A run of items of one reference whose super blocks follow each other (the format has no gap
    // inside a run; a gap, which pgBackRest's maps never have, starts a new run of the reference).
    const ref = items[i]!;
    let end = i + 1;
    const follows = (a: BlockMapItem, b: BlockMapItem) => b.offset === a.offset || b.offset === a.offset + a.size;
    while (end < items.length && items[end]!.reference === ref.reference && follows(items[end - 1]!, items[end]!)) end++;
    let refEnc = end === items.length ? LAST : 0;
    let st = refs.get(ref.reference);
    let continued = false;
    if (!st) {
      if (ref.bundleId > 0) refEnc |= REF_BUNDLE_OR_CONTINUE;
      if (ref.offset > 0) refEnc |= REF_OFFSET_OR_CONTINUE_LAST;
      w.varint(refEnc + ref.reference * 8);
      if (ref.bundleId > 0) w.varint(ref.bundleId);
      if (ref.offset > 0) w.varint(ref.offset);
      st = { superBlockSize: blockSize, bundleId: ref.bundleId, offset: ref.offset, size: 0, block: 0 };
      refs.set(ref.reference, st);
    } else if (ref.offset === st.offset) {
      // Continues the super block this reference left off at; written once we know if it is the last.
      refEnc |= REF_BUNDLE_OR_CONTINUE;
      continued = true;
    } else {
      const gap = ref.offset - (st.offset + st.size);
      if (gap < 0) throw err("AssertError", `block map offsets of reference ${ref.reference} go backwards`);
      if (gap > 0) refEnc |= REF_OFFSET_OR_CONTINUE_LAST;
      w.varint(refEnc + ref.reference * 8);
      if (gap > 0) w.varint(gap);
      st.offset = ref.offset;
      st.size = ref.size;
    }
    // Super blocks of the run: items sharing an offset.
    let sb = i;
    while (sb < end) {
      const s = items[sb]!;
      let sbEnd = sb + 1;
      while (sbEnd < end && items[sbEnd]!.offset === s.offset) sbEnd++;
      const total = sbEnd - sb;
      let sbEnc = sbEnd === end ? LAST : 0;
      if (continued || s.block !== 0 || total !== blocksIn(s.superBlockSize, blockSize)) sbEnc |= SB_TOTAL_OFFSET;
      if (continued) {
        w.varint(refEnc + (sbEnc & LAST ? REF_OFFSET_OR_CONTINUE_LAST : 0) + ref.reference * 8);
        continued = false;
      } else {
        st.offset = s.offset;
        st.size = s.size;
        st.block = 0;
        if (s.superBlockSize !== st.superBlockSize) sbEnc |= SB_SIZE_CHANGE;
        w.varint(sbEnc + (sizeLast === 0 ? s.size : zigzagEncode(s.size - sizeLast)) * 8);
        if (sbEnc & SB_SIZE_CHANGE) {
          const rem = s.superBlockSize % blockSize;
          w.varint(Math.floor(s.superBlockSize / blockSize) * 2 + (rem ? 1 : 0));
          if (rem) w.varint(rem);
          st.superBlockSize = s.superBlockSize;
        }
      }
      sizeLast = s.size;
      if (sbEnc & SB_TOTAL_OFFSET) {
        const skip = s.block - st.block;
        w.varint((total - 1) * 2 + (skip > 0 ? 1 : 0));
        if (skip > 0) {
          w.varint(skip);
          st.block = s.block;
        }
      }
      st.block += total;
      for (let k = sb; k < sbEnd; k++) w.bytes(items[k]!.checksum.subarray(0, checksumSize));
      sb = sbEnd;
    }
    i = end;
  }
  return w.result();
}
