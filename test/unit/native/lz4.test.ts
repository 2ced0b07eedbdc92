import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { filterBuffer, Pipeline } from "../../../src/filter/pipeline.ts";
import { xxh32 } from "../../../src/native/helper.ts";
import { Lz4Compressor } from "../../../src/native/lz4.ts";

/** Data that lz4 compresses about 2-3x: text-like runs mixed with noise. */
function sample(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = i % 64 < 40 ? 97 + ((i >> 6) % 26) : x >>> 24;
  }
  return out;
}

const sha1 = (d: Uint8Array) => new Bun.CryptoHasher("sha1").update(d).digest("hex");

describe("lz4 frame compatibility with the lz4 command", () => {
  const dir = mkdtempSync(join(tmpdir(), "pgb-lz4-"));
  const data = sample(3_000_000);

  test("our frames decompress with `lz4 -d` to identical bytes", () => {
    for (const level of [1, 6, 12]) {
      const c = filterBuffer(data, [{ type: "compress", compressType: "lz4", level }]);
      writeFileSync(join(dir, "ours.lz4"), c.data);
      const r = Bun.spawnSync(["lz4", "-d", "-c", join(dir, "ours.lz4")]);
      expect(r.exitCode).toBe(0);
      expect(sha1(new Uint8Array(r.stdout))).toBe(sha1(data));
    }
  });

  test("frames written by `lz4` (several block sizes, concatenated) decompress with ours", () => {
    writeFileSync(join(dir, "in.bin"), data);
    for (const flags of [["-B4"], ["-B7"], ["-B5", "-BD", "--content-size"]]) {
      const r = Bun.spawnSync(["lz4", "-f", "-q", ...flags, join(dir, "in.bin"), join(dir, "theirs.lz4")]);
      expect(r.exitCode).toBe(0);
      const theirs = new Uint8Array(readFileSync(join(dir, "theirs.lz4")));
      const d = filterBuffer(theirs, [{ type: "decompress", compressType: "lz4" }, { type: "sha1" }]);
      expect((d.results[1] as { hash: string }).hash).toBe(sha1(data));
    }
    const one = new Uint8Array(readFileSync(join(dir, "theirs.lz4")));
    const two = new Uint8Array(one.length * 2);
    two.set(one, 0);
    two.set(one, one.length);
    const d = filterBuffer(two, [{ type: "decompress", compressType: "lz4" }, { type: "size" }]);
    expect((d.results[1] as { size: number }).size).toBe(data.length * 2);
  });

  test("frame header: 64 KiB linked blocks with content checksum, as pgBackRest writes", () => {
    const c = new Lz4Compressor(1);
    const head = c.update(new Uint8Array(10));
    c.free();
    expect([...head.subarray(0, 6)]).toEqual([0x04, 0x22, 0x4d, 0x18, 0x44, 0x40]);
  });

  test("a truncated frame is an error, not silent data loss", () => {
    const c = filterBuffer(data, [{ type: "compress", compressType: "lz4" }]);
    expect(() => filterBuffer(c.data.subarray(0, c.data.length - 9), [{ type: "decompress", compressType: "lz4" }])).toThrow(/truncated/);
  });

  test("the content checksum is checked, unless the output is verified by the caller (outputVerified)", () => {
    const c = filterBuffer(data, [{ type: "compress", compressType: "lz4" }]);
    const bad = c.data.slice();
    bad[bad.length - 1]! ^= 0xff; // the frame's xxh32 content checksum is its last 4 bytes
    expect(() => filterBuffer(bad, [{ type: "decompress", compressType: "lz4" }])).toThrow(/checksum/i);
    // Skipped: the bytes come out whole, and the SHA-1 the caller checks is the original's.
    const d = filterBuffer(bad, [{ type: "decompress", compressType: "lz4", outputVerified: true }, { type: "sha1" }]);
    expect((d.results[1] as { hash: string }).hash).toBe(sha1(data));
    // Damage to the compressed data itself still changes that SHA-1 or fails to decode.
    const worse = c.data.slice();
    worse[Math.floor(worse.length / 2)]! ^= 0x55;
    let hash: string | undefined;
    try {
      hash = (filterBuffer(worse, [{ type: "decompress", compressType: "lz4", outputVerified: true }, { type: "sha1" }]).results[1] as { hash: string }).hash;
    } catch {}
    expect(hash).not.toBe(sha1(data));
  });

  test("1 GiB streams through compress → decompress in bounded memory", () => {
    const chunk = sample(1 << 20, 7);
    const inHash = new Bun.CryptoHasher("sha1");
    const outHash = new Bun.CryptoHasher("sha1");
    let outBytes = 0;
    const dec = new Pipeline([{ type: "decompress", compressType: "lz4" }], (out) => {
      outHash.update(out);
      outBytes += out.byteLength;
    });
    const enc = new Pipeline([{ type: "compress", compressType: "lz4" }], (out) => dec.process(out));
    Bun.gc(true);
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    for (let i = 0; i < 1024; i++) {
      chunk[i % chunk.length] = i & 0xff; // vary the stream
      inHash.update(chunk);
      enc.process(chunk);
      if (i % 64 === 0) peak = Math.max(peak, process.memoryUsage().rss);
    }
    enc.end();
    dec.end();
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(outBytes).toBe(1 << 30);
    expect(outHash.digest("hex")).toBe(inHash.digest("hex"));
    // Streaming: growth stays far below the 1 GiB that passed through.
    expect(peak - rssBefore).toBeLessThan(96 * 1024 * 1024);
  }, 120_000);

  test("frames are byte for byte what `lz4 -1 -B4 -BD` writes (content checksum added by libpgbunker), in any chunking", () => {
    for (const size of [0, 1, 15, 16, 17, 65_535, 65_537, 131_073, 1_000_003]) {
      const input = sample(size, size + 7);
      const whole = filterBuffer(input, [{ type: "compress", compressType: "lz4" }]).data;
      writeFileSync(join(dir, "in.bin"), input);
      writeFileSync(join(dir, "in.lz4"), whole);
      // `lz4 -d` checks the header checksum and the content checksum.
      const back = Bun.spawnSync(["lz4", "-d", "-c", join(dir, "in.lz4")]);
      expect(back.exitCode).toBe(0);
      expect(sha1(new Uint8Array(back.stdout))).toBe(sha1(input));
      // The command writes a frame of one block (or none) with independent blocks (and 1.9.4 fails
      // on some sizes just under 64 KiB): compare bytes above that.
      if (size <= 65_536) continue;
      const r = Bun.spawnSync(["lz4", "-q", "-1", "-B4", "-BD", "-c", join(dir, "in.bin")]);
      expect(`${r.exitCode} ${r.stderr}`).toBe("0 ");
      const theirs = sha1(new Uint8Array(r.stdout));
      expect(sha1(whole)).toBe(theirs);
      // Odd chunk sizes: the XXH32 state carries partial 16-byte stripes between calls.
      const parts: Uint8Array[] = [];
      const p = new Pipeline([{ type: "compress", compressType: "lz4" }], (o) => parts.push(o.slice()));
      for (let pos = 0, step = 1; pos < size; pos += step, step = 1 + ((step * 7 + 3) % 70_001)) p.process(input.subarray(pos, pos + step));
      p.end();
      expect(sha1(Buffer.concat(parts))).toBe(theirs);
    }
  });

  test("codecs reuse output buffers file after file (pooled), also with two lz4 codecs live in one chain", () => {
    const files = [sample(2_500_000, 3), sample(70_000, 4), sample(1_200_000, 5)];
    const stored = files.map((f) => filterBuffer(f, [{ type: "compress", compressType: "lz4" }]).data);
    for (let round = 0; round < 3; round++) {
      files.forEach((f, i) => {
        // Re-compress (backup-copy): decompress → compress → decompress, fed in odd chunks.
        const parts: Uint8Array[] = [];
        const p = new Pipeline([{ type: "decompress", compressType: "lz4" }, { type: "compress", compressType: "lz4" }, { type: "decompress", compressType: "lz4" }, { type: "sha1" }], (o) => parts.push(o.slice()), 64 * 1024);
        for (let pos = 0; pos < stored[i]!.length; pos += 99_991) p.process(stored[i]!.subarray(pos, pos + 99_991));
        p.end();
        expect((p.results()[3] as { hash: string }).hash).toBe(sha1(f));
        expect(sha1(Buffer.concat(parts))).toBe(sha1(f));
        expect(sha1(filterBuffer(f, [{ type: "compress", compressType: "lz4" }]).data)).toBe(sha1(stored[i]!));
      });
    }
  });

  test("xxh32 matches the reference vectors", () => {
    expect(xxh32(new Uint8Array(0))).toBe(0x02cc5d05);
    expect(xxh32(new TextEncoder().encode("abc"))).toBe(0x32d153ff);
    expect(xxh32(new TextEncoder().encode("Nobody inspects the spammish repetition"))).toBe(0xe2293b2f);
  });

  test("cleanup", () => rmSync(dir, { recursive: true, force: true }));
});
