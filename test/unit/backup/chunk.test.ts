/**
 * The chunk jobs of a large file (backup/chunk.ts) run directly on posix storage: the frames they
 * store join into one lz4 stream of the file, and the CRC-32Cs the planner compares show a page
 * written between the chunk read and the hash read, and a file that shrank.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backupChunk, backupChunkHash, backupChunkJoin } from "../../../src/command/backup/chunk.ts";
import type { BackupFileParams } from "../../../src/command/backup/file.ts";
import { filterBuffer } from "../../../src/filter/pipeline.ts";
import { filesToSplit } from "../../../src/command/shared/chunk.ts";

const dir = mkdtempSync(join(tmpdir(), "pgb-chunk-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha1 = (d: Uint8Array) => new Bun.CryptoHasher("sha1").update(d).digest("hex");
const CHUNK = 256 * 1024;
const data = new Uint8Array(CHUNK * 3 + 8192 * 5).map((_, i) => (i % 89 < 50 ? 97 + (i % 19) : (i * 2654435761) >>> 24));
writeFileSync(join(dir, "rel"), data);

const file: BackupFileParams = {
  pg: { kind: "posix", base: dir },
  repo: { kind: "posix", base: join(dir, "repo") },
  pgFile: "rel",
  repoFile: "rel.lz4",
  compressType: "lz4",
  bufferSize: 64 * 1024,
};
const count = Math.ceil(data.byteLength / CHUNK);
const chunk = (index: number) => backupChunk({ file, index, count, offset: index * CHUNK, length: Math.min(CHUNK, data.byteLength - index * CHUNK) });

describe("backup chunk jobs", () => {
  test("chunks and hash agree; the joined file is one lz4 stream of the file, its rck over the stored bytes", async () => {
    const chunks = [];
    for (let i = 0; i < count; i++) chunks.push(await chunk(i));
    const hash = (await backupChunkHash({ pg: file.pg, pgFile: "rel", chunkSize: CHUNK, bufferSize: 100_000 }))!;
    expect(hash.size).toBe(data.byteLength);
    expect(hash.checksum).toBe(sha1(data));
    expect(chunks.map((c) => c.crc)).toEqual(hash.crcs);
    const joined = (await backupChunkJoin({ repo: file.repo, repoFile: "rel.lz4", count, bufferSize: 64 * 1024 }))!;
    const stored = readFileSync(join(dir, "repo", "rel.lz4"));
    expect(joined.repoSize).toBe(stored.byteLength);
    expect(joined.rck).toBe(sha1(stored));
    expect(joined.repoSize).toBe(chunks.reduce((n, c) => n + c.repoSize, 0));
    expect(sha1(filterBuffer(stored, [{ type: "decompress", compressType: "lz4" }]).data)).toBe(hash.checksum);
  });

  test("a page written between the chunk read and the hash read: that chunk's CRC-32C differs", async () => {
    const c1 = await chunk(1);
    const changed = data.slice();
    changed.fill(7, CHUNK + 8192, CHUNK + 16384);
    writeFileSync(join(dir, "rel"), changed);
    const hash = (await backupChunkHash({ pg: file.pg, pgFile: "rel", chunkSize: CHUNK, bufferSize: 100_000 }))!;
    expect(hash.crcs[1]).not.toBe(c1.crc);
    expect(hash.crcs[0]).toBe((await chunk(0)).crc);
    writeFileSync(join(dir, "rel"), data);
  });

  test("a file that shrank inside a chunk: the chunk is short (its frame could not keep its content size)", async () => {
    truncateSync(join(dir, "rel"), CHUNK * 2 + 8192);
    expect((await chunk(2)).status).toBe("short");
    writeFileSync(join(dir, "rel"), data);
  });
});

test("only the large files that would leave workers idle are split (the last count mod workers; none with one worker)", () => {
  expect([...filesToSplit(["a"], 2)]).toEqual(["a"]);
  expect([...filesToSplit(["a", "b"], 2)]).toEqual([]);
  expect([...filesToSplit(["a", "b", "c"], 2)]).toEqual(["c"]);
  expect([...filesToSplit(["a", "b", "c", "d", "e"], 4)]).toEqual(["e"]);
  expect([...filesToSplit(["a", "b"], 4)]).toEqual(["a", "b"]);
  expect([...filesToSplit(["a"], 1)]).toEqual([]);
});
