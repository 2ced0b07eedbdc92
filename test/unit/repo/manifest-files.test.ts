import { describe, expect, test } from "bun:test";
import { ManifestFiles } from "../../../src/repo/manifest-files.ts";
import { fileValue, fileValueGeneric, type ManifestFile } from "../../../src/repo/manifest.ts";

/** A deterministic generator (the test must not depend on luck, and a failure must replay). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x1_0000_0000;
  };
}

function hex(rand: () => number): string {
  let s = "";
  for (let i = 0; i < 40; i++) s += "0123456789abcdef"[Math.floor(rand() * 16)];
  return s;
}

/** A file with a random subset of the optional fields, including the rare ones. */
function fileOf(name: string, rand: () => number): ManifestFile {
  const f: ManifestFile = {
    name,
    size: Math.floor(rand() * 2 ** 40),
    timestamp: Math.floor(rand() * 2 ** 32),
    mode: rand() < 0.9 ? "0600" : "0640",
    user: rand() < 0.9 ? "postgres" : rand() < 0.5 ? false : "root",
    group: rand() < 0.95 ? "postgres" : false,
  };
  if (rand() < 0.8) f.checksum = rand() < 0.95 ? hex(rand) : "not-a-sha1";
  if (rand() < 0.7) f.repoSize = Math.floor(rand() * 2 ** 53);
  if (rand() < 0.7) f.rck = rand() < 0.95 ? hex(rand) : "ABCDEF";
  if (rand() < 0.3) f.reference = rand() < 0.5 ? "20240101-000000F" : "20240102-000000F_20240102-010000I";
  if (rand() < 0.5) f.bundleId = Math.floor(rand() * 1000) + 1;
  if (rand() < 0.5) f.bundleOffset = Math.floor(rand() * 2 ** 34);
  if (rand() < 0.4) f.checksumPage = rand() < 0.8;
  if (rand() < 0.05) f.checksumPageError = [1, [3, 5]];
  if (rand() < 0.1) f.blockIncr = { blockSize: 8192 * (1 + Math.floor(rand() * 16)), checksumSize: 6 + Math.floor(rand() * 14), mapSize: Math.floor(rand() * 5000) };
  if (rand() < 0.03) f.extra = { "future-key": "x", n: 12345678901234567890n };
  return f;
}

const names = (n: number, rand: () => number) =>
  Array.from({ length: n }, (_, i) => {
    const dir = ["pg_data", "pg_data/base/1", "pg_data/base/16384", "pg_data/base/16384/sub", "pg_tblspc/16385/PG_15_202209061/5", ""][i % 6]!;
    const base = `${Math.floor(rand() * 1e6)}_${i}${i % 97 === 0 ? "_vm" : ""}${i % 131 === 0 ? "é" : ""}`;
    return dir ? `${dir}/${base}` : base;
  });

describe("ManifestFiles: a compact Map of manifest files (issue 19)", () => {
  test("behaves as a Map<string, ManifestFile> through random sets, rewrites and deletes, also across compaction", () => {
    const rand = rng(19);
    const store = new ManifestFiles();
    const map = new Map<string, ManifestFile>();
    const all = names(6000, rand);
    for (let round = 0; round < 30_000; round++) {
      const name = all[Math.floor(rand() * all.length)]!;
      const op = rand();
      if (op < 0.75) {
        const f = fileOf(name, rand);
        store.set(name, f);
        map.set(name, f);
      } else {
        expect(store.delete(name)).toBe(map.delete(name));
      }
    }
    expect(store.size).toBe(map.size);
    // Same entries, same (insertion) order, same values.
    expect([...store.keys()]).toEqual([...map.keys()]);
    for (const [name, f] of map) expect(store.get(name)).toEqual(f);
    expect(store.get("pg_data/never")).toBeUndefined();
    expect(store.has("never")).toBe(false);
    expect(store.stats().deadBytes).toBeLessThan(store.stats().liveBytes + (1 << 20));
  });

  test("sorted() is byte order of the names, whatever the insertion order; record numbers stay put", () => {
    const rand = rng(7);
    const store = new ManifestFiles();
    const all = names(3000, rand);
    for (const n of all) store.set(n, fileOf(n, rand));
    const sorted = [...store.sorted()].map((f) => f.name);
    const bytes = (s: string) => Buffer.from(s, "utf8");
    expect(sorted).toEqual([...all].sort((a, b) => Buffer.compare(bytes(a), bytes(b))));
    const r = store.indexOf(all[10]!);
    store.set(all[10]!, { ...store.get(all[10]!)!, checksum: "f".repeat(40), extra: { long: "x".repeat(5000) } });
    expect(store.indexOf(all[10]!)).toBe(r);
    expect(store.at(r).extra).toEqual({ long: "x".repeat(5000) });
    expect(store.sizeAt(r)).toBe(store.get(all[10]!)!.size);
  });

  test("entries left to the section default read as the default once it is known", () => {
    const store = new ManifestFiles();
    store.set("pg_data/a", { name: "pg_data/a", size: 1, timestamp: 2, mode: undefined as unknown as string, user: undefined as unknown as false, group: "other" });
    store.resolveDefaults("0640", "postgres", false);
    expect(store.get("pg_data/a")).toEqual({ name: "pg_data/a", size: 1, timestamp: 2, mode: "0640", user: "postgres", group: "other" });
    expect(store.commonOwners("0600")).toEqual({ mode: "0640", user: "postgres", group: "other" });
  });

  test("a file entry's hand-written JSON is the generic renderer's, byte for byte", () => {
    const rand = rng(42);
    const defs = [{ mode: "0600", user: "postgres", group: "postgres" }, { mode: "0640", user: false, group: "root" }] as const;
    for (let i = 0; i < 20_000; i++) {
      const f = fileOf(`pg_data/base/1/${i}`, rand);
      for (const def of defs) expect(fileValue(f, def)).toBe(fileValueGeneric(f, def));
    }
  });

  test("a bad number is refused rather than stored wrong", () => {
    const store = new ManifestFiles();
    expect(() => store.set("x", { name: "x", size: 1, repoSize: -1, timestamp: 0, mode: "0600", user: "postgres", group: "postgres" })).toThrow(/non-negative integer/);
    expect(store.size).toBe(0);
    expect([...store.values()]).toEqual([]);
  });
});
