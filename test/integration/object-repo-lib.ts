/**
 * One end-to-end suite for object-store repositories (S3 on Ceph RGW, Azure on Azurite, GCS on
 * the harness server): a cluster archiving with pgbunker into two repositories of one bucket or container
 * (repo1 plain, repo2 bundled); stanza-create, archive-push/get, full + incr backups, restores
 * compared by table checksums, info, verify, check, expire. Compatibility with one config file
 * for both tools: pgBackRest 2.45 and 2.59.1 read and restore pgbunker's backups, pgbunker
 * restores an incr pgBackRest 2.59.1 made on top of pgbunker's full. A backup killed halfway (its
 * traffic frozen by the fault proxy, then SIGKILL) is resumed from what it stored; stanza-delete
 * empties one repository only. A test file registers it
 * with its engine and adds the checks only its type has (bad keys, missing containers).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { ObjectDriver } from "../../src/storage/object/driver.ts";
import { Storage } from "../../src/storage/storage.ts";
import { sha1File } from "../harness/archive.ts";
import { InfoIni } from "../../src/repo/ini.ts";
import { Manifest } from "../../src/repo/manifest.ts";
import { Cluster, mkdirAsPostgres, runAsPostgres, spawnAsPostgres } from "../harness/cluster.ts";
import { FaultProxy, type ProxyTarget } from "../harness/fault-proxy.ts";
import { BINARY } from "../harness/pgbunker.ts";
import type { StanzaEnv } from "../harness/stanza.ts";
import { makeStanza, removeStanza, STANZA } from "./restore-lib.ts";

export interface ObjectRepoEngine {
  /** repoN-* options reaching `place` (a bucket or container), repoN-path left to the suite. */
  repoOptions(index: number, place: string): Record<string, string | number>;
  createPlace(place: string): Promise<void>;
  /** Every object name below a prefix. */
  list(place: string, prefix: string): Promise<string[]>;
  /** An object's text, or null when it is missing. */
  get(place: string, name: string): Promise<string | null>;
  /** The engine, for a fault proxy in front of it, and the options that send repo1 through one on `port`. */
  proxyTarget: ProxyTarget;
  viaProxy(port: number): string[];
  stop(): Promise<void>;
}

export interface ObjectRepoSuite {
  /** The stanza, once beforeAll has run (for the type's own tests). */
  readonly env: StanzaEnv;
  readonly place: string;
}

const PGBACKREST_2_59 = "/opt/pgbackrest-2.59.1/bin/pgbackrest";

export function objectRepoSuite(name: string, place: string, start: () => Promise<ObjectRepoEngine>): ObjectRepoSuite {
  let engine: ObjectRepoEngine;
  let env: StanzaEnv;
  const suite = { get env() { return env; }, place };
  const restored: Cluster[] = [];
  const full: Record<1 | 2, string> = { 1: "", 2: "" };
  const incr: Record<1 | 2, string> = { 1: "", 2: "" };
  let expected: Awaited<ReturnType<typeof dataOf>>;

  const dataOf = async (c: Cluster) => ({
    accounts: await c.tableChecksum("pgbench_accounts"),
    history: await c.tableChecksum("pgbench_history"),
    big: await c.tableChecksum("t_big"),
  });

  const blobs = (prefix: string) => engine.list(place, prefix);

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
    engine = await start();
    await engine.createPlace(place);
    env = await makeStanza({
      global: {
        "log-level-console": "warn",
        ...engine.repoOptions(1, place), "repo1-path": "/plain",
        ...engine.repoOptions(2, place), "repo2-path": "/bundled", "repo2-bundle": true, "repo2-retention-full": 99,
      },
    });
    env.cluster.pgbenchInit(1);
    // 3 MiB of incompressible rows: relation files larger than a bundle member and many blobs.
    await env.cluster.query("create table t_big as select g, md5(g::text) || md5((g * 7)::text) as v from generate_series(1, 30000) g");
  }, 240_000);

  afterAll(async () => {
    for (const c of restored) await c.destroy();
    await removeStanza(env);
    await engine?.stop();
  });

  describe(`${name} repositories`, () => {
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

    test("info and verify read the repositories; pgBackRest's info sees the same backups and its verify passes", async () => {
      const info = JSON.parse(env.runOk(["info", "--output=json"])) as { backup: { label: string; database: { "repo-key": number } }[]; status: { code: number } }[];
      expect(info[0]!.status.code).toBe(0);
      expect(info[0]!.backup.map((b) => `${b.database["repo-key"]}:${b.label}`).sort()).toEqual([`1:${full[1]}`, `1:${incr[1]}`, `2:${full[2]}`, `2:${incr[2]}`].sort());
      const theirs = JSON.parse(env.backrestOk(["info", "--output=json"])) as { backup: { label: string }[] }[];
      expect(theirs[0]!.backup.map((b) => b.label).sort()).toEqual(info[0]!.backup.map((b) => b.label).sort());
      for (const repo of [1, 2]) expect(env.runOk([`--repo=${repo}`, "--log-level-console=info", "verify"])).toContain("no problem found");
      for (const repo of [1, 2]) expect(env.backrest([`--repo=${repo}`, "verify"]).code).toBe(0);
      expect(env.runOk(["--log-level-console=info", "check"])).toContain("check command end: completed successfully");
    }, 180_000);

    test("pgBackRest 2.45 and 2.59.1 restore pgbunker's backups (plain and bundled) with the same data", async () => {
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

    test("a backup killed halfway is resumed from the objects it stored, and restores with the data", async () => {
      const proxy = FaultProxy.start(engine.proxyTarget);
      try {
        // Files the killed run stored (rck) itself.
        const stored = (m: Manifest) => m.fileList().filter((f) => f.rck !== undefined && f.reference === undefined).length;
        const known = new Set(env.backupLabels());
        const partial = async (): Promise<{ label: string; m: Manifest } | undefined> => {
          for (const k of await blobs(`plain/backup/${STANZA}/`)) {
            const m = /\/(\d{8}-\d{6}F)\/backup\.manifest\.copy$/.exec(k);
            if (!m || known.has(m[1]!)) continue;
            const text = await engine.get(place, k);
            if (text !== null) return { label: m[1]!, m: Manifest.fromIni(InfoIni.parse(text, k)) };
          }
          return undefined;
        };
        // Settle the tables (no autovacuum rewriting them meanwhile): a file changed after the kill is copied again, not resumed.
        await env.cluster.query("vacuum analyze");
        await env.cluster.query("checkpoint");
        const p = spawnAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${STANZA}`, "--repo=1", ...engine.viaProxy(proxy.port), "--type=full", "--process-max=1", "--manifest-save-threshold=1", "backup"]);
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

    test("expire removes an older full and everything of it from the store", async () => {
      const newer = labelOf(env.runOk(["--repo=1", "--type=full", "--log-level-console=info", "backup"]));
      expect((await blobs(`plain/backup/${STANZA}/${full[1]}/`)).length).toBeGreaterThan(0);
      env.runOk(["--repo=1", "--repo1-retention-full=1", "expire"]);
      expect(await blobs(`plain/backup/${STANZA}/${full[1]}/`)).toEqual([]);
      expect(await blobs(`plain/backup/${STANZA}/${incr[1]}/`)).toEqual([]);
      const info = JSON.parse(env.backrestOk(["--repo=1", "info", "--output=json"])) as { backup: { label: string }[] }[];
      expect(info[0]!.backup.map((b) => b.label)).toEqual([newer]);
      expect((await blobs(`plain/archive/${STANZA}/15-1/0000000100000000/`)).some((k) => k.includes("/000000010000000000000001-"))).toBe(false);
    }, 180_000);

    test("stanza-delete removes every object of the stanza from one repository, and only from it", async () => {
      env.runOk(["stop"]);
      env.runOk(["--repo=2", "--force", "stanza-delete"]);
      env.runOk(["start"]);
      expect(await blobs("bundled/")).toEqual([]);
      expect((await blobs(`plain/backup/${STANZA}/`)).length).toBeGreaterThan(0);
    }, 60_000);
  });
  return suite;
}

export function labelOf(output: string): string {
  return /new backup label = (\S+)/.exec(output)![1]!;
}

/** Every object name below a prefix, through a driver's own listing. */
export async function keysOf(driver: ObjectDriver, prefix: string): Promise<string[]> {
  const out: string[] = [];
  await driver.eachPage(prefix, { delimiter: false }, (p) => {
    out.push(...p.objects.map((o) => o.key));
  });
  return out;
}

/** An object's text through a driver, or null when missing. */
export async function textOf(driver: ObjectDriver, name: string): Promise<string | null> {
  const data = await new Storage(driver, "/").get(name, { ignoreMissing: true });
  return data === null ? null : new TextDecoder().decode(data);
}
