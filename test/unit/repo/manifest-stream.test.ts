/**
 * The streaming manifest (issue 19): InfoReader over chunks of any size, renderInfo in pieces,
 * Manifest.reader without an InfoIni, and save/load through a Storage — all byte-identical to the
 * one-string render, with the checksum checked in file order.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InfoIni, InfoReader } from "../../../src/repo/ini.ts";
import { loadManifest, Manifest, saveManifest, savePartialManifest } from "../../../src/repo/manifest.ts";
import { Storage } from "../../../src/storage/storage.ts";
import { posix } from "../../../src/storage/posix/posix.ts";
import { scratchDirs } from "../../harness/scratch.ts";

const scratch = scratchDirs("pgb-manifest-stream-");

/** A manifest with every kind of entry: bundled, referenced, block-incremental, page errors, odd owners, unknown keys, links, tablespaces. */
function sample(files: number): Manifest {
  const label = "20240101-000000F_20240102-000000I";
  const m = new Manifest(
    { label, type: "incr", prior: "20240101-000000F", reference: ["20240101-000000F", label], timestampStart: 1, timestampStop: 2, archiveStart: "000000010000000000000002", archiveStop: "000000010000000000000002", lsnStart: "0/2000028", lsnStop: "0/2000100", bundle: true, blockIncr: true },
    { id: 1, systemId: 7712144726744982025n, version: "15", catalogVersion: 202209061, controlVersion: 1300 },
  );
  m.options = { "compress-type": "lz4", "buffer-size": 1048576, "process-max": 2 };
  m.targets.set("pg_data", { name: "pg_data", path: "/data", type: "path" });
  m.targets.set("pg_tblspc/16384", { name: "pg_tblspc/16384", path: "/ts", type: "link", tablespaceId: "16384", tablespaceName: "ts1" });
  m.dbs.set("postgres", { name: "postgres", id: 5, lastSystemId: 16383 });
  m.paths.set("pg_data", { name: "pg_data", mode: "0700", user: "postgres", group: "postgres" });
  m.paths.set("pg_data/base", { name: "pg_data/base", mode: "0750", user: "postgres", group: false });
  m.links.set("pg_data/pg_tblspc/16384", { name: "pg_data/pg_tblspc/16384", destination: "/ts", user: "postgres", group: "postgres" });
  for (let i = 0; i < files; i++) {
    const name = `pg_data/base/5/${16384 + i}`;
    m.files.set(name, {
      name,
      size: 8192 * (1 + (i % 3)),
      timestamp: 1700000000 + i,
      checksum: (i.toString(16).padStart(8, "0") + "ab").repeat(4),
      checksumPage: i % 97 === 0 ? false : true,
      checksumPageError: i % 97 === 0 ? [1, [3, 4]] : undefined,
      repoSize: 100 + i,
      rck: (i.toString(16).padStart(8, "0") + "cd").repeat(4),
      reference: i % 2 ? "20240101-000000F" : undefined,
      mode: i % 50 === 0 ? "0640" : "0600",
      user: i % 70 === 0 ? "root" : "postgres",
      group: "postgres",
      bundleId: i % 5 ? 1 + (i % 7) : undefined,
      bundleOffset: i % 5 ? i * 10 : undefined,
      blockIncr: i % 11 === 0 ? { blockSize: 16384, checksumSize: 6, mapSize: 40 } : undefined,
      extra: i === 7 ? { "future-key": "kept" } : undefined,
    });
  }
  return m;
}

describe("streaming manifest", () => {
  const m = sample(3000);
  const text = m.render();

  test("rendered in pieces: more than one, and together the same text as one render", () => {
    const pieces = [...m.renderPieces()];
    expect(pieces.length).toBeGreaterThan(3);
    expect(pieces.join("")).toBe(text);
    expect(text).toContain('pg_data/base/5/16391={"bni":1,"bno":70,"checksum":');
    expect(text).toContain('"future-key":"kept"');
  });

  test("read in chunks of any size (1, 7, 4096 bytes, one): same model, same text, checksum checked", () => {
    const bytes = new TextEncoder().encode(text);
    for (const size of [1, 7, 4096, bytes.length]) {
      const r = Manifest.reader();
      const reader = new InfoReader("backup.manifest", r.visit);
      for (let i = 0; i < bytes.length; i += size) reader.push(bytes.slice(i, i + size));
      reader.end();
      const back = r.result();
      expect(back.render() === text).toBe(true);
      expect(back.files.size).toBe(3000);
      expect(back.files.get("pg_data/base/5/16384")).toMatchObject({ mode: "0640", user: "root", group: "postgres", checksumPage: false, checksumPageError: [1, [3, 4]], blockIncr: { blockSize: 16384, checksumSize: 6, mapSize: 40 } });
      expect(back.paths.get("pg_data/base")!.group).toBe(false);
      expect(back.db.systemId).toBe(7712144726744982025n);
    }
  });

  test("a changed byte fails the checksum; a missing checksum is an incomplete file", () => {
    const changed = text.replace('"timestamp":1700000001}', '"timestamp":1700000002}');
    expect(changed === text).toBe(false);
    expect(() => Manifest.parse(changed)).toThrow(/invalid checksum/);
    expect(() => Manifest.parse(text.slice(0, text.indexOf("[backrest]\nbackrest-checksum")))).toThrow(/no backrest-checksum/);
  });

  test("InfoIni and the Manifest reader agree (fromIni over the same text)", () => {
    expect(Manifest.fromIni(InfoIni.parse(text, "backup.manifest")).render()).toBe(text);
  });

  test("saved through a Storage (main + copy, partial copy) and loaded back; a corrupt main falls back to the copy", async () => {
    const dir = scratch();
    const s = new Storage(posix, dir);
    await saveManifest(s, "demo", m);
    const path = join(dir, "backup/demo", m.backup.label, "backup.manifest");
    expect(readFileSync(path, "utf8")).toBe(text);
    expect(readFileSync(`${path}.copy`, "utf8")).toBe(text);
    expect((await loadManifest(s, "demo", m.backup.label)).render()).toBe(text);
    writeFileSync(path, text.replace("0750", "0751"));
    expect((await loadManifest(s, "demo", m.backup.label)).render()).toBe(text);

    const enc = new Storage(posix, scratch());
    await savePartialManifest(enc, "demo", m, "pass");
    await saveManifest(enc, "demo", m, "pass");
    expect((await loadManifest(enc, "demo", m.backup.label, "pass")).render()).toBe(text);
  });
});
