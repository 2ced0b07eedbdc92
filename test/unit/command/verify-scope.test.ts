/** verify --set's scope: which backups and which WAL one backup set covers, and the labels refused. */
import { describe, expect, test } from "bun:test";
import type { ManifestLoad } from "../../../src/command/verify/collect.ts";
import { checkSetLabel, setScope, walInScope } from "../../../src/command/verify/scope.ts";
import { PgbError } from "../../../src/common/error.ts";
import { Manifest } from "../../../src/repo/manifest.ts";

const F = "20240101-000000F", D = `${F}_20240102-000000D`, I = `${F}_20240103-000000I`;

function load(block?: { blockSize: number; checksumSize: number; mapSize: number }, archive = true): ManifestLoad {
  const m = new Manifest(
    { label: I, type: "incr", prior: D, reference: [F, D, I], timestampStart: 1, ...(archive ? { archiveStart: "000000010000000000000007", archiveStop: "000000010000000000000008" } : {}) },
    { id: 1, systemId: 1n, version: "15", catalogVersion: 202209061, controlVersion: 1300 },
  );
  m.files.set("pg_data/base/5/1259", { name: "pg_data/base/5/1259", size: 8192, timestamp: 1, reference: F, mode: "0600", user: "postgres", group: "postgres", blockIncr: block });
  return { manifest: m, notes: [], warnings: [], missing: false, copyOnly: false };
}

describe("verify --set scope", () => {
  test("a set verifies itself; the manifests of every backup holding its files are read; WAL from start to stop", () => {
    const s = setScope(I, load());
    expect(s.labels).toEqual([I]);
    expect(s.manifests).toEqual([F, D, I]);
    expect(["000000010000000000000006", "000000010000000000000007", "000000010000000000000008", "000000010000000000000009"].map((w) => walInScope(w, s))).toEqual([false, true, true, false]);
  });

  test("block incremental: every referenced backup is verified too", () => {
    expect(setScope(I, load({ blockSize: 8192, checksumSize: 6, mapSize: 12 })).labels).toEqual([F, D, I]);
  });

  test("no manifest, or an offline backup: no WAL", () => {
    expect(walInScope("000000010000000000000007", setScope(I, { notes: [], warnings: [], missing: true, copyOnly: false }))).toBe(false);
    expect(setScope(I, load(undefined, false)).wal).toBeUndefined();
  });

  test("a malformed label [032]; one without a directory [075]", () => {
    const code = (label: string, dirs: string[]) => {
      try {
        checkSetLabel(label, dirs);
        return 0;
      } catch (e) {
        return (e as PgbError).code;
      }
    };
    expect(code("latest", [F])).toBe(32);
    expect(code(I, [F])).toBe(75);
    expect(code(F, [F])).toBe(0);
  });
});
