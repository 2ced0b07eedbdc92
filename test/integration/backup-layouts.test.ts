/**
 * backup of clusters laid out differently: a tablespace outside the data directory and a
 * symlinked pg_wal, restored by pgBackRest 2.45 with the expected data. (Every PostgreSQL major's
 * backup functions, pg_control layout and recovery configuration: majors.test.ts.)
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, renameSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { mkdirAsPostgres, type Cluster } from "../harness/cluster.ts";
import { StanzaEnv } from "../harness/stanza.ts";

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** Restore with pgBackRest (the oracle). */
function restoreAndStart(env: StanzaEnv, label: string, extra: string[]): Promise<Cluster> {
  return env.restoreAndStart("pgbackrest", label, ["--type=immediate", "--target-action=promote", ...extra]);
}

describe("backup layouts", () => {
  test("tablespace and symlinked pg_wal: recorded as pgBackRest records them, restored remapped", async () => {
    const env = await StanzaEnv.create();
    cleanup.push(() => env.destroy());
    const c = env.cluster;
    const ts = mkdirAsPostgres(join(env.base, "ts1"));
    await c.query(`create tablespace ts1 location '${ts}'`);
    await c.query("create table in_ts tablespace ts1 as select g, md5(g::text) v from generate_series(1, 20000) g");
    const oid = await c.scalar("select oid from pg_tablespace where spcname = 'ts1'");
    // pg_wal moved out of the data directory behind a symlink, as many installations do.
    c.stop();
    const walDir = join(env.base, "wal-elsewhere");
    renameSync(join(c.dataDir, "pg_wal"), walDir);
    symlinkSync(walDir, join(c.dataDir, "pg_wal"));
    c.start();
    const sum = await c.tableChecksum("in_ts");

    const out = env.runOk(["--type=full", "backup"]);
    const label = /new backup label = (\S+)/.exec(out)![1]!;
    const m = readFileSync(join(env.repo, `backup/${env.stanza}/${label}/backup.manifest`), "utf8");
    expect(m).toContain(`pg_tblspc/${oid}={"path":"${ts}","tablespace-id":"${oid}","tablespace-name":"ts1","type":"link"}`);
    expect(m).toContain(`pg_data/pg_tblspc/${oid}={"destination":"${ts}"}`);
    expect(m).toMatch(new RegExp(`^pg_tblspc/${oid}/PG_15_\\d+/\\d+/\\d+=\\{"checksum"`, "m"));
    expect(m).toContain(`pg_data/pg_wal={"path":"${walDir}","type":"link"}`);
    expect(m).not.toMatch(/^pg_data\/pg_wal\/0/m);
    expect(m).toContain("pg_data/tablespace_map=");
    expect(env.backrest(["verify"]).code).toBe(0);

    const tsNew = mkdirAsPostgres(join(env.base, "ts-restored"));
    const walNew = mkdirAsPostgres(join(env.base, "wal-restored"));
    const r = await restoreAndStart(env, label, [`--tablespace-map=ts1=${tsNew}`, `--link-map=pg_wal=${walNew}`, "--link-all"]);
    expect(await r.tableChecksum("in_ts")).toBe(sum);
    expect(await r.scalar(`select pg_tablespace_location(${oid})`)).toBe(tsNew);
    expect(existsSync(join(tsNew, `PG_15_${await r.scalar("select catalog_version_no from pg_control_system()")}`))).toBe(true);
  });
});
