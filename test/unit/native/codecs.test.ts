import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { filterBuffer, Pipeline } from "../../../src/filter/pipeline.ts";
import { compressTypeOfName, COMPRESS_EXT } from "../../../src/filter/compress.ts";

const sha1 = (d: Uint8Array) => new Bun.CryptoHasher("sha1").update(d).digest("hex");
const data = new Uint8Array(2_500_000).map((_, i) => (i % 97 < 60 ? 65 + (i % 23) : (i * 2654435761) >>> 24));

describe("gz, zst, bz2 codecs against the system tools", () => {
  const dir = mkdtempSync(join(tmpdir(), "pgb-codec-"));
  const tools = { gz: ["gzip", "-dc"], zst: ["zstd", "-qdc"], bz2: ["bzip2", "-dc"] } as const;
  const packers = { gz: ["gzip", "-c"], zst: ["zstd", "-qc"], bz2: ["bzip2", "-c"] } as const;

  for (const type of ["gz", "zst", "bz2"] as const) {
    test(`${type}: ours → ${tools[type][0]} and ${packers[type][0]} → ours`, () => {
      const c = filterBuffer(data, [{ type: "compress", compressType: type }]);
      const f = join(dir, `x${COMPRESS_EXT[type]}`);
      writeFileSync(f, c.data);
      const r = Bun.spawnSync([...tools[type], f]);
      expect(r.exitCode).toBe(0);
      expect(sha1(new Uint8Array(r.stdout))).toBe(sha1(data));

      writeFileSync(join(dir, "raw"), data);
      const p = Bun.spawnSync([...packers[type], join(dir, "raw")]);
      expect(p.exitCode).toBe(0);
      const d = filterBuffer(new Uint8Array(p.stdout), [{ type: "decompress", compressType: type }, { type: "sha1" }]);
      expect((d.results[1] as { hash: string }).hash).toBe(sha1(data));
    });

    test(`${type}: byte-at-a-time input decompresses the same`, () => {
      const c = filterBuffer(data.subarray(0, 200_000), [{ type: "compress", compressType: type }]);
      let total = 0;
      const p = new Pipeline([{ type: "decompress", compressType: type }], (o) => (total += o.byteLength), 4096);
      for (let i = 0; i < c.data.length; i += 13) p.process(c.data.subarray(i, i + 13));
      p.end();
      expect(total).toBe(200_000);
    });

    test(`${type}: corrupt or truncated input is an error`, () => {
      const c = filterBuffer(data, [{ type: "compress", compressType: type }]);
      expect(() => filterBuffer(c.data.subarray(0, Math.floor(c.data.length / 2)), [{ type: "decompress", compressType: type }])).toThrow();
    });
  }

  test("extension ↔ type mapping", () => {
    expect(compressTypeOfName("000000010000000000000001-abc.lz4")).toBe("lz4");
    expect(compressTypeOfName("x.gz")).toBe("gz");
    expect(compressTypeOfName("x.zst")).toBe("zst");
    expect(compressTypeOfName("x.bz2")).toBe("bz2");
    expect(compressTypeOfName("PG_VERSION")).toBe("none");
  });

  test("aes-256-cbc matches openssl's salted format both ways", () => {
    const c = filterBuffer(data.subarray(0, 100_000), [{ type: "encrypt", pass: "s3cret" }]);
    writeFileSync(join(dir, "enc"), c.data);
    const r = Bun.spawnSync(["openssl", "enc", "-d", "-aes-256-cbc", "-md", "sha1", "-pass", "pass:s3cret", "-in", join(dir, "enc")]);
    expect(r.exitCode).toBe(0);
    expect(sha1(new Uint8Array(r.stdout))).toBe(sha1(data.subarray(0, 100_000)));
    writeFileSync(join(dir, "plain"), data.subarray(0, 100_000));
    const e = Bun.spawnSync(["openssl", "enc", "-aes-256-cbc", "-md", "sha1", "-pass", "pass:s3cret", "-in", join(dir, "plain")]);
    const d = filterBuffer(new Uint8Array(e.stdout), [{ type: "decrypt", pass: "s3cret" }, { type: "sha1" }]);
    expect((d.results[1] as { hash: string }).hash).toBe(sha1(data.subarray(0, 100_000)));
    expect(() => filterBuffer(c.data, [{ type: "decrypt", pass: "wrong" }])).toThrow(/passphrase|decrypt/);
  });

  test("cleanup", () => rmSync(dir, { recursive: true, force: true }));
});
