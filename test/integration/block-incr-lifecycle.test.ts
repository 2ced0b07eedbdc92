/**
 * Block incremental chains (repo-block) over their life, on one small cluster:
 *  - expire: two full + incr chains each of pgbunker (repo1) and of pgBackRest 2.59.1 (repo3),
 *    expired by pgbunker with retention-full=1: the first chain goes, every kept backup restores
 *    with its data, its maps point only into kept backups, and pgBackRest 2.59.1's verify finds the
 *    repository valid.
 *  - resume: a pgbunker block incr (repo2, files over 16 KiB stored on their own so that they
 *    can be resumed) killed with SIGKILL mid-copy; the next incr resumes it, keeping the block files
 *    already stored, and pgBackRest 2.59.1 verifies it and restores it with the data.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Manifest } from "../../src/repo/manifest.ts";
import { tempDir } from "../harness/cluster.ts";
import type { StanzaEnv } from "../harness/stanza.ts";
import { blockStored, latestLabel, manifestAt, mapReferences, PGBR, printedLabel, snapshot } from "./block-incr-lib.ts";
import { makeStanza, removeStanza, STANZA } from "./restore-lib.ts";

const TABLES = ["a1", "a2", "a3", "a4", "a5", "a6"];
let env: StanzaEnv;
const tmpBase = tempDir("pgb-block-life-");
const repoPath = (k: number) => (k === 1 ? env.repo : join(tmpBase, `repo${k}`));
/** Table data by "repo:label". */
const dataAt = new Map<string, string>();

/** Change a few rows of every table: a few of each one's blocks change, the rest stay the full's. */
async function changeAll(round: number): Promise<void> {
  for (const t of TABLES) await env.cluster.query(`update ${t} set v = md5(v || '${round}') where id % 500 = ${round}`);
  await env.cluster.query("checkpoint");
}

beforeAll(async () => {
  env = await makeStanza({
    archiver: "pgbunker", configName: "pgbackrest.conf",
    global: {
      "repo1-bundle": true, "repo1-block": true,
      "repo2-path": join(tmpBase, "repo2"), "repo2-bundle": true, "repo2-block": true, "repo2-bundle-limit": "16KiB", "repo2-retention-full": 99,
      "repo3-path": join(tmpBase, "repo3"), "repo3-bundle": true, "repo3-block": true, "repo3-retention-full": 99,
    },
  });
  // Six tables of about 300 KB each: stored by 8 KiB blocks.
  for (const t of TABLES) await env.cluster.query(`create table ${t} (id int primary key, v text); insert into ${t} select g, md5(g::text) from generate_series(1, 4500) g`);
  await env.cluster.query("checkpoint");
}, 120_000);

afterAll(async () => {
  await removeStanza(env, [tmpBase]);
});

describe("expire of block incremental chains", () => {
  /** [F1, I1, F2, I2] by repo: pgbunker's in repo1, pgBackRest's in repo3. */
  const chain = new Map<number, string[]>([[1, []], [3, []]]);

  async function backupBoth(type: "full" | "incr", round: number): Promise<void> {
    await changeAll(round);
    const data = await snapshot(env.cluster, TABLES);
    const mine = printedLabel(env.runOk(["--repo=1", `--type=${type}`, "--log-level-console=info", "backup"]));
    env.backrestOk(["--repo=3", `--type=${type}`, "backup"], PGBR);
    const theirs = latestLabel(env, 3);
    chain.get(1)!.push(mine);
    chain.get(3)!.push(theirs);
    dataAt.set(`1:${mine}`, data);
    dataAt.set(`3:${theirs}`, data);
  }

  test("two full + incr chains, expired by pgbunker with retention-full=1: the first chain goes, each incr's maps point into its own chain only", async () => {
    await backupBoth("full", 1);
    await backupBoth("incr", 2);
    await backupBoth("full", 3);
    await backupBoth("incr", 4);
    for (const repo of [1, 3]) {
      const [f1, i1, f2, i2] = chain.get(repo)!;
      // Before expire: the incrs are block incremental and read blocks from their full.
      expect(mapReferences(repoPath(repo), i1!)).toEqual(new Set([f1!, i1!]));
      expect(mapReferences(repoPath(repo), i2!)).toEqual(new Set([f2!, i2!]));
      env.runOk([`--repo=${repo}`, `--repo${repo}-retention-full=1`, "expire"]);
      const left = JSON.parse(env.backrestOk([`--repo=${repo}`, "info", "--output=json"], PGBR))[0].backup.map((b: { label: string }) => b.label);
      expect({ repo, left }).toEqual({ repo, left: [f2!, i2!] });
      for (const gone of [f1!, i1!]) expect(existsSync(join(repoPath(repo), "backup", STANZA, gone))).toBe(false);
      const v = env.backrest([`--repo=${repo}`, "--log-level-console=warn", "verify", "--output=text", "--verbose"], PGBR);
      expect({ repo, code: v.code, valid: (v.stdout.match(/status: valid/g) ?? []).length }).toEqual({ repo, code: 0, valid: 2 });
    }
  }, 600_000);

  test("every kept backup restores with its data (pgbunker's by pgBackRest 2.59.1, pgBackRest's by pgbunker)", async () => {
    for (const [repo, tool] of [[1, "pgbackrest-2.59"], [3, "pgbunker"]] as const) {
      for (const label of chain.get(repo)!.slice(2)) {
        const c = await env.restoreAndStart(tool, label, [`--repo=${repo}`, "--type=immediate", "--target-action=promote"]);
        expect({ repo, label, data: await snapshot(c, TABLES) }).toEqual({ repo, label, data: dataAt.get(`${repo}:${label}`)! });
        c.stop("immediate");
      }
    }
  }, 600_000);
});

describe("resume of an interrupted block incremental backup", () => {
  test("killed mid-copy, the next incr resumes it keeping the stored block files; pgBackRest 2.59.1 verifies and restores it", async () => {
    const full = printedLabel(env.runOk(["--repo=2", "--type=full", "--log-level-console=info", "backup"]));
    await changeAll(5);
    const data = await snapshot(env.cluster, TABLES);
    // Block files stored on their own by the killed run (bundled ones are written again as a whole).
    const alone = (m: Manifest) => blockStored(m).filter((f) => f.bundleId === undefined && f.rck !== undefined);
    // One worker, a save after each file and a rate limit: the kill lands between files, not after the end.
    const killed = await env.killBackupWhen(["--repo=2", "--type=incr", "--process-max=1", "--manifest-save-threshold=1", "--rate-limit=32KiB"], full, (m) => alone(m).length >= 2, undefined, repoPath(2));
    const keptBefore = alone(killed.partial).map((f) => f.name);
    expect(keptBefore.length).toBeGreaterThanOrEqual(2);

    const r = env.run(["--repo=2", "--type=incr", "--log-level-console=detail", "backup"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`resumable backup ${killed.label} of same type exists`);
    expect(r.stdout).toContain(`new backup label = ${killed.label}`);
    expect((r.stdout.match(/checksum resumed file/g) ?? []).length).toBeGreaterThanOrEqual(keptBefore.length);
    // The finished incr stores those files by blocks, and its maps read the rest from the full.
    const m = manifestAt(repoPath(2), killed.label);
    const stored = new Set(blockStored(m).map((f) => f.name));
    for (const name of keptBefore) expect(stored.has(name)).toBe(true);
    expect(mapReferences(repoPath(2), killed.label).has(killed.label)).toBe(true);

    const v = env.backrest(["--repo=2", "--log-level-console=warn", "verify", "--output=text", "--verbose"], PGBR);
    expect({ code: v.code, incr: v.stdout.includes(`backup: ${killed.label}, status: valid`) }).toEqual({ code: 0, incr: true });
    const c = await env.restoreAndStart("pgbackrest-2.59", killed.label, ["--repo=2", "--type=immediate", "--target-action=promote"]);
    expect(await snapshot(c, TABLES)).toBe(data);
    c.stop("immediate");
  }, 600_000);
});
