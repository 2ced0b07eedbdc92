/**
 * Many small relations (issue 19), the suite's small version of bench/relations.ts: 3000 one-row
 * tables with a primary key (~6000 small files), bundled, lz4, process-max 2.
 *
 * A full backup holds every table's files, bundled; an incr after changing a few tables stores
 * exactly those tables' files anew and refers to the full for every other user table; pgBackRest
 * 2.59.1 restores the incr and the restored cluster has every table with its row.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Manifest } from "../../src/repo/manifest.ts";
import { StanzaEnv } from "../harness/stanza.ts";

const TABLES = 3000;
const CHANGED = [7, 1500, 2999];
const OPTS = ["--repo1-bundle", "--compress-type=lz4", "--process-max=2"];

let env: StanzaEnv;
const labelOf = (out: string) => /new backup label = (\S+)/.exec(out)![1]!;
const manifestOf = (label: string) => Manifest.parse(readFileSync(join(env.repo, "backup", env.stanza, label, "backup.manifest"), "utf8"));
const relFilesOf = (m: Manifest) => m.fileList().filter((f) => /^pg_data\/base\/\d+\/\d+$/.test(f.name));

/** Manifest names of a table's heap and primary-key index files. */
async function filesOf(i: number): Promise<string[]> {
  const r = await env.cluster.query(`select pg_relation_filepath('t${i}') as h, pg_relation_filepath('t${i}_pkey') as x`);
  return [`pg_data/${r[0]!.h}`, `pg_data/${r[0]!.x}`];
}

/** Row count and sum of ids over every table: changes if any table loses or changes its row. */
const allRows = (c: { scalar(q: string): Promise<string> }) =>
  c.scalar(`select count(*)::text || ':' || sum(id)::text from (${Array.from({ length: TABLES }, (_, i) => `select id from t${i}`).join(" union all ")}) u`);

beforeAll(async () => {
  env = await StanzaEnv.create({ global: { "log-level-console": "info" }, conf: { max_locks_per_transaction: 1024, autovacuum: "off" } });
  const sql: string[] = [];
  for (let i = 0; i < TABLES; i++) sql.push(`create table t${i} (id int primary key); insert into t${i} values (${i});`);
  // One transaction, one round trip: creating the tables takes a couple of seconds.
  await env.cluster.sql().begin((tx) => tx.unsafe(sql.join("\n")).simple());
  await env.cluster.query("checkpoint");
  // Files written in the second the full starts copying are copied again by the incr (the
  // time-resolution rule, incremental.ts: a prior copy counts only for mtimes before its copy
  // start - 1 s): let two seconds pass.
  await Bun.sleep(2100);
}, 120_000);

afterAll(async () => {
  await env?.destroy();
});

describe("a cluster of many small relations", () => {
  let full = "";

  test("full: every table's heap and index are in the manifest, bundled", async () => {
    full = labelOf(env.runOk([...OPTS, "--type=full", "backup"]));
    const m = manifestOf(full);
    const byName = new Map(m.fileList().map((f) => [f.name, f]));
    for (const i of [0, 1, 7, 1500, 2998, 2999]) {
      for (const name of await filesOf(i)) {
        const f = byName.get(name);
        expect({ name, bundled: f?.bundleId !== undefined, stored: (f?.size ?? 0) > 0 }).toEqual({ name, bundled: true, stored: true });
      }
    }
    expect(relFilesOf(m).length).toBeGreaterThanOrEqual(2 * TABLES);
  }, 60_000);

  test("incr after changing 3 tables stores exactly their files; pgBackRest 2.59.1 restores every table", async () => {
    for (const i of CHANGED) await env.cluster.query(`update t${i} set id = id + 100000`);
    await env.cluster.query("checkpoint");
    const incr = labelOf(env.runOk([...OPTS, "--type=incr", "backup"]));
    const m = manifestOf(incr);
    const changed = new Set((await Promise.all(CHANGED.map(filesOf))).flat());
    const relFiles = relFilesOf(m);
    const copied = relFiles.filter((f) => f.reference === undefined).map((f) => f.name);
    for (const name of changed) expect(copied).toContain(name);
    // Of the user tables only the changed ones are copied (catalogs changed too and may be).
    const user = new Set((await env.cluster.query(`select pg_relation_filepath(c.oid) as p from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public'`)).map((r) => `pg_data/${r.p}`));
    expect(copied.filter((n) => user.has(n) && !changed.has(n))).toEqual([]);
    expect(relFiles.filter((f) => user.has(f.name) && f.reference === full).length).toBe(2 * TABLES - changed.size);

    const want = await allRows(env.cluster);
    expect(want).toBe(`${TABLES}:${(TABLES * (TABLES - 1)) / 2 + 100000 * CHANGED.length}`);
    const theirs = await env.restoreAndStart("pgbackrest-2.59", incr);
    expect(await allRows(theirs)).toBe(want);
    expect(await theirs.scalar("select count(*)::text from pg_tables where schemaname = 'public'")).toBe(String(TABLES));
    theirs.stop();
  }, 90_000);
});
