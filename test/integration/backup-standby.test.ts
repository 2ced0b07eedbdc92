/**
 * backup-standby: a streaming standby beside the primary, configured in the other order (pg1 is
 * the standby) to show the roles are found, not assumed. The backup starts and stops on the
 * primary, reads replicated files on the standby and the rest on the primary, and restores (by
 * pgbunker and by pgBackRest) to the data of the primary. Then what must be refused: no standby
 * running, a "standby" of another cluster, a standby that does not replay in time.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { replicatedOnStandby } from "../../src/postgres/exclude.ts";
import { Cluster, spawnAsPostgres, SYSTEM_BIN, writeAsPostgres } from "../harness/cluster.ts";
import { backupLabel, pgbunker, writeConfig } from "../harness/pgbunker.ts";
import { StanzaEnv } from "../harness/stanza.ts";

let env: StanzaEnv;
let standby: Cluster;
let conf: string;
const others: Cluster[] = [];
const TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"];

/** The stanza's settings, with backup-standby on and the standby as pg1, the primary as pg2. */
function writeStandbyConfig(first: Cluster): void {
  writeConfig(conf, {
    global: {
      "repo1-path": env.repo, "log-path": env.log, "lock-path": env.lock, "spool-path": env.spool,
      "log-level-console": "info", "log-level-file": "detail", "start-fast": true, "compress-type": "lz4",
      "repo1-retention-full": 99, "archive-timeout": 30, "backup-standby": true,
    },
    demo: { ...first.pgOptions(1), ...env.cluster.pgOptions(2) },
  });
}

const fromStandby = (args: string[]) => pgbunker([`--config=${conf}`, "--stanza=demo", ...args]);
const backupDirs = () => readdirSync(join(env.repo, "backup", "demo")).filter((n) => /^\d{8}-\d{6}F/.test(n)).sort();
const manifestOf = (label: string) => readFileSync(join(env.backupDir(label), "backup.manifest"), "utf8");

beforeAll(async () => {
  env = await StanzaEnv.create({ global: { "log-level-console": "warn" } });
  env.cluster.pgbenchInit(2);
  standby = await env.cluster.startStandby(join(env.base, "standby"));
  conf = join(env.base, "standby.conf");
  writeStandbyConfig(standby);
}, 120_000);

afterAll(async () => {
  for (const c of others) await c.destroy();
  await standby?.destroy();
  await env?.destroy();
});

describe("backup from a standby", () => {
  let full = "";

  test("full under pgbench load: replicated files read on the standby, the rest on the primary; restores to the primary's data", async () => {
    const bench = spawnAsPostgres([join(SYSTEM_BIN, "pgbench"), "-h", env.cluster.socketDir, "-p", String(env.cluster.port), "-U", "postgres", "-c", "2", "-T", "8", "postgres"]);
    await Bun.sleep(1000);
    const r = fromStandby(["--type=full", "--process-max=2", "--log-level-console=detail", "backup"]);
    expect(r.stderr).not.toContain("ERROR");
    expect(r.code).toBe(0);
    expect(await bench.exited).toBe(0);
    full = backupLabel(r.stdout);
    expect(r.stdout).toContain("backup from standby pg1: replicated files are read there, the rest from primary pg2");
    const start = /backup start archive = \S+, lsn = (\S+)/.exec(r.stdout)![1]!;
    expect(r.stdout).toContain(`wait for replay on the standby to reach ${start}`);
    expect(r.stdout).toContain(`replay on the standby reached ${start}`);
    expect(r.stdout).toContain(`the standby's restartpoint reached ${start}`);

    // Where each file was read: its full path names the cluster.
    const read = [...r.stdout.matchAll(/ backup file (\S+) \(/g)].map((m) => m[1]!);
    const on = (c: Cluster) => read.filter((p) => p.startsWith(`${c.dataDir}/`)).map((p) => p.slice(c.dataDir.length + 1));
    const standbyFiles = on(standby);
    const primaryFiles = on(env.cluster);
    expect(standbyFiles.length + primaryFiles.length).toBe(read.length);
    expect(standbyFiles.every(replicatedOnStandby)).toBe(true);
    expect(primaryFiles.some(replicatedOnStandby)).toBe(false);
    expect(primaryFiles).toEqual(expect.arrayContaining(["global/pg_control", "postgresql.conf", "postgresql.auto.conf", "PG_VERSION"]));
    expect(standbyFiles.length).toBeGreaterThan(read.length * 0.9);
    const accounts = await env.cluster.scalar("select pg_relation_filepath('pgbench_accounts')");
    expect(standbyFiles).toContain(accounts);

    const m = manifestOf(full);
    expect(m).toContain("option-backup-standby=true");
    // The primary's own files, not the standby's: no standby.signal, no primary_conninfo.
    expect(m).not.toContain("pg_data/standby.signal=");
    expect(env.backrest(["verify"]).code).toBe(0);

    const sums: Record<string, string> = {};
    for (const t of TABLES) sums[t] = await env.cluster.tableChecksum(t);
    await env.cluster.query("select pg_create_restore_point('after_standby_load')");
    await env.archiveNow();
    const c = await env.restoreAndStart("pgbunker", full, ["--type=name", "--target=after_standby_load", "--target-action=promote"]);
    for (const t of TABLES) expect(`${t} ${await c.tableChecksum(t)}`).toBe(`${t} ${sums[t]}`);
    expect(Number(await c.scalar("select count(*) from pgbench_history"))).toBeGreaterThan(0);
    expect(readFileSync(join(c.dataDir, "postgresql.auto.conf"), "utf8")).not.toContain("primary_conninfo");
    const amcheck = c.tool("pg_amcheck", ["--all", "--install-missing"]);
    expect(amcheck.stderr + amcheck.stdout).toBe("");
    c.stop();
    const check = c.tool("pg_checksums", ["--check", "-D", c.dataDir]);
    expect(check.stdout).toContain("Bad checksums:  0");
  });

  test("incr from the standby after changes: pgBackRest restores it with the primary's data", async () => {
    await env.cluster.query("create table after_full as select g, md5(g::text) as v from generate_series(1, 3000) g");
    await env.cluster.query("update pgbench_accounts set abalance = abalance + 1 where aid % 7 = 0");
    const r = fromStandby(["--type=incr", "backup"]);
    expect(r.code).toBe(0);
    const incr = backupLabel(r.stdout);
    expect(incr).toMatch(new RegExp(`^${full}_\\d{8}-\\d{6}I$`));
    expect(manifestOf(incr)).toContain(`backup-prior="${full}"`);
    const want = { t: await env.cluster.tableChecksum("after_full"), a: await env.cluster.tableChecksum("pgbench_accounts") };
    const c = await env.restoreAndStart("pgbackrest", incr);
    expect({ t: await c.tableChecksum("after_full"), a: await c.tableChecksum("pgbench_accounts") }).toEqual(want);
    c.stop();
  });
});

describe("backup-standby refuses", () => {
  test("no standby running: DbConnectError, nothing written; check warns", () => {
    const before = backupDirs();
    standby.stop();
    try {
      const r = fromStandby(["--type=full", "backup"]);
      expect(r.code).toBe(56);
      expect(r.stderr).toContain("WARN: unable to check pg1");
      expect(r.stderr).toContain("ERROR: [056]: unable to find standby cluster - cannot proceed");
      expect(r.stderr).toContain("HINT: or set backup-standby=n");
      // check passes (archiving works) but says a standby backup would not.
      const check = fromStandby(["check"]);
      expect(check.code).toBe(0);
      expect(check.stderr).toContain("WARN: option backup-standby is set but no standby could be checked");
    } finally {
      standby.start();
    }
    expect(backupDirs()).toEqual(before);
  });

  test("a standby of another cluster: DbMismatchError naming both system ids", async () => {
    const stranger = await Cluster.create({ baseDir: env.base, name: "stranger" });
    others.push(stranger);
    // Started once as a primary so pg_control holds the harness settings a standby must match.
    stranger.start();
    stranger.stop();
    writeAsPostgres(join(stranger.dataDir, "standby.signal"), "");
    stranger.start();
    writeStandbyConfig(stranger);
    try {
      const before = backupDirs();
      const r = fromStandby(["--type=full", "backup"]);
      expect(r.code).toBe(58);
      expect(r.stderr).toMatch(/ERROR: \[058\]: standby pg1 \(version 15, system-id \d+\) is not a standby of primary pg2 \(version 15, system-id \d+\)/);
      expect(backupDirs()).toEqual(before);
    } finally {
      writeStandbyConfig(standby);
    }
  });

  test("replay paused on the standby: ArchiveTimeoutError after archive-timeout, no backup left", async () => {
    const before = backupDirs();
    await standby.query("select pg_wal_replay_pause()");
    try {
      const r = fromStandby(["--type=full", "--archive-timeout=2", "backup"]);
      expect(r.code).toBe(82);
      expect(r.stderr).toMatch(/ERROR: \[082\]: timeout before the standby replayed to \S+: it is at \S+ after 2s/);
    } finally {
      await standby.query("select pg_wal_replay_resume()");
    }
    expect(backupDirs()).toEqual(before);
    expect(existsSync(join(env.repo, "backup", "demo", "backup.info"))).toBe(true);
    // Its session on the primary is gone, and with it the non-exclusive backup it had started.
    expect(await env.cluster.scalar("select count(*) from pg_stat_activity where application_name like 'pgbunker%'")).toBe("0");
  });
});
