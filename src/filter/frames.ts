/**
 * Frame boundaries of a stored lz4 or zstd file, found by reading headers only.
 *
 * A large file backed up in chunks is stored as one frame per chunk, concatenated (still one valid
 * lz4/zstd stream for any decoder, pgBackRest's included). Restore decompresses those frames in
 * parallel, each at its offset in the restored file, so it needs, for every frame, where it starts
 * and ends in the stored file and how many bytes it decompresses to. The stored size of a frame is
 * in no header: it is found by walking the frame's block headers (lz4: a 4-byte size per block;
 * zstd: a 3-byte header per block), one small positional read each, never the block data.
 * The decompressed size is the frame header's content size, which pgbunker writes in chunk
 * frames; a frame without it (pgBackRest writes none) ends the scan: the file is restored as one
 * stream as before.
 *
 * Formats: lz4 frame format 1.6.x (lz4_Frame_format.md), zstd RFC 8878 section 3.1.1.
 */
import { err } from "../common/error.ts";
import type { CompressType } from "./filter.ts";

export interface Frame {
  /** Offset of the frame in the stored file. */
  offset: number;
  /** Stored (compressed) bytes of the frame. */
  size: number;
  /** Decompressed bytes (from the frame header). */
  contentSize: number;
}

/** Positional read of up to `length` bytes at `offset` (fewer only at the end of the file). */
export type ReadAt = (offset: number, length: number) => Promise<Uint8Array>;

const LZ4_MAGIC = 0x184d2204;
const ZSTD_MAGIC = 0xfd2fb528;
/** Both formats' skippable frames: magic 0x184D2A50..5F, 4-byte size, data. */
const isSkippable = (magic: number) => (magic & 0xfffffff0) >>> 0 === 0x184d2a50;
/** Longest frame header: lz4 19 bytes (magic, FLG, BD, content size, dict id, HC), zstd 18. */
const HEADER_MAX = 19;

/**
 * The frames of a stored file of `fileSize` bytes, or null when it cannot be split: a frame without
 * a content size, fewer than two frames, or a compression type without frames (gz, bz2, none).
 * A malformed header is a FormatError naming what was found.
 */
export async function scanFrames(type: CompressType, fileSize: number, readAt: ReadAt): Promise<Frame[] | null> {
  if (type !== "lz4" && type !== "zst") return null;
  const frames: Frame[] = [];
  let pos = 0;
  while (pos < fileSize) {
    const head = await readAt(pos, Math.min(HEADER_MAX, fileSize - pos));
    if (head.byteLength < 8) throw bad(type, pos, "a truncated frame header");
    const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
    const magic = v.getUint32(0, true);
    if (isSkippable(magic)) {
      pos += 8 + v.getUint32(4, true);
      continue;
    }
    const frame = type === "lz4" ? await lz4Frame(v, pos, fileSize, readAt) : await zstdFrame(v, pos, fileSize, readAt);
    if (frame === null) return null;
    frames.push(frame);
    pos += frame.size;
  }
  return frames.length >= 2 ? frames : null;
}

function bad(type: CompressType, offset: number, what: string) {
  return err("FormatError", `${type} stored file: expected a frame at offset ${offset}, found ${what}`, "the file is incomplete or corrupt: run 'pgbunker verify'.");
}

/** Little-endian unsigned integer of `n` bytes (n ≤ 3) at `at`. */
function uintLE(b: Uint8Array, at: number, n: number): number {
  let x = 0;
  for (let i = n - 1; i >= 0; i--) x = x * 256 + b[at + i]!;
  return x;
}

async function lz4Frame(v: DataView, start: number, fileSize: number, readAt: ReadAt): Promise<Frame | null> {
  if (v.getUint32(0, true) !== LZ4_MAGIC) throw bad("lz4", start, `magic 0x${v.getUint32(0, true).toString(16)}`);
  const flg = v.getUint8(4);
  if (flg >> 6 !== 1) throw bad("lz4", start, `frame version ${flg >> 6}`);
  const blockChecksum = (flg & 0x10) !== 0;
  const hasContentSize = (flg & 0x08) !== 0;
  const contentChecksum = (flg & 0x04) !== 0;
  const hasDictId = (flg & 0x01) !== 0;
  if (!hasContentSize) return null;
  const headerSize = 4 + 2 + 8 + (hasDictId ? 4 : 0) + 1;
  if (v.byteLength < headerSize) throw bad("lz4", start, "a truncated frame header");
  const contentSize = Number(v.getBigUint64(6, true));
  let pos = start + headerSize;
  for (;;) {
    if (pos + 4 > fileSize) throw bad("lz4", start, "a frame cut short before its end mark");
    const h = await readAt(pos, 4);
    const word = new DataView(h.buffer, h.byteOffset, 4).getUint32(0, true);
    pos += 4;
    if (word === 0) break; // end mark
    pos += (word & 0x7fffffff) + (blockChecksum ? 4 : 0);
  }
  if (contentChecksum) pos += 4;
  if (pos > fileSize) throw bad("lz4", start, "a frame cut short");
  return { offset: start, size: pos - start, contentSize };
}

async function zstdFrame(v: DataView, start: number, fileSize: number, readAt: ReadAt): Promise<Frame | null> {
  if (v.getUint32(0, true) !== ZSTD_MAGIC) throw bad("zst", start, `magic 0x${v.getUint32(0, true).toString(16)}`);
  const fhd = v.getUint8(4);
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd & 0x20) !== 0;
  const contentChecksum = (fhd & 0x04) !== 0;
  const dictIdSize = [0, 1, 2, 4][fhd & 0x03]!;
  const fcsSize = fcsFlag === 0 ? (singleSegment ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
  if (fcsSize === 0) return null;
  const fcsAt = 5 + (singleSegment ? 0 : 1) + dictIdSize;
  if (v.byteLength < fcsAt + fcsSize) throw bad("zst", start, "a truncated frame header");
  const contentSize = fcsSize === 1 ? v.getUint8(fcsAt) : fcsSize === 2 ? v.getUint16(fcsAt, true) + 256 : fcsSize === 4 ? v.getUint32(fcsAt, true) : Number(v.getBigUint64(fcsAt, true));
  let pos = start + fcsAt + fcsSize;
  for (;;) {
    if (pos + 3 > fileSize) throw bad("zst", start, "a frame cut short before its last block");
    const h = await readAt(pos, 3);
    const word = uintLE(h, 0, 3);
    pos += 3;
    const blockType = (word >> 1) & 3;
    if (blockType === 3) throw bad("zst", start, `a reserved block type at offset ${pos - 3}`);
    pos += blockType === 1 ? 1 : word >>> 3;
    if (word & 1) break; // last block
  }
  if (contentChecksum) pos += 4;
  if (pos > fileSize) throw bad("zst", start, "a frame cut short");
  return { offset: start, size: pos - start, contentSize };
}
