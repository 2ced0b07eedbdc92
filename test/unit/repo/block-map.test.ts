import { describe, expect, test } from "bun:test";
import { blockChecksums } from "../../../src/native/helper.ts";
import { readBlockMap, writeBlockMap, type BlockMapItem } from "../../../src/repo/block-map.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const sum = (n: number) => new Uint8Array(6).fill(n);

describe("block map", () => {
  // Written by pgBackRest 2.59.1: a 3-block fsm file of an incr whose first two blocks are in the
  // prior incr's super block and whose third is in its own bundle.
  const PGBACKREST_MAP = "000e01aae80aa713060200393617a6d1326239aa825417019abb039912b16a77c3ddf3";

  test("decodes a map pgBackRest wrote and encodes it back to the same bytes", () => {
    const data = Buffer.from(PGBACKREST_MAP, "hex");
    const items = readBlockMap(data, 8192, 6);
    expect(items.map((i) => [i.reference, i.bundleId, i.offset, i.size, i.superBlockSize, i.block, hex(i.checksum)])).toEqual([
      [1, 1, 177194, 308, 24576, 0, "00393617a6d1"],
      [1, 1, 177194, 308, 24576, 1, "326239aa8254"],
      [2, 1, 56730, 162, 8192, 0, "b16a77c3ddf3"],
    ]);
    expect(hex(writeBlockMap(items, 8192, 6))).toBe(PGBACKREST_MAP);
  });

  test("round trip: continued super blocks, gaps, partial super blocks, offsets past 4 GiB", () => {
    const it = (reference: number, offset: number, size: number, superBlockSize: number, block: number, bundleId = 0): BlockMapItem =>
      ({ reference, bundleId, offset, size, superBlockSize, block, checksum: sum(reference * 16 + block) });
    const items = [
      it(0, 0, 500, 32768, 0), it(0, 0, 500, 32768, 1),
      it(2, 6_000_000_000, 90, 8192, 0, 3),
      it(0, 0, 500, 32768, 3), // continues reference 0's first super block, after a block another backup replaced
      it(0, 900, 120, 20000, 1), // a gap, a new super block size with a remainder, and a skipped first block
      it(1, 10, 77, 16384, 0), it(1, 10, 77, 16384, 1),
    ];
    const encoded = writeBlockMap(items, 8192, 6);
    expect(readBlockMap(encoded, 8192, 6).map((i) => ({ ...i, checksum: hex(i.checksum) }))).toEqual(items.map((i) => ({ ...i, checksum: hex(i.checksum) })));
  });

  test("damaged maps are format errors, not wrong blocks", () => {
    const data = Buffer.from(PGBACKREST_MAP, "hex");
    expect(() => readBlockMap(data.subarray(0, data.length - 3), 8192, 6)).toThrow(/truncated/);
    expect(() => readBlockMap(Buffer.concat([data, Buffer.from([0])]), 8192, 6)).toThrow(/after its end/);
    expect(() => readBlockMap(Buffer.from([1, 0]), 8192, 6)).toThrow(/version/);
  });

  test("block checksums are XXH3-128 (canonical form), cut to the checksum size, one per block", () => {
    expect(hex(blockChecksums(new TextEncoder().encode("abc"), 8192, 16))).toBe("06b05ab6733a618578af5f94892f3950");
    const two = blockChecksums(new Uint8Array(8192 + 3).fill(7), 8192, 6);
    expect(two.byteLength).toBe(12);
    expect(hex(two.subarray(0, 6))).toBe(hex(blockChecksums(new Uint8Array(8192).fill(7), 8192, 6)));
  });
});
