/**
 * The posix reader's buffer reuse (a backup's hot path): a read returns a chunk valid until the
 * next read, and no read allocates a new buffer for its chunk: pass-through filters hand out the
 * reader's own buffer, transforming filters one accumulation buffer reused for every read.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FilterSpec } from "../../../src/filter/filter.ts";
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
});
