/**
 * S3 repositories end to end, on a real engine (Ceph RGW over TLS, verified with the harness's
 * CA): a cluster archiving with pgbunker into two S3 repositories of one bucket (repo1 plain,
 * repo2 bundled); stanza-create, archive-push/get, full + incr backups, restores compared by row
 * counts and table checksums, info, verify, expire. Then compatibility with one config file for
 * both tools: pgBackRest 2.45 and 2.59.1 restore pgbunker's S3 backups, pgbunker restores one
 * pgBackRest made (on top of pgbunker's full, with WAL pgBackRest archived). A backup killed
 * halfway (its S3 traffic frozen by a proxy, then SIGKILL) is resumed from what it stored. And a
 * repository host whose repository is in S3: the database host pushes, and restores, over SSH.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { S3Http } from "../../src/storage/s3/client.ts";
import { sha1File } from "../harness/archive.ts";
import { Cluster, mkdirAsPostgres, runAsPostgres, spawnAsPostgres } from "../harness/cluster.ts";
import { FaultProxy } from "../harness/fault-proxy.ts";
import { BINARY } from "../harness/pgbunker.ts";
import { RemoteEnv } from "../harness/remote-env.ts";
import { Rgw } from "../harness/rgw.ts";
import { partialBackup, s3Keys, storedByRun } from "../harness/s3-repo.ts";
import type { StanzaEnv } from "../harness/stanza.ts";
import { makeStanza, removeStanza, STANZA } from "./restore-lib.ts";

const BUCKET = "pgbunker-s3-repos";
const PGBACKREST_2_59 = "/opt/pgbackrest-2.59.1/bin/pgbackrest";
let rgw: Rgw;
let env: StanzaEnv;
let s3: S3Http;
const restored: Cluster[] = [];
/** Label of the incr of each repo, and the data it holds. */
const incr: Record<1 | 2, string> = { 1: "", 2: "" };
const full: Record<1 | 2, string> = { 1: "", 2: "" };
let expected: Awaited<ReturnType<typeof dataOf>>;

const dataOf = async (c: Cluster) => ({
  accounts: await c.tableChecksum("pgbench_accounts"),
  history: await c.tableChecksum("pgbench_history"),
  big: await c.tableChecksum("t_big"),
});

const keys = (prefix: string) => s3Keys(s3, prefix);

function labelOf(output: string): string {
  return /new backup label = (\S+)/.exec(output)![1]!;
}

async function restoreWith(bin: string, repo: number, set: string): Promise<Cluster> {
  const dir = mkdirAsPostgres(join(env.base, `restore-${restored.length}`));
  const r = runAsPostgres([bin, `--config=${env.conf}`, `--stanza=${STANZA}`, `--repo=${repo}`, `--pg1-path=${dir}`, `--set=${set}`, "--type=immediate", "--target-action=promote", "--log-level-console=warn", "restore"]);
  if (r.code !== 0) throw new Error(`${bin} restore --repo=${repo} --set=${set} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  const c = await Cluster.attach(dir);
  restored.push(c);
  c.writeConf({ archive_mode: "off" });
  await c.startAndWaitPromoted();
  return c;
}

beforeAll(async () => {
  rgw = await Rgw.start();
  await rgw.createBucket(BUCKET);
  s3 = rgw.client(BUCKET);
  env = await makeStanza({
    global: {
      "log-level-console": "warn",
      ...rgw.repoOptions(1, BUCKET), "repo1-path": "/plain",
      ...rgw.repoOptions(2, BUCKET), "repo2-path": "/bundled", "repo2-bundle": true, "repo2-retention-full": 99,
    },
  });
  env.cluster.pgbenchInit(1);
  // 3 MiB of incompressible rows: relation files larger than a bundle member and many objects.
  await env.cluster.query("create table t_big as select g, md5(g::text) || md5((g * 7)::text) as v from generate_series(1, 30000) g");
}, 240_000);

afterAll(async () => {
  for (const c of restored) await c.destroy();
  await removeStanza(env);
  await rgw?.stop();
});

describe("s3 repositories", () => {
  test("stanza-create wrote both info files and their copies under each repoN-path prefix", async () => {
    for (const p of ["plain", "bundled"])
      expect((await keys(`${p}/`)).filter((k) => !k.includes("/15-1/")).sort()).toEqual([
        `${p}/archive/${STANZA}/archive.info`, `${p}/archive/${STANZA}/archive.info.copy`,
        `${p}/backup/${STANZA}/backup.info`, `${p}/backup/${STANZA}/backup.info.copy`,
      ]);
  });

  test("archive-push stores SEGMENT-SHA1.lz4 in both repositories; archive-get returns those bytes; pgBackRest reads the same", async () => {
    const seg = await env.archiveNow();
    for (const [repo, p] of [[1, "plain"], [2, "bundled"]] as const) {
      const found = (await keys(`${p}/archive/${STANZA}/15-1/${seg.slice(0, 16)}/`)).filter((k) => k.includes(`/${seg}-`));
      expect(found).toHaveLength(1);
      const sha1 = /-([0-9a-f]{40})\.lz4$/.exec(found[0]!)![1]!;
      const out = join(env.base, `got-${repo}`);
      env.runOk([`--repo=${repo}`, "archive-get", seg, out]);
      expect(sha1File(out)).toBe(sha1);
      const theirs = join(env.base, `got-backrest-${repo}`);
      env.backrestOk([`--repo=${repo}`, "archive-get", seg, theirs]);
      expect(sha1File(theirs)).toBe(sha1);
    }
    // No temp names left behind anywhere in the archive.
    expect((await keys("plain/archive/")).filter((k) => k.includes(".tmp"))).toEqual([]);
  });

  test("full and incr backups (plain and bundled); pgbunker restores each with the data of its time", async () => {
    for (const repo of [1, 2] as const) full[repo] = labelOf(env.runOk([`--repo=${repo}`, "--type=full", "--log-level-console=info", "backup"]));
    await env.cluster.query("update pgbench_accounts set abalance = abalance + 3 where aid % 7 = 0; insert into pgbench_history (tid, bid, aid, delta, mtime) select 1, 1, g, g, now() from generate_series(1, 500) g; delete from t_big where g % 11 = 0");
    expected = await dataOf(env.cluster);
    for (const repo of [1, 2] as const) incr[repo] = labelOf(env.runOk([`--repo=${repo}`, "--type=incr", "--log-level-console=info", "backup"]));
    expect(incr[1]).toMatch(/^\d{8}-\d{6}F_\d{8}-\d{6}I$/);
    // repo2's backups are bundles; repo1's files are objects of their own.
    expect((await keys(`bundled/backup/${STANZA}/${full[2]}/bundle/`)).length).toBeGreaterThan(0);
    expect((await keys(`plain/backup/${STANZA}/${full[1]}/pg_data/`)).length).toBeGreaterThan(100);
    for (const repo of [1, 2] as const) {
      const c = await restoreWith(BINARY, repo, incr[repo]);
      expect(await dataOf(c)).toEqual(expected);
      expect(await c.scalar("select count(*) from t_big")).toBe(String(30000 - Math.floor(30000 / 11)));
    }
  }, 300_000);

  test("info and verify read the S3 repositories; pgBackRest's info sees the same backups", async () => {
    const info = JSON.parse(env.runOk(["info", "--output=json"])) as { backup: { label: string; database: { "repo-key": number } }[]; status: { code: number } }[];
    expect(info[0]!.status.code).toBe(0);
    const labels = info[0]!.backup.map((b) => `${b.database["repo-key"]}:${b.label}`).sort();
    expect(labels).toEqual([`1:${full[1]}`, `1:${incr[1]}`, `2:${full[2]}`, `2:${incr[2]}`].sort());
    const theirs = JSON.parse(env.backrestOk(["info", "--output=json"])) as { backup: { label: string }[] }[];
    expect(theirs[0]!.backup.map((b) => b.label).sort()).toEqual(info[0]!.backup.map((b) => b.label).sort());
    for (const repo of [1, 2]) expect(env.runOk([`--repo=${repo}`, "--log-level-console=info", "verify"])).toContain("no problem found");
    // pgBackRest verifies pgbunker's S3 repository too; check pushes a fresh segment through both.
    for (const repo of [1, 2]) expect(env.backrest([`--repo=${repo}`, "verify"]).code).toBe(0);
    expect(env.runOk(["--log-level-console=info", "check"])).toContain("check command end: completed successfully");
  }, 180_000);

  test("pgBackRest 2.45 and 2.59.1 restore pgbunker's S3 backups (plain and bundled) with the same data", async () => {
    expect(await dataOf(await restoreWith("pgbackrest", 1, incr[1]))).toEqual(expected);
    expect(await dataOf(await restoreWith(PGBACKREST_2_59, 2, incr[2]))).toEqual(expected);
  }, 300_000);

  test("pgbunker restores an incr pgBackRest made on top of pgbunker's full, with WAL pgBackRest archived", async () => {
    await env.cluster.query(`alter system set archive_command = 'pgbackrest --config=${env.conf} --stanza=${STANZA} archive-push %p'`);
    await env.cluster.query("select pg_reload_conf()");
    await env.cluster.query("update pgbench_accounts set abalance = abalance - 1 where aid % 5 = 0; delete from t_big where g % 13 = 0");
    const theirs = await dataOf(env.cluster);
    const label = labelOf(env.backrestOk(["--repo=1", "--type=incr", "--log-level-console=info", "backup"]));
    expect(label.startsWith(`${full[1]}_`)).toBe(true);
    expect(await dataOf(await restoreWith(BINARY, 1, label))).toEqual(theirs);
  }, 300_000);

  test("a backup killed halfway is resumed from the objects it stored, and restores with the data", async () => {
    const proxy = FaultProxy.start(rgw);
    try {
      const stored = storedByRun;
      const partial = () => partialBackup(s3, `plain/backup/${STANZA}/`, new Set([full[1], incr[1]]));
      // Settle the tables the tests before changed (no autovacuum rewriting them meanwhile): a file
      // the cluster changes after the kill is copied again rather than resumed.
      await env.cluster.query("vacuum analyze");
      await env.cluster.query("checkpoint");
      // Through the proxy: once five files are stored, freeze its S3 traffic (it cannot finish), then kill it.
      const p = spawnAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${STANZA}`, "--repo=1", `--repo1-storage-port=${proxy.port}`, "--type=full", "--process-max=1", "--manifest-save-threshold=1", "backup"]);
      const deadline = Date.now() + 120_000;
      for (let seen = await partial(); !(seen && stored(seen.m) >= 5); seen = await partial()) {
        if (p.exitCode !== null || Date.now() > deadline) throw new Error(`the backup ended (exit ${p.exitCode}) before five files were stored`);
        await Bun.sleep(50);
      }
      proxy.freeze();
      p.kill(9);
      await p.exited;
      const killed = (await partial())!;
      expect(stored(killed.m)).toBeGreaterThan(4);
      expect(env.backupLabels()).not.toContain(killed.label);
      const now = await dataOf(env.cluster);
      const r = env.run(["--repo=1", "--type=full", "--log-level-console=detail", "backup"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`resumable backup ${killed.label} of same type exists`);
      expect((r.stdout.match(/checksum resumed file/g) ?? []).length).toBeGreaterThan(4);
      expect(r.stdout).toContain(`new backup label = ${killed.label}`);
      expect(await dataOf(await restoreWith(BINARY, 1, killed.label))).toEqual(now);
    } finally {
      proxy.stop();
    }
  }, 300_000);

  test("expire removes an older full and everything of it from the bucket", async () => {
    const newer = labelOf(env.runOk(["--repo=1", "--type=full", "--log-level-console=info", "backup"]));
    expect((await keys(`plain/backup/${STANZA}/${full[1]}/`)).length).toBeGreaterThan(0);
    env.runOk(["--repo=1", "--repo1-retention-full=1", "expire"]);
    expect(await keys(`plain/backup/${STANZA}/${full[1]}/`)).toEqual([]);
    expect(await keys(`plain/backup/${STANZA}/${incr[1]}/`)).toEqual([]);
    const info = JSON.parse(env.backrestOk(["--repo=1", "info", "--output=json"])) as { backup: { label: string }[] }[];
    expect(info[0]!.backup.map((b) => b.label)).toEqual([newer]);
    // WAL older than the remaining backup went too: the first segment pushed is gone.
    expect((await keys(`plain/archive/${STANZA}/15-1/0000000100000000/`)).some((k) => k.includes("/000000010000000000000001-"))).toBe(false);
  }, 180_000);

  test("repository host with an S3 repository: archive-push and restore from the database host go through its remote", async () => {
    const remote = await RemoteEnv.create({ backupGlobal: { ...rgw.repoOptions(1, BUCKET), "repo1-path": "/via-host", "compress-type": "lz4", "start-fast": true, "repo1-retention-full": 9 } });
    try {
      remote.backupHostOk(["stanza-create"]);
      await remote.cluster.query("create table t as select g from generate_series(1, 20000) g");
      const seg = await remote.switchAndWait();
      expect((await keys(`via-host/archive/${remote.stanza}/`)).some((k) => k.includes(`/${seg}-`))).toBe(true);
      const label = labelOf(remote.backupHostOk(["--type=full", "backup"]));
      const sum = await remote.cluster.tableChecksum("t");
      const target = mkdirAsPostgres(join(remote.dbDir, "restored"));
      remote.dbHostOk([`--pg1-path=${target}`, `--set=${label}`, "--type=immediate", "--target-action=promote", "restore"]);
      const c = await Cluster.attach(target);
      restored.push(c);
      c.writeConf({ archive_mode: "off" });
      await c.startAndWaitPromoted();
      expect(await c.tableChecksum("t")).toBe(sum);
    } finally {
      await remote.destroy();
    }
  }, 300_000);

  test("bad S3 settings fail at once with a clear error", () => {
    const wrong = runAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${STANZA}`, "--repo=1", "--log-level-console=warn", "verify"], { env: { PGBUNKER_REPO1_S3_KEY_SECRET: "not-the-secret" } });
    expect(wrong.code).toBe(105);
    expect(wrong.stderr).toContain(`in bucket '${BUCKET}' failed: HTTP 403`);
    const auto = runAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${STANZA}`, "--repo=1", "--repo1-s3-key-type=auto", "verify"]);
    expect(auto.code).toBe(67);
    expect(`${auto.stdout}${auto.stderr}`).toContain("repo1-s3-key-type=auto is not supported");
  });

  test("stanza-delete removes every object of the stanza from one repository, and only from it", async () => {
    env.runOk(["stop"]);
    env.runOk(["--repo=2", "--force", "stanza-delete"]);
    env.runOk(["start"]);
    expect(await keys("bundled/")).toEqual([]);
    expect((await keys(`plain/backup/${STANZA}/`)).length).toBeGreaterThan(0);
  }, 60_000);
});
