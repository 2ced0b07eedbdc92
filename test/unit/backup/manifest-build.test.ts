import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildFileList } from "../../../src/command/backup/manifest-build.ts";
import { Manifest } from "../../../src/repo/manifest.ts";
import { PosixDriver } from "../../../src/storage/posix/posix.ts";
import { Storage } from "../../../src/storage/storage.ts";

const dir = mkdtempSync(join(tmpdir(), "pgbunker-walk-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A database directory bigger than one listing batch (4096 entries): the walk reads it in batches
 * (bounded memory, issue 19) and must still leave out every file of an unlogged relation (one with
 * an init fork) but the init fork itself, whichever batches the forks landed in.
 */
test("a directory read in several batches: every file recorded once, unlogged relations left out", async () => {
  const pg = join(dir, "pg");
  const db = join(pg, "base", "5");
  mkdirSync(db, { recursive: true });
  writeFileSync(join(pg, "PG_VERSION"), "15\n");
  const logged: string[] = [];
  for (let i = 0; i < 4200; i++) {
    const rel = String(20000 + i);
    writeFileSync(join(db, rel), "");
    logged.push(rel);
  }
  // Unlogged relations, each with main, fsm, a segment and an init fork: forty of them, so that
  // (readdir order being the file system's hash order) some have forks in both batches.
  const unlogged = Array.from({ length: 40 }, (_, i) => 16384 + i * 7);
  for (const r of unlogged) for (const suffix of ["", "_fsm", ".1", "_init"]) writeFileSync(join(db, `${r}${suffix}`), "x");
  const m = new Manifest(
    { label: "20240101-000000F", type: "full", reference: [], timestampStart: 1 },
    { id: 1, systemId: 1n, version: "15", catalogVersion: 202209061, controlVersion: 1300 },
  );
  await buildFileList({ pg: new Storage(new PosixDriver(), pg, { readOnly: true }), manifest: m, rules: { user: [], tablespaceVersionDir: "PG_15_202209061" }, tablespaces: [] });

  const names = [...m.files.keys()].filter((n) => n.startsWith("pg_data/base/5/")).map((n) => n.slice("pg_data/base/5/".length));
  expect(names.length).toBe(logged.length + unlogged.length);
  expect(new Set(names)).toEqual(new Set([...logged, ...unlogged.map((r) => `${r}_init`)]));
  // The render is in name order whatever order the directory was read in.
  const sorted = [...m.files.sorted()].map((f) => f.name);
  expect(sorted).toEqual([...sorted].sort());
  expect(m.files.get("pg_data/base/5/16384_init")).toMatchObject({ size: 1 });
}, 60_000);
