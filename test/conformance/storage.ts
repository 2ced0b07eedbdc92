/**
 * THE storage conformance suite: every StorageDriver (posix, remote over in-process pipes, remote
 * over a real sshd, later s3) runs these same cases through `Storage`, so callers can rely on one
 * behaviour whatever the driver. Register it from a test file:
 *
 *   storageConformance("posix", async () => ({ storage: new Storage(posix, dir), cleanup }));
 *
 * The factory returns a Storage rooted at an empty, writable directory. A case a driver cannot
 * run is skipped by testing `storage.features`, never by driver name; an object store (s3) has no
 * rename, directories, links or attributes, and each such case then checks what it does instead.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { FilterResult } from "../../src/filter/filter.ts";
import { findResult } from "../../src/filter/filter.ts";
import { filterBuffer } from "../../src/filter/pipeline.ts";
import { STORAGE_FEATURES, type Storage } from "../../src/storage/storage.ts";
import { failure } from "../harness/failure.ts";

export interface ConformanceTarget {
  storage: Storage;
  cleanup(): Promise<void>;
}

function sha1(data: Uint8Array): string {
  return new Bun.CryptoHasher("sha1").update(data).digest("hex");
}

/** Deterministic, partly compressible bytes (so compression changes the size but not trivially). */
export function testBytes(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed * 2654435761;
  for (let i = 0; i < size; i++) {
    if (i % 1024 < 512) out[i] = i & 0x3f;
    else {
      x = (x * 1103515245 + 12345) >>> 0;
      out[i] = x >>> 24;
    }
  }
  return out;
}

async function readAll(storage: Storage, path: string, opts: Parameters<Storage["openRead"]>[1] = {}): Promise<{ data: Uint8Array; results: FilterResult[]; chunks: number }> {
  const r = await storage.openRead(path, opts);
  if (!r) throw new Error(`${path} missing`);
  const parts: Uint8Array[] = [];
  for (let c = await r.read(); c !== null; c = await r.read()) parts.push(c.slice());
  const results = r.results();
  await r.close();
  const data = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let pos = 0;
  for (const p of parts) {
    data.set(p, pos);
    pos += p.byteLength;
  }
  return { data, results, chunks: parts.length };
}

export function storageConformance(name: string, make: () => Promise<ConformanceTarget>): void {
  describe(`storage conformance: ${name}`, () => {
    let t: ConformanceTarget;
    let s: Storage;
    beforeAll(async () => {
      t = await make();
      s = t.storage;
    });
    afterAll(async () => {
      await t?.cleanup();
    });

    test("put and get round trip; the write is atomic and leaves no temp file", async () => {
      const data = testBytes(100_000);
      await s.put("a/b/file.bin", data, { mode: 0o640, mtime: 1_600_000_000 });
      expect(sha1((await s.get("a/b/file.bin"))!)).toBe(sha1(data));
      expect(await s.names("a/b")).toEqual(["file.bin"]);
      const info = (await s.info("a/b/file.bin"))!;
      expect(info).toMatchObject({ type: "file", size: 100_000 });
      if (s.features.attributes) {
        expect(info).toMatchObject({ mtime: 1_600_000_000, mode: 0o640 });
        expect(typeof info.user).toBe("string");
      } else expect(Math.abs(info.mtime - Date.now() / 1000)).toBeLessThan(3600); // the store's own clock
      expect((await s.info("a/b"))!.type).toBe("path");
      await s.put("a/b/empty", new Uint8Array(0));
      expect((await s.get("a/b/empty"))!.byteLength).toBe(0);
      await s.put("a/b/text", "replaced");
      await s.put("a/b/text", "hello");
      expect(new TextDecoder().decode((await s.get("a/b/text"))!)).toBe("hello");
    });

    test("missing files: null with ignoreMissing, FileMissingError otherwise", async () => {
      expect(await s.get("nope", { ignoreMissing: true })).toBeNull();
      expect(await s.openRead("nope", { ignoreMissing: true })).toBeNull();
      expect((await failure(s.get("nope"))).kind).toBe("FileMissingError");
      expect(await s.info("nope", { ignoreMissing: true })).toBeNull();
      expect((await failure(s.info("nope"))).kind).toBe("FileMissingError");
      expect(await s.exists("nope")).toBe(false);
      expect(await s.list("nope", { ignoreMissing: true })).toBeNull();
      if (s.features.path) expect((await failure(s.list("nope"))).kind).toBe("PathMissingError");
      else expect(await s.list("nope")).toEqual([]); // an object store cannot tell empty from missing
      expect(await s.names("nope")).toEqual([]);
    });

    test("list, walk, pathCreate, pathRemove, remove, move", async () => {
      await s.pathCreate("tree/x/y", { mode: 0o750 });
      await s.put("tree/x/y/1", "1");
      await s.put("tree/x/2", "22");
      await s.put("tree/3", "333");
      const list = (await s.list("tree"))!.map((e) => [e.name, e.type]).sort();
      expect(list).toEqual([["3", "file"], ["x", "path"]]);
      const walked: string[] = [];
      await s.walk("tree", (rel, info) => {
        walked.push(`${rel}:${info.type}`);
      });
      expect(walked).toEqual(["3:file", "x:path", "x/2:file", "x/y:path", "x/y/1:file"]);
      expect((await failure(s.pathCreate("tree/x", { errorOnExists: true }))).kind).toBe("PathExistsError");
      await s.pathCreate("tree/x"); // exists: fine
      if (s.features.move) {
        await s.move("tree/3", "tree/moved/3");
        expect(await s.exists("tree/3")).toBe(false);
      } else {
        // No rename: move refuses (callers write the final name once), leaving the source as it was.
        expect((await failure(s.move("tree/3", "tree/moved/3"))).kind).toBe("FeatureNotSupportedError");
        expect(new TextDecoder().decode((await s.get("tree/3"))!)).toBe("333");
        await s.put("tree/moved/3", "333");
        await s.remove("tree/3");
      }
      expect(new TextDecoder().decode((await s.get("tree/moved/3"))!)).toBe("333");
      await s.remove("tree/moved/3");
      await s.remove("tree/moved/3", { ignoreMissing: true });
      expect((await failure(s.remove("tree/moved/3", { ignoreMissing: false }))).kind).toBe("FileRemoveError");
      await s.pathRemove("tree", { recurse: true });
      expect(await s.exists("tree")).toBe(false);
      await s.pathRemove("tree", { recurse: true, ignoreMissing: true });
      await s.pathSync("");
    });

    test("links and attributes", async () => {
      await s.put("attr/f", "x", { mode: 0o600 });
      await s.setAttributes("attr/f", { mode: 0o644, mtime: 1_500_000_000 });
      if (s.features.attributes) expect(await s.info("attr/f")).toMatchObject({ mode: 0o644, mtime: 1_500_000_000 });
      if (!s.features.link) {
        expect((await failure(s.linkCreate("f", "attr/l"))).kind).toBe("FeatureNotSupportedError");
        return;
      }
      await s.linkCreate("f", "attr/l");
      const l = (await s.info("attr/l"))!;
      expect(l).toMatchObject({ type: "link", linkDestination: "f" });
      expect((await s.info("attr/l", { followLink: true }))!.type).toBe("file");
      expect((await s.list("attr"))!.find((e) => e.name === "l")!.linkDestination).toBe("f");
    });

    test("features are the one statement of capabilities: every flag is a boolean, a tree sync works where it is offered", async () => {
      for (const f of STORAGE_FEATURES) expect(typeof s.features[f]).toBe("boolean");
      await s.put("synced/a", "durable");
      if (s.features.syncTree) await s.syncTree("synced");
      else expect((await failure(s.syncTree("synced"))).kind).toBe("AssertError");
      expect(new TextDecoder().decode((await s.get("synced/a"))!)).toBe("durable");
    });

    test("hard links (where canHardLink): a second name for the same bytes, replacing what was there; new directories made", async () => {
      if (!s.canHardLink) {
        expect((await failure(s.hardLink("x", "y"))).kind).toBe("FeatureNotSupportedError");
        return;
      }
      await s.put("hl/orig", "linked bytes");
      await s.put("hl2/deep/copy", "old");
      await s.hardLink("hl/orig", "hl2/deep/copy");
      await s.hardLink("hl/orig", "hl3/new/dir/copy");
      expect(new TextDecoder().decode((await s.get("hl2/deep/copy"))!)).toBe("linked bytes");
      expect(new TextDecoder().decode((await s.get("hl3/new/dir/copy"))!)).toBe("linked bytes");
      expect((await failure(s.hardLink("hl/no-such-file", "hl/x"))).kind).toMatch(/File(Missing|Open|Write)Error/);
    });

    test("read with filters: results in filter order, many chunks, bytes identical", async () => {
      const data = testBytes(5 * 1024 * 1024 + 123, 2);
      await s.put("filtered/src", data);
      const specs = [
        { type: "sha1", id: "in" }, { type: "size", id: "in" },
        { type: "compress", compressType: "lz4" }, { type: "sha1", id: "out" }, { type: "size", id: "out" },
      ] as const;
      const r = await readAll(s, "filtered/src", { filters: specs, bufferSize: 64 * 1024 });
      expect(r.chunks).toBeGreaterThan(1);
      expect(findResult(r.results, "sha1", "in")!.hash).toBe(sha1(data));
      expect(findResult(r.results, "size", "in")!.size).toBe(data.byteLength);
      expect(findResult(r.results, "size", "out")!.size).toBe(r.data.byteLength);
      expect(findResult(r.results, "sha1", "out")!.hash).toBe(sha1(r.data));
      expect(r.data.byteLength).toBeLessThan(data.byteLength);
      expect(r.results.map((x) => x.type)).toEqual(["sha1", "size", "compress", "sha1", "size"]);
      // Store the compressed bytes, read them back through decompress → the original.
      await s.put("filtered/src.lz4", r.data);
      const back = await readAll(s, "filtered/src.lz4", { filters: [{ type: "decompress", compressType: "lz4" }, { type: "sha1" }, { type: "size" }] });
      expect(sha1(back.data)).toBe(sha1(data));
      expect(back.results.map((x) => x.type)).toEqual(["decompress", "sha1", "size"]);
      expect(findResult(back.results, "sha1")!.hash).toBe(sha1(data));
    });

    test("read with offset and limit", async () => {
      const data = testBytes(300_000, 3);
      await s.put("range", data);
      const r = await readAll(s, "range", { offset: 1000, limit: 70_000, bufferSize: 16 * 1024 });
      expect(sha1(r.data)).toBe(sha1(data.subarray(1000, 71_000)));
    });

    test("write with filters: the stored bytes are filtered, results in filter order", async () => {
      const data = testBytes(3 * 1024 * 1024, 4);
      const w = await s.openWrite("written/file.gz", { filters: [{ type: "size", id: "in" }, { type: "compress", compressType: "gz", level: 1 }, { type: "size", id: "out" }, { type: "sha1" }] });
      for (let pos = 0; pos < data.byteLength; pos += 100_000) await w.write(data.subarray(pos, pos + 100_000));
      const results = await w.close();
      expect(results.map((x) => x.type)).toEqual(["size", "compress", "size", "sha1"]);
      const stored = (await s.get("written/file.gz"))!;
      expect(findResult(results, "size", "in")!.size).toBe(data.byteLength);
      expect(findResult(results, "size", "out")!.size).toBe(stored.byteLength);
      expect(findResult(results, "sha1")!.hash).toBe(sha1(stored));
      expect(sha1(filterBuffer(stored, [{ type: "decompress", compressType: "gz" }]).data)).toBe(sha1(data));
      expect(await s.names("written")).toEqual(["file.gz"]);
    });

    test("truncate cuts a file or extends it with zeros (where features.truncate)", async () => {
      if (!s.features.truncate) {
        expect((await failure(s.truncate("x", 0))).kind).toBe("FeatureNotSupportedError");
        return;
      }
      await s.put("trunc", testBytes(10_000, 6));
      await s.truncate("trunc", 4096);
      expect(sha1((await s.get("trunc"))!)).toBe(sha1(testBytes(10_000, 6).subarray(0, 4096)));
      await s.truncate("trunc", 8192);
      const grown = (await s.get("trunc"))!;
      expect(grown.byteLength).toBe(8192);
      expect(grown.subarray(4096).every((b) => b === 0)).toBe(true);
      expect((await failure(s.truncate("no-such-file", 0))).kind).toMatch(/File(Missing|Open|Write|Info)Error/);
    });

    test("a write with expect commits only the bytes expected", async () => {
      const data = testBytes(50_000, 7);
      const lz4 = filterBuffer(data, [{ type: "compress", compressType: "lz4" }]).data;
      const specs = [{ type: "decompress", compressType: "lz4" }, { type: "sha1" }, { type: "size" }] as const;
      await s.put("expected/ok", lz4, { filters: specs, expect: { size: data.byteLength, sha1: sha1(data) } });
      expect(sha1((await s.get("expected/ok"))!)).toBe(sha1(data));
      const e = await failure(s.put("expected/bad", lz4, { filters: specs, expect: { size: data.byteLength, sha1: "0".repeat(40) } }));
      expect(e.kind).toBe("ChecksumError");
      expect(await s.names("expected")).toEqual(["ok"]);
    });

    test("an aborted write leaves nothing; a failed open says why", async () => {
      const w = await s.openWrite("aborted/file");
      await w.write(testBytes(10_000));
      await w.abort();
      expect(await s.names("aborted")).toEqual([]);
      // Below a file, and reading a directory: only where directories are real.
      if (!s.features.path) return;
      await s.put("plain", "x");
      const e = await failure(s.openWrite("plain/below", {}).then((w2) => w2.close()));
      expect(["FileOpenError", "PathCreateError", "PathMissingError"]).toContain(e.kind);
      expect(e.message).toContain("plain/below");
      const d = await failure(s.openRead("aborted").then((r) => r!.read()));
      expect(d.kind).toBe("FileOpenError");
    });

    test("a read closed early does not disturb what follows; reads run concurrently", async () => {
      const big = testBytes(8 * 1024 * 1024, 5);
      await s.put("early", big);
      const r = (await s.openRead("early", { bufferSize: 64 * 1024 }))!;
      await r.read();
      await r.close();
      const files = await Promise.all([1, 2, 3, 4].map(async (i) => {
        const d = testBytes(200_000 * i, i);
        await s.put(`conc/${i}`, d);
        return [sha1(d), sha1((await readAll(s, `conc/${i}`, { bufferSize: 32 * 1024 })).data)];
      }));
      for (const [want, got] of files) expect(got).toBe(want);
      expect(sha1((await s.get("early"))!)).toBe(sha1(big));
    });
  });
}
