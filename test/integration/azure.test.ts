/**
 * Azure repositories end to end, on a real engine (Azurite over TLS, verified with the harness's
 * CA, path-style URIs): a cluster archiving with pgbunker into two Azure repositories of one
 * container (repo1 plain, repo2 bundled); stanza-create, archive-push/get, full + incr backups,
 * restores compared by table checksums, info, verify, expire. Compatibility with one config file
 * for both tools: pgBackRest 2.45 and 2.59.1 read and restore pgbunker's Azure backups, pgbunker
 * restores an incr pgBackRest 2.59.1 made on top of pgbunker's full. Bad settings fail clearly.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { AzureDriver } from "../../src/storage/azure/driver.ts";
import { sha1File } from "../harness/archive.ts";
import { Azurite } from "../harness/azurite.ts";
import { Cluster, mkdirAsPostgres, runAsPostgres } from "../harness/cluster.ts";
import { BINARY } from "../harness/pgbunker.ts";
import type { StanzaEnv } from "../harness/stanza.ts";
import { makeStanza, removeStanza, STANZA } from "./restore-lib.ts";

const CONTAINER = "pgbunker-azure-repos";
const PGBACKREST_2_59 = "/opt/pgbackrest-2.59.1/bin/pgbackrest";
let az: Azurite;
let env: StanzaEnv;
const restored: Cluster[] = [];
const full: Record<1 | 2, string> = { 1: "", 2: "" };
const incr: Record<1 | 2, string> = { 1: "", 2: "" };
let expected: Awaited<ReturnType<typeof dataOf>>;

const dataOf = async (c: Cluster) => ({
  accounts: await c.tableChecksum("pgbench_accounts"),
  history: await c.tableChecksum("pgbench_history"),
  big: await c.tableChecksum("t_big"),
});

/** Every blob in the container below a prefix. */
async function blobs(prefix: string): Promise<string[]> {
  const out: string[] = [];
  await new AzureDriver(az.client(CONTAINER)).eachPage(prefix, { delimiter: false }, (p) => {
    out.push(...p.objects.map((o) => o.key));
  });
  return out;
}

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
  az = await Azurite.start();
  await az.createContainer(CONTAINER);
  env = await makeStanza({
    global: {
      "log-level-console": "warn",
      ...az.repoOptions(1, CONTAINER), "repo1-path": "/plain",
      // Small blocks: relation files of t_big are staged in several blocks.
      ...az.repoOptions(2, CONTAINER), "repo2-path": "/bundled", "repo2-bundle": true, "repo2-retention-full": 99, "repo2-storage-upload-chunk-size": "4MiB",
    },
  });
  env.cluster.pgbenchInit(1);
  // 3 MiB of incompressible rows: relation files larger than a bundle member and many blobs.
  await env.cluster.query("create table t_big as select g, md5(g::text) || md5((g * 7)::text) as v from generate_series(1, 30000) g");
}, 240_000);

afterAll(async () => {
  for (const c of restored) await c.destroy();
  await removeStanza(env);
  await az?.stop();
});

describe("azure repositories", () => {
  test("stanza-create wrote both info files and their copies under each repoN-path prefix", async () => {
    for (const p of ["plain", "bundled"])
      expect((await blobs(`${p}/`)).filter((k) => !k.includes("/15-1/")).sort()).toEqual([
        `${p}/archive/${STANZA}/archive.info`, `${p}/archive/${STANZA}/archive.info.copy`,
        `${p}/backup/${STANZA}/backup.info`, `${p}/backup/${STANZA}/backup.info.copy`,
      ]);
  });

  test("archive-push stores SEGMENT-SHA1.lz4 in both repositories; archive-get returns those bytes; pgBackRest 2.45 and 2.59.1 read the same", async () => {
    const seg = await env.archiveNow();
    for (const [repo, p] of [[1, "plain"], [2, "bundled"]] as const) {
      const found = (await blobs(`${p}/archive/${STANZA}/15-1/${seg.slice(0, 16)}/`)).filter((k) => k.includes(`/${seg}-`));
      expect(found).toHaveLength(1);
      const sha1 = /-([0-9a-f]{40})\.lz4$/.exec(found[0]!)![1]!;
      const out = join(env.base, `got-${repo}`);
      env.runOk([`--repo=${repo}`, "archive-get", seg, out]);
      expect(sha1File(out)).toBe(sha1);
      for (const bin of ["pgbackrest", PGBACKREST_2_59]) {
        const theirs = join(env.base, `got-backrest-${repo}-${bin.length}`);
        const r = runAsPostgres([bin, `--config=${env.conf}`, `--stanza=${STANZA}`, `--repo=${repo}`, "archive-get", seg, theirs]);
        expect(r.code).toBe(0);
        expect(sha1File(theirs)).toBe(sha1);
      }
    }
    expect((await blobs("plain/archive/")).filter((k) => k.includes(".tmp"))).toEqual([]);
  }, 120_000);

  test("full and incr backups (plain and bundled); pgbunker restores each with the data of its time", async () => {
    for (const repo of [1, 2] as const) full[repo] = labelOf(env.runOk([`--repo=${repo}`, "--type=full", "--log-level-console=info", "backup"]));
    await env.cluster.query("update pgbench_accounts set abalance = abalance + 3 where aid % 7 = 0; insert into pgbench_history (tid, bid, aid, delta, mtime) select 1, 1, g, g, now() from generate_series(1, 500) g; delete from t_big where g % 11 = 0");
    expected = await dataOf(env.cluster);
    for (const repo of [1, 2] as const) incr[repo] = labelOf(env.runOk([`--repo=${repo}`, "--type=incr", "--log-level-console=info", "backup"]));
    expect(incr[1]).toMatch(/^\d{8}-\d{6}F_\d{8}-\d{6}I$/);
    expect((await blobs(`bundled/backup/${STANZA}/${full[2]}/bundle/`)).length).toBeGreaterThan(0);
    expect((await blobs(`plain/backup/${STANZA}/${full[1]}/pg_data/`)).length).toBeGreaterThan(100);
    for (const repo of [1, 2] as const) {
      const c = await restoreWith(BINARY, repo, incr[repo]);
      expect(await dataOf(c)).toEqual(expected);
      expect(await c.scalar("select count(*) from t_big")).toBe(String(30000 - Math.floor(30000 / 11)));
    }
  }, 300_000);

  test("info and verify read the Azure repositories; pgBackRest's info sees the same backups and its verify passes", async () => {
    const info = JSON.parse(env.runOk(["info", "--output=json"])) as { backup: { label: string; database: { "repo-key": number } }[]; status: { code: number } }[];
    expect(info[0]!.status.code).toBe(0);
    expect(info[0]!.backup.map((b) => `${b.database["repo-key"]}:${b.label}`).sort()).toEqual([`1:${full[1]}`, `1:${incr[1]}`, `2:${full[2]}`, `2:${incr[2]}`].sort());
    const theirs = JSON.parse(env.backrestOk(["info", "--output=json"])) as { backup: { label: string }[] }[];
    expect(theirs[0]!.backup.map((b) => b.label).sort()).toEqual(info[0]!.backup.map((b) => b.label).sort());
    for (const repo of [1, 2]) expect(env.runOk([`--repo=${repo}`, "--log-level-console=info", "verify"])).toContain("no problem found");
    for (const repo of [1, 2]) expect(env.backrest([`--repo=${repo}`, "verify"]).code).toBe(0);
    expect(env.runOk(["--log-level-console=info", "check"])).toContain("check command end: completed successfully");
  }, 180_000);

  test("pgBackRest 2.45 and 2.59.1 restore pgbunker's Azure backups (plain and bundled) with the same data", async () => {
    expect(await dataOf(await restoreWith("pgbackrest", 1, incr[1]))).toEqual(expected);
    expect(await dataOf(await restoreWith(PGBACKREST_2_59, 2, incr[2]))).toEqual(expected);
  }, 300_000);

  test("pgbunker restores an incr pgBackRest 2.59.1 made on top of pgbunker's full, with WAL pgBackRest archived", async () => {
    await env.cluster.query(`alter system set archive_command = '${PGBACKREST_2_59} --config=${env.conf} --stanza=${STANZA} archive-push %p'`);
    await env.cluster.query("select pg_reload_conf()");
    await env.cluster.query("update pgbench_accounts set abalance = abalance - 1 where aid % 5 = 0; delete from t_big where g % 13 = 0");
    const theirs = await dataOf(env.cluster);
    const r = runAsPostgres([PGBACKREST_2_59, `--config=${env.conf}`, `--stanza=${STANZA}`, "--repo=1", "--type=incr", "--log-level-console=info", "backup"]);
    expect(r.code).toBe(0);
    const label = labelOf(r.stdout);
    expect(label.startsWith(`${full[1]}_`)).toBe(true);
    expect(await dataOf(await restoreWith(BINARY, 1, label))).toEqual(theirs);
  }, 300_000);

  test("expire removes an older full and everything of it from the container", async () => {
    const newer = labelOf(env.runOk(["--repo=1", "--type=full", "--log-level-console=info", "backup"]));
    expect((await blobs(`plain/backup/${STANZA}/${full[1]}/`)).length).toBeGreaterThan(0);
    env.runOk(["--repo=1", "--repo1-retention-full=1", "expire"]);
    expect(await blobs(`plain/backup/${STANZA}/${full[1]}/`)).toEqual([]);
    expect(await blobs(`plain/backup/${STANZA}/${incr[1]}/`)).toEqual([]);
    const info = JSON.parse(env.backrestOk(["--repo=1", "info", "--output=json"])) as { backup: { label: string }[] }[];
    expect(info[0]!.backup.map((b) => b.label)).toEqual([newer]);
    expect((await blobs(`plain/archive/${STANZA}/15-1/0000000100000000/`)).some((k) => k.includes("/000000010000000000000001-"))).toBe(false);
  }, 180_000);

  test("bad Azure settings fail at once with a clear error: wrong key, missing container, key-type auto", () => {
    const wrong = runAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${STANZA}`, "--repo=1", "verify"], { env: { PGBUNKER_REPO1_AZURE_KEY: Buffer.from("wrong").toString("base64") } });
    expect(wrong.code).toBe(105);
    expect(wrong.stderr).toContain(`in container '${CONTAINER}' failed: HTTP 403`);
    const missing = runAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${STANZA}`, "--repo=1", "info"], { env: { PGBUNKER_REPO1_AZURE_CONTAINER: "no-such-container" } });
    expect(`${missing.stdout}${missing.stderr}`).toContain("no-such-container");
    expect(`${missing.stdout}${missing.stderr}`).toContain("ContainerNotFound");
    const auto = runAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${STANZA}`, "--repo=1", "--repo1-azure-key-type=auto", "verify"]);
    expect(auto.code).toBe(67);
    expect(`${auto.stdout}${auto.stderr}`).toContain("repo1-azure-key-type=auto");
    // The key is never logged, even at debug level.
    const debug = runAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${STANZA}`, "--repo=1", "--log-level-console=debug", "info"]);
    expect(debug.code).toBe(0);
    expect(`${debug.stdout}${debug.stderr}`).not.toContain(az.key);
  }, 60_000);
});
