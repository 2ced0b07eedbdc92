/**
 * PostgreSQL 19 without a server (no 19 binaries can be had): a data directory holding only a
 * pg_control and WAL segments built from 19's facts (test/harness/pg19.ts). The code paths that
 * need no running cluster take it: stanza-create --no-online, archive-push (pg_control and the
 * WAL page header checked against the stanza) and archive-get. pgBackRest 2.59.1, which knows 19,
 * is the oracle: it reads the same fabricated pg_control to the same info files, and reads back
 * what pgbunker archived.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { sha1File } from "../harness/archive.ts";
import { mkdirAsPostgres, tempDir, writeAsPostgres } from "../harness/cluster.ts";
import { PGBACKREST_259, pgbackrest, pgbunker, writeConfig } from "../harness/pgbunker.ts";
import { PG19_CATALOG_VERSION, PG19_CONTROL_VERSION, pg19Control, pg19WalSegment } from "../harness/pg19.ts";

const SYSTEM_ID = 7512345678901234567n;
const SEG = "000000010000000000000001";
let base: string;
let pgPath: string;

/** A config for the fabricated cluster with its own repository. */
function conf(name: string): string {
  return writeConfig(join(base, `${name}.conf`), {
    global: { "repo1-path": join(base, `repo-${name}`), "lock-path": join(base, "lock"), "log-path": join(base, "log"), "log-level-console": "warn" },
    demo: { "pg1-path": pgPath },
  });
}
const bunker = (name: string, args: string[]) => pgbunker([`--config=${join(base, `${name}.conf`)}`, "--stanza=demo", ...args], { cwd: pgPath });
const backrest = (name: string, args: string[]) => pgbackrest([`--config=${join(base, `${name}.conf`)}`, "--stanza=demo", ...args], { bin: PGBACKREST_259 });

/** A WAL segment file in pg_wal, owned by postgres. */
function walFile(name: string, bytes: Uint8Array): string {
  const path = join(pgPath, "pg_wal", name);
  writeAsPostgres(path, bytes, 0o600);
  return path;
}

beforeAll(() => {
  base = tempDir("pgbunker-pg19-");
  pgPath = mkdirAsPostgres(join(base, "pg19"));
  mkdirAsPostgres(join(pgPath, "global"));
  mkdirAsPostgres(join(pgPath, "pg_wal"));
  mkdirAsPostgres(join(base, "log"));
  writeAsPostgres(join(pgPath, "PG_VERSION"), "19\n", 0o600);
  writeAsPostgres(join(pgPath, "global/pg_control"), pg19Control({ systemId: SYSTEM_ID }), 0o600);
  for (const name of ["bunker", "backrest"]) conf(name);
});

afterAll(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

/** The [db] and [db:history] sections of an info file (what both tools derive from pg_control). */
function dbSections(path: string): string {
  const text = readFileSync(path, "utf8");
  return text.split(/\n(?=\[)/).filter((s) => s.startsWith("[db")).join("\n").trim();
}

describe("PostgreSQL 19 from facts, without a server", () => {
  test("stanza-create --no-online: the same info files as pgBackRest 2.59.1 writes from the same pg_control", () => {
    const ours = bunker("bunker", ["--no-online", "stanza-create"]);
    expect({ code: ours.code, err: ours.stderr }).toEqual({ code: 0, err: "" });
    const theirs = backrest("backrest", ["--no-online", "stanza-create"]);
    expect({ code: theirs.code, err: theirs.stderr }).toEqual({ code: 0, err: "" });

    const backupInfo = (name: string) => dbSections(join(base, `repo-${name}`, "backup/demo/backup.info"));
    const archiveInfo = (name: string) => dbSections(join(base, `repo-${name}`, "archive/demo/archive.info"));
    expect(backupInfo("bunker")).toBe(backupInfo("backrest"));
    expect(archiveInfo("bunker")).toBe(archiveInfo("backrest"));
    expect(backupInfo("bunker")).toContain(`db-catalog-version=${PG19_CATALOG_VERSION}\ndb-control-version=${PG19_CONTROL_VERSION}\ndb-id=1\ndb-system-id=${SYSTEM_ID}\ndb-version="19"`);
    expect(archiveInfo("bunker")).toContain(`db-id=1\ndb-system-id=${SYSTEM_ID}\ndb-version="19"`);
  });

  test("archive-push checks the 19 page header; pgBackRest 2.59.1 and pgbunker archive-get return the same bytes", () => {
    const path = walFile(SEG, pg19WalSegment({ systemId: SYSTEM_ID, segmentNo: 1n }));
    const push = bunker("bunker", ["archive-push", `pg_wal/${SEG}`]);
    expect({ code: push.code, err: push.stderr }).toEqual({ code: 0, err: "" });
    const archived = [...new Bun.Glob(`repo-bunker/archive/demo/19-1/0000000100000000/${SEG}-*`).scanSync({ cwd: base })];
    expect(archived.length).toBe(1);

    for (const [tool, run] of [["pgbunker", bunker], ["pgbackrest", backrest]] as const) {
      const out = join(base, `${tool}-${SEG}`);
      const get = run("bunker", ["archive-get", SEG, out]);
      expect({ tool, code: get.code, err: get.stderr }).toEqual({ tool, code: 0, err: "" });
      expect(sha1File(out)).toBe(sha1File(path));
    }
  });

  test("a segment with PostgreSQL 18's page magic is refused by the 19 stanza, nothing archived", () => {
    const name = "000000010000000000000002";
    walFile(name, pg19WalSegment({ systemId: SYSTEM_ID, segmentNo: 2n, magic: 0xd118 }));
    const r = bunker("bunker", ["archive-push", `pg_wal/${name}`]);
    expect(r.code).toBe(44);
    expect(r.stderr).toContain(`WAL file '${join(pgPath, "pg_wal", name)}' version 18, system-id ${SYSTEM_ID} do not match stanza version 19`);
    expect([...new Bun.Glob(`repo-bunker/archive/demo/19-1/0000000100000000/${name}*`).scanSync({ cwd: base })]).toEqual([]);
  });
});
