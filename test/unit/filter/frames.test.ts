import { describe, expect, test } from "bun:test";
import { filterBuffer } from "../../../src/filter/pipeline.ts";
import { scanFrames } from "../../../src/filter/frames.ts";

const sha1 = (d: Uint8Array) => new Bun.CryptoHasher("sha1").update(d).digest("hex");
const data = new Uint8Array(9_000_000).map((_, i) => (i % 97 < 60 ? 65 + (i % 23) : (i * 2654435761) >>> 24));
const CHUNK = 4_000_000;

/** Concatenated chunk frames, as backup/chunk.ts stores a large file. */
function chunked(type: "lz4" | "zst", withSize = true): { stored: Uint8Array; ends: number[] } {
  const parts: Uint8Array[] = [];
  for (let off = 0; off < data.byteLength; off += CHUNK) {
    const piece = data.subarray(off, Math.min(off + CHUNK, data.byteLength));
    parts.push(filterBuffer(piece, [{ type: "compress", compressType: type, contentSize: withSize ? piece.byteLength : undefined }]).data);
  }
  const stored = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  const ends: number[] = [];
  let at = 0;
  for (const p of parts) {
    stored.set(p, at);
    at += p.byteLength;
    ends.push(at);
  }
  return { stored, ends };
}

describe("frame boundaries from headers", () => {
  for (const type of ["lz4", "zst"] as const) {
    test(`${type}: three chunk frames found with their stored and decompressed sizes; the whole still decompresses as one stream`, async () => {
      const { stored, ends } = chunked(type);
      let reads = 0;
      const frames = await scanFrames(type, stored.byteLength, async (o, n) => (reads++, stored.subarray(o, o + n)));
      expect(frames!.map((f) => f.offset + f.size)).toEqual(ends);
      expect(frames!.map((f) => f.contentSize)).toEqual([CHUNK, CHUNK, data.byteLength - 2 * CHUNK]);
      // Headers only: a few reads per block, far fewer bytes than the file.
      expect(reads).toBeLessThan(stored.byteLength / 1000);
      let whole = filterBuffer(stored, [{ type: "decompress", compressType: type }]).data;
      expect(sha1(whole)).toBe(sha1(data));
      // Each frame alone decompresses to its chunk.
      for (const [i, f] of frames!.entries()) {
        whole = filterBuffer(stored.subarray(f.offset, f.offset + f.size), [{ type: "decompress", compressType: type }]).data;
        expect(sha1(whole)).toBe(sha1(data.subarray(i * CHUNK, i * CHUNK + f.contentSize)));
      }
    });

    test(`${type}: a frame without content size (as pgBackRest writes) is not split`, async () => {
      const { stored } = chunked(type, false);
      expect(await scanFrames(type, stored.byteLength, async (o, n) => stored.subarray(o, o + n))).toBeNull();
    });

    test(`${type}: a file cut inside a frame is a FormatError`, async () => {
      const { stored, ends } = chunked(type);
      const cut = stored.subarray(0, ends[1]! - 10);
      await expect(scanFrames(type, cut.byteLength, async (o, n) => cut.subarray(o, o + n))).rejects.toThrow(/cut short|truncated/);
    });
  }
});
