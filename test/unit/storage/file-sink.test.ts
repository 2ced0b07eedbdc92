/**
 * FileSink: files that fill a stage are written with O_DIRECT (their pages never enter the page
 * cache), smaller ones and tails through it; bytes identical either way, on a file system with
 * direct I/O and on one without.
 */
import { describe, expect, test } from "bun:test";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileSink, STAGE } from "../../../src/storage/posix/file-sink.ts";
import { posix } from "../../../src/storage/posix/posix.ts";
import { testBytes } from "../../conformance/storage.ts";
import { scratchDirs } from "../../harness/scratch.ts";

const tempIn = scratchDirs("pgb-sink-");

/** Write data in chunks of the given sizes (cycled) through a FileSink. */
function writeThrough(path: string, data: Uint8Array, chunks: number[], writeback = true, through = false): FileSink {
  const fd = openSync(path, "w");
  const sink = new FileSink(fd, path, { writeback, through });
  let pos = 0;
  for (let i = 0; pos < data.byteLength; i++) {
    const n = chunks[i % chunks.length]!;
    sink.write(data.subarray(pos, pos + n));
    pos += n;
  }
  sink.finish();
  closeSync(fd);
  return sink;
}

function fsType(path: string): string {
  return Bun.spawnSync(["stat", "-f", "-c", "%T", path]).stdout.toString().trim();
}

/** Pages of a file in the page cache (util-linux fincore), or undefined without the tool. */
function cachedPages(path: string): number | undefined {
  const r = Bun.spawnSync(["fincore", "--bytes", "--noheadings", "--output=PAGES", path]);
  return r.exitCode === 0 ? Number(r.stdout.toString().trim()) : undefined;
}

// The data directory's file system (ext4 on the test machine) and tmpfs, which may refuse O_DIRECT.
const places = [tmpdir(), ...(existsSync("/dev/shm") ? ["/dev/shm"] : [])];

describe.each(places)("FileSink in %s", (parent) => {
  test("a large file: identical bytes; its stages bypass the page cache where O_DIRECT works", () => {
    const dir = tempIn(parent);
    const data = testBytes(5 * STAGE + 12_345, 5);
    const path = join(dir, "big");
    const sink = writeThrough(path, data, [300_000, 1_048_576, 7]);
    // (Before reading it back, which caches it.) tmpfs accepts O_DIRECT, but its files live in
    // the page cache anyway.
    const cached = cachedPages(path);
    if (sink.direct && cached !== undefined && fsType(parent) !== "tmpfs") expect(cached).toBeLessThan(STAGE / 4096); // at most the tail
    expect(Buffer.compare(readFileSync(path), data)).toBe(0);
  });

  test("a file written through (WriteOptions.direct: false): identical bytes, unstaged, through the page cache", () => {
    const dir = tempIn(parent);
    for (const size of [0, 1, STAGE - 1, 3 * STAGE + 4097]) {
      const data = testBytes(size, size + 1);
      const path = join(dir, `through-${size}`);
      const sink = writeThrough(path, data, [65_536, 7, 1_048_576], false, true);
      expect(sink.direct).toBe(false);
      expect(Buffer.compare(readFileSync(path), data)).toBe(0);
    }
  });

  test("a small file and a file of exactly one stage: identical bytes", () => {
    const dir = tempIn(parent);
    for (const size of [0, 1, 100_000, STAGE, STAGE + 4096]) {
      const data = testBytes(size, size);
      const path = join(dir, `f${size}`);
      const sink = writeThrough(path, data, [65_536]);
      expect(Buffer.compare(readFileSync(path), data)).toBe(0);
      if (size < STAGE) expect(sink.direct).toBe(false);
    }
  });
});

test("O_DIRECT is used on the test machine's temp file system (ext4)", () => {
  if (fsType(tmpdir()) !== "ext2/ext3") return; // stat prints ext2/ext3 for ext4; other file systems may not support it
  const dir = tempIn(tmpdir());
  const path = join(dir, "x");
  expect(writeThrough(path, testBytes(2 * STAGE + 100, 1), [STAGE]).direct).toBe(true);
  const cached = cachedPages(path);
  if (cached !== undefined) expect(cached).toBeLessThanOrEqual(1); // only the 100-byte tail
});

test("posix writes: a large file synced at close (restore's) still goes direct; direct: false (archive-push's WAL) through the page cache", async () => {
  if (fsType(tmpdir()) !== "ext2/ext3") return; // as above: where O_DIRECT is known to work
  const dir = tempIn(tmpdir());
  const data = testBytes(4 * STAGE + 100, 9);
  for (const [name, direct] of [["synced", undefined], ["through", false]] as const) {
    const w = await posix.openWrite(join(dir, name), { direct });
    await w.write(data);
    await w.close();
    const cached = cachedPages(join(dir, name));
    if (cached !== undefined) {
      if (direct === false) expect(cached).toBe(Math.ceil(data.byteLength / 4096));
      else expect(cached).toBeLessThanOrEqual(1); // only the 100-byte tail
    }
    expect(Buffer.compare(readFileSync(join(dir, name)), data)).toBe(0);
  }
});

describe("background writes (a stage is written while the next one fills)", () => {
  test("two large files written in turn by one thread: both identical", () => {
    const dir = tempIn(tmpdir());
    const a = testBytes(6 * STAGE + 777, 11);
    const b = testBytes(4 * STAGE + 4096, 12);
    const fa = openSync(join(dir, "a"), "w");
    const fb = openSync(join(dir, "b"), "w");
    const sa = new FileSink(fa, join(dir, "a"), { writeback: false });
    const sb = new FileSink(fb, join(dir, "b"), { writeback: false });
    const piece = 400_000;
    for (let pos = 0; pos < Math.max(a.byteLength, b.byteLength); pos += piece) {
      if (pos < a.byteLength) sa.write(a.subarray(pos, pos + piece));
      if (pos < b.byteLength) sb.write(b.subarray(pos, pos + piece));
    }
    sa.finish();
    sb.finish();
    closeSync(fa);
    closeSync(fb);
    expect(Buffer.compare(readFileSync(join(dir, "a")), a)).toBe(0);
    expect(Buffer.compare(readFileSync(join(dir, "b")), b)).toBe(0);
  });

  test("a failed write is the failing file's error (not its neighbour's), and the next file is clean", () => {
    const dir = tempIn(tmpdir());
    const bad = join(dir, "bad");
    Bun.write(bad, "");
    const good = join(dir, "good");
    const fBad = openSync(bad, "r"); // every write fails (EBADF)
    const fGood = openSync(good, "w");
    const sBad = new FileSink(fBad, bad, { writeback: false });
    const sGood = new FileSink(fGood, good, { writeback: false });
    const data = testBytes(3 * STAGE, 3);
    let badError: unknown;
    try {
      sBad.write(data.subarray(0, STAGE)); // handed to the writer (or refused at once)
      sGood.write(data); // waits for the failed write: must not throw
      sBad.finish();
    } catch (e) {
      badError = e;
    }
    expect(String(badError)).toContain(`unable to write file '${bad}'`);
    sBad.release();
    sGood.finish();
    closeSync(fBad);
    closeSync(fGood);
    expect(Buffer.compare(readFileSync(good), data)).toBe(0);

    const next = join(dir, "next");
    const again = testBytes(2 * STAGE + 1, 4);
    writeThrough(next, again, [STAGE]);
    expect(Buffer.compare(readFileSync(next), again)).toBe(0);
  });
});
