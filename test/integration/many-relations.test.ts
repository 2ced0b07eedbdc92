/**
 * Many small relations (issue 19), the suite's small version of bench/relations.ts: 1000 one-row
 * tables with a primary key (~2000 small files, spread over several bundles), bundled, lz4,
 * process-max 2.
 *
 * A full backup holds every table's files, bundled; an incr after changing a few tables stores
 * exactly those tables' files anew and refers to the full for every other user table; pgBackRest
 * 2.59.1 restores the incr and the restored cluster has every table with its row.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Manifest } from "../../src/repo/manifest.ts";
import { backupLabel } from "../harness/pgbunker.ts";
import { StanzaEnv } from "../harness/stanza.ts";

const TABLES = 1000;
const CHANGED = [7, 500, 999];
/** A smaller bundle size than the default 20 MiB, so these ~2000 files make many bundles. */
const OPTS = ["--repo1-bundle", "--repo1-bundle-size=4MiB", "--compress-type=lz4", "--process-max=2"];

let env: StanzaEnv;
const relFilesOf = (m: Manifest) => m.fileList().filter((f) => /^pg_data\/base\/\d+\/\d+$/.test(f.name));

/** Manifest names of a table's heap and primary-key index files. */
async function filesOf(i: number): Promise<string[]> {
  const r = await env.cluster.query(`select pg_relation_filepath('t${i}') as h, pg_relation_filepath('t${i}_pkey') as x`);
  return [`pg_data/${r[0]!.h}`, `pg_data/${r[0]!.x}`];
}

/** Manifest names of every user table's files. */
async function userFiles(): Promise<Set<string>> {
  const rows = await env.cluster.query(`select pg_relation_filepath(c.oid) as p from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public'`);
  return new Set(rows.map((r) => `pg_data/${r.p}`));
}

beforeAll(async () => {
  env = await StanzaEnv.create({ global: { "log-level-console": "info" }, conf: { max_locks_per_transaction: 1024, autovacuum: "off" } });
  // One statement, one transaction: table t<i> holds the one row id = i.
  await env.cluster.query(`do $$ begin for i in 0..${TABLES - 1} loop execute format('create table t%s (id int primary key); insert into t%s values (%s)', i, i, i); end loop; end $$`);
  await env.settle();
}, 120_000);

afterAll(async () => {
  await env?.destroy();
});

describe("a cluster of many small relations", () => {
  let full = "";

  test("full: every table's heap and index are in the manifest, bundled, over many bundles", async () => {
    full = backupLabel(env.runOk([...OPTS, "--type=full", "backup"]));
    const m = env.manifest(full);
    const byName = new Map(m.fileList().map((f) => [f.name, f]));
    for (const i of [0, 1, ...CHANGED, TABLES - 2]) {
      for (const name of await filesOf(i)) {
        const f = byName.get(name);
        expect({ name, bundled: f?.bundleId !== undefined, stored: (f?.size ?? 0) > 0 }).toEqual({ name, bundled: true, stored: true });
      }
    }
    const user = await userFiles();
    expect(user.size).toBe(2 * TABLES);
    const userInFull = relFilesOf(m).filter((f) => user.has(f.name));
    expect(userInFull.length).toBe(2 * TABLES);
    expect(userInFull.every((f) => f.bundleId !== undefined)).toBe(true);
    expect(new Set(userInFull.map((f) => f.bundleId)).size).toBeGreaterThanOrEqual(5);
  }, 60_000);

  test("incr after changing 3 tables stores exactly their files; pgBackRest 2.59.1 restores every table", async () => {
    for (const i of CHANGED) await env.cluster.query(`update t${i} set id = id + 100000`);
    await env.cluster.query("checkpoint");
    const incr = backupLabel(env.runOk([...OPTS, "--type=incr", "backup"]));
    const m = env.manifest(incr);
    const changed = new Set((await Promise.all(CHANGED.map(filesOf))).flat());
    const relFiles = relFilesOf(m);
    const copied = relFiles.filter((f) => f.reference === undefined).map((f) => f.name);
    for (const name of changed) expect(copied).toContain(name);
    // Of the user tables only the changed ones are copied (catalogs changed too and may be).
    const user = await userFiles();
    expect(copied.filter((n) => user.has(n) && !changed.has(n))).toEqual([]);
    const referenced = relFiles.filter((f) => user.has(f.name) && f.reference === full);
    expect(referenced.length).toBe(2 * TABLES - changed.size);
    // The references point into the full's bundles, several of them.
    expect(new Set(referenced.map((f) => f.bundleId)).size).toBeGreaterThanOrEqual(5);

    const want = await env.cluster.schemaChecksum();
    expect(want).toStartWith(`${TABLES}:${TABLES}:`);
    const theirs = await env.restoreAndStart("pgbackrest-2.59", incr);
    expect(await theirs.schemaChecksum()).toBe(want);
    // The changed tables have their new row (the checksum says every other table is as here).
    const changedIds = `select string_agg(id::text, ',' order by id) from (${CHANGED.map((i) => `select id from t${i}`).join(" union all ")}) u`;
    expect(await theirs.scalar(changedIds)).toBe(CHANGED.map((i) => i + 100000).join(","));
    theirs.stop();
  }, 90_000);
});
