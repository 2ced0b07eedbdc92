/**
 * The posix reader's buffer reuse (a backup's hot path): a read returns a chunk valid until the
 * next read, and no read allocates a new buffer for its chunk: pass-through filters hand out the
 * reader's own buffer, transforming filters one accumulation buffer reused for every read.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findLastResult, findResult, type FilterSpec } from "../../../src/filter/filter.ts";
import { filterBuffer } from "../../../src/filter/pipeline.ts";
import { posix } from "../../../src/storage/posix/posix.ts";
import { Storage } from "../../../src/storage/storage.ts";
import { testBytes } from "../../conformance/storage.ts";

const dir = mkdtempSync(join(tmpdir(), "pgb-posix-read-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const s = new Storage(posix, dir);

async function chunks(path: string, filters: FilterSpec[], bufferSize: number): Promise<{ copies: Uint8Array[]; buffers: Set<ArrayBufferLike> }> {
  const r = (await s.openRead(path, { filters, bufferSize }))!;
  const copies: Uint8Array[] = [];
  const buffers = new Set<ArrayBufferLike>();
  for (let c = await r.read(); c !== null; c = await r.read()) {
    copies.push(c.slice());
    buffers.add(c.buffer);
  }
  await r.close();
  return { copies, buffers };
}

function joined(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.byteLength;
  }
  return out;
}

describe("posix read buffers", () => {
  const data = testBytes(3 * 1024 * 1024 + 777, 9);

  test("pass-through filters: every chunk is a view of the reader's one buffer", async () => {
    await s.put("plain", data);
    const { copies, buffers } = await chunks("plain", [{ type: "sha1" }, { type: "size" }], 64 * 1024);
    expect(copies.length).toBeGreaterThan(40);
    expect(buffers.size).toBe(1);
    expect(Buffer.compare(joined(copies), data)).toBe(0);
  });

  test("compression: chunks come from one reused buffer, bytes identical to a one-shot compress", async () => {
    const { copies, buffers } = await chunks("plain", [{ type: "sha1" }, { type: "compress", compressType: "lz4" }, { type: "size" }], 64 * 1024);
    expect(copies.length).toBeGreaterThan(10);
    expect(buffers.size).toBe(1);
    const expected = filterBuffer(data, [{ type: "compress", compressType: "lz4" }]).data;
    expect(Buffer.compare(joined(copies), expected)).toBe(0);
  });

  test("a filter emitting many pieces per read: pieces are kept in order", async () => {
    // Highly compressible input: one 64KiB read of compressed bytes decompresses into many
    // buffer-size pieces, each overwriting the decompressor's buffer before the next.
    const big = new Uint8Array(8 * 1024 * 1024).map((_, i) => (i >> 12) & 0xff);
    await s.put("big.lz4", filterBuffer(big, [{ type: "compress", compressType: "lz4" }]).data);
    const { copies } = await chunks("big.lz4", [{ type: "decompress", compressType: "lz4" }], 16 * 1024);
    const out = joined(copies);
    expect(out.byteLength).toBe(big.byteLength);
    expect(Buffer.compare(out, big)).toBe(0);
  });

  // Read buffers come from the thread's pool (native/buffer-pool.ts), shared with the codecs: a
  // buffer a finished file gave back is the next file's. Each file's bytes must be its own.
  const sha1 = (b: Uint8Array) => createHash("sha1").update(b).digest("hex");
  const files = [5 * 1024 * 1024 + 3, 300 * 1024, 1024 * 1024, 8192, 2 * 1024 * 1024 + 4095].map((n, i) => testBytes(n, 20 + i));

  test("files in sequence through the backup chain into posix writes: each file's SHA-1 and bytes", async () => {
    for (let i = 0; i < files.length; i++) await s.put(`seq-${i}`, files[i]!);
    const chain: FilterSpec[] = [{ type: "sha1" }, { type: "size" }, { type: "compress", compressType: "lz4" }, { type: "sha1" }, { type: "size" }];
    for (let i = 0; i < files.length; i++) {
      // As backup's pump does: each chunk written (FileSink copies it) before the next read.
      const r = (await s.openRead(`seq-${i}`, { filters: chain, bufferSize: 256 * 1024 }))!;
      const w = await s.openWrite(`seq-${i}.lz4`);
      for (let c = await r.read(); c !== null; c = await r.read()) await w.write(c);
      await w.close();
      await r.close();
      const res = r.results();
      expect(findResult(res, "sha1")!.hash).toBe(sha1(files[i]!));
      expect(findResult(res, "size")!.size).toBe(files[i]!.byteLength);
      const stored = readFileSync(join(dir, `seq-${i}.lz4`));
      expect(findLastResult(res, "sha1")!.hash).toBe(sha1(stored));
      const back = filterBuffer(stored, [{ type: "decompress", compressType: "lz4" }]).data;
      expect(back.byteLength).toBe(files[i]!.byteLength);
      expect(sha1(back)).toBe(sha1(files[i]!));
    }
  });

  test("pass-through files in sequence hand out each file's bytes", async () => {
    for (let i = 0; i < files.length; i++) {
      const { copies } = await chunks(`seq-${i}`, [{ type: "sha1" }, { type: "size" }], 1024 * 1024);
      expect(sha1(joined(copies))).toBe(sha1(files[i]!));
    }
  });

  test("two reads interleaved on one thread: neither sees the other's bytes", async () => {
    const a = (await s.openRead("seq-0", { filters: [{ type: "sha1" }], bufferSize: 64 * 1024 }))!;
    const b = (await s.openRead("seq-4", { filters: [{ type: "sha1" }], bufferSize: 64 * 1024 }))!;
    const pa: Uint8Array[] = [];
    const pb: Uint8Array[] = [];
    let ca = await a.read();
    let cb = await b.read();
    while (ca !== null || cb !== null) {
      if (ca !== null) pa.push(ca.slice());
      if (cb !== null) pb.push(cb.slice());
      ca = ca === null ? null : await a.read();
      cb = cb === null ? null : await b.read();
    }
    await a.close();
    await b.close();
    expect(sha1(joined(pa))).toBe(sha1(files[0]!));
    expect(sha1(joined(pb))).toBe(sha1(files[4]!));
  });

  test("a chunk kept past an early close stays intact while other files are read", async () => {
    // backup's page recheck reads one page, closes, then verifies the view: the buffer of a read
    // closed before its end is not given back to the pool.
    const r = (await s.openRead("seq-1", { offset: 8192, limit: 8192, bufferSize: 8192 }))!;
    const page = (await r.read())!;
    await r.close();
    const want = sha1(files[1]!.subarray(8192, 16384));
    for (let i = 0; i < files.length; i++) await chunks(`seq-${i}`, [{ type: "sha1" }], 8192);
    expect(sha1(page)).toBe(want);
  });
});
