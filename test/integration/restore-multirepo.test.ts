/**
 * Two repositories (repo1, repo2: local posix), as pgBackRest uses them: restore puts the request
 * to each repository in order and restores from the first that can answer it (--repo: only that
 * one), skipping an unreadable or missing repository with a warning; archive-get, synchronous and
 * asynchronous, falls back to repo2 for WAL that repo1 does not have. pgBackRest 2.45 is the
 * oracle for which repository and backup set a restore picks.
 *
 * The history (one cluster archiving into both repositories):
 *   p0 · B2 = full backup into repo2 only · [repo1-empty: copy of repo1, no backup] · p1 · T · p2 ·
 *   B1 = full backup into repo1 · [repo1-gap: copy of repo1 without the WAL before B1]
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { sha1File } from "../harness/archive.ts";
import { type Cluster, mkdirAsPostgres, tempDir } from "../harness/cluster.ts";
import type { StanzaEnv } from "../harness/stanza.ts";
import { makeStanza, removeStanza, STANZA, startRestored } from "./restore-lib.ts";

let env: StanzaEnv;
let repo2Base: string;
const restored: Cluster[] = [];
const at = {} as { b1: string; b2: string; b1Start: string; time: string; p1Segment: string; repo1Empty: string; repo1Gap: string; archiveId: string };

const phases = async (c: Cluster) => (await c.query("select phase, count(*)::int as n from t group by phase order by phase")).map((r) => `${r.phase}:${r.n}`);
const insert = (phase: string) => env.cluster.query(`insert into t select g, '${phase}' from generate_series(1, 100) g`);
const repo2 = () => join(repo2Base, "repo2");

beforeAll(async () => {
  repo2Base = tempDir();
  env = await makeStanza({ archiver: "pgbunker", global: { "repo2-path": join(repo2Base, "repo2"), "repo2-retention-full": 99 } });
  await env.cluster.query("create table t (id int, phase text)");
  await insert("p0");
  at.b2 = newLabel(env.runOk(["--repo=2", "--type=full", "--log-level-console=info", "backup"]));
  await env.archiveNow();
  at.repo1Empty = env.copyRepo("repo1-empty");
  await insert("p1");
  at.p1Segment = await env.archiveNow();
  // The target: a second after p1, a second before p2 (whole seconds apart, whatever the rounding).
  await Bun.sleep(1100);
  at.time = await env.cluster.scalar("select clock_timestamp()::text");
  await Bun.sleep(1100);
  await insert("p2");
  await env.archiveNow();
  at.b1 = newLabel(env.runOk(["--repo=1", "--type=full", "--log-level-console=info", "backup"]));
  await env.archiveNow();

  const info = JSON.parse(env.backrestOk(["--repo=1", "info", "--output=json"])) as { backup: { label: string; archive: { start: string } }[] }[];
  at.b1Start = info[0]!.backup.find((b) => b.label === at.b1)!.archive.start;
  // repo1 without the WAL from before B1: recovery from B2 must get that WAL from repo2.
  at.repo1Gap = env.copyRepo("repo1-gap");
  at.archiveId = readdirSync(join(at.repo1Gap, "archive", STANZA)).find((d) => /^\d+-\d+$/.test(d))!;
  const archive = join(at.repo1Gap, "archive", STANZA, at.archiveId);
  for (const sub of readdirSync(archive).filter((d) => /^[0-9A-F]{16}$/.test(d)))
    for (const f of readdirSync(join(archive, sub))) if (f.slice(0, 24) < at.b1Start) rmSync(join(archive, sub, f));
});

afterAll(async () => {
  for (const c of restored) if (c.running()) c.stop("immediate");
  await removeStanza(env, repo2Base ? [repo2Base] : []);
});

function newLabel(out: string): string {
  return /new backup label = (\S+)/.exec(out)![1]!;
}

/** pgbunker restore into a new directory (args name the recovery type: --target-action needs one). */
function restore(name: string, args: string[]) {
  const dir = join(env.base, name);
  const r = env.run([`--pg1-path=${dir}`, "--target-action=promote", "--archive-mode=off", "--log-level-console=info", ...args, "restore"]);
  return { dir, r, out: r.stdout + r.stderr };
}

/** Start a restored cluster, return the phases it holds, stop it and remove it. */
async function phasesOf(dir: string): Promise<string[]> {
  const c = await startRestored(dir);
  restored.push(c);
  const found = await phases(c);
  c.stop();
  if (!process.env.RESTORE_TEST_KEEP_DIRS) rmSync(dir, { recursive: true, force: true });
  return found;
}

/** The repository and set pgBackRest 2.45 restores with the same options (its INFO line). */
function backrestChoice(name: string, args: string[]): string {
  const dir = join(env.base, name);
  const r = env.backrest([`--pg1-path=${dir}`, "--log-level-console=info", ...args, "restore"]);
  rmSync(dir, { recursive: true, force: true });
  return /(repo\d+): restore backup set (\S+?),/.exec(r.stdout)?.slice(1).join(" ") ?? `exit ${r.code}: ${r.stdout}${r.stderr}`;
}

/** Wait until no background archive process holds the stanza's lock (it finished its pass). */
async function backgroundIdle(): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (Bun.spawnSync(["flock", "-n", join(env.lock, `${STANZA}-archive.lock`), "true"]).exitCode === 0) return;
    await Bun.sleep(50);
  }
  throw new Error("background archive-get did not finish");
}

const autoConf = (dir: string) => readFileSync(join(dir, "postgresql.auto.conf"), "utf8");

describe("restore picks the repository as pgBackRest does", () => {
  test("latest: repo1 has no backup, so repo2's is restored (with a warning about repo1); restore_command leaves the choice to archive-get", async () => {
    const args = [`--repo1-path=${at.repo1Empty}`, "--type=immediate"];
    const { dir, r, out } = restore("latest-repo2", args);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("WARN: repo1: [BackupSetInvalidError] no backup sets to restore");
    expect(out).toContain(`INFO: repo2: restore backup set ${at.b2},`);
    const cmd = /restore_command = '(.*)'/.exec(autoConf(dir))![1]!;
    expect(cmd).toContain(`--repo1-path=${at.repo1Empty}`);
    expect(cmd).not.toContain("--repo=");
    expect(await phasesOf(dir)).toEqual(["p0:100"]);
    expect(backrestChoice("latest-repo2-pgbr", args)).toBe(`repo2 ${at.b2}`);
  });

  test("--repo=1 when repo1 has no backup: BackupSetInvalidError, nothing restored", () => {
    const { dir, r } = restore("repo1-none", [`--repo1-path=${at.repo1Empty}`, "--repo=1", "--type=immediate"]);
    expect(r.code).toBe(75);
    expect(r.stderr).toContain("WARN: repo1: [BackupSetInvalidError] no backup sets to restore");
    expect(r.stderr).toContain("ERROR: [075]: no backup set found to restore");
    expect(r.stderr).toContain("HINT:");
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
    expect(env.backrest([`--pg1-path=${dir}-pgbr`, `--repo1-path=${at.repo1Empty}`, "--repo=1", "restore"]).code).toBe(75);
  });

  test("repo1 missing, then unreadable: skipped with a warning, restored from repo2", async () => {
    const missing = restore("repo1-missing", [`--repo1-path=${join(env.base, "no-such-repo")}`, "--type=immediate"]);
    expect(missing.r.code).toBe(0);
    expect(missing.r.stderr).toMatch(/WARN: repo1: \[FileMissingError\] unable to load info file '.*no-such-repo\/backup\/demo\/backup.info'/);
    expect(missing.out).toContain(`INFO: repo2: restore backup set ${at.b2},`);
    expect(await phasesOf(missing.dir)).toEqual(["p0:100"]);

    const locked = mkdirAsPostgres(join(env.base, "repo1-locked"));
    chmodSync(locked, 0o000);
    try {
      const unreadable = restore("repo1-unreadable", [`--repo1-path=${locked}`, "--type=immediate"]);
      expect(unreadable.r.code).toBe(0);
      expect(unreadable.r.stderr).toMatch(/WARN: repo1: \[\w+Error\] .*repo1-locked\/backup\/demo\/backup.info/);
      expect(unreadable.out).toContain(`INFO: repo2: restore backup set ${at.b2},`);
      // The same backup set as above, whose data has been checked: that the restore completed is enough here.
      expect(existsSync(join(unreadable.dir, "global", "pg_control"))).toBe(true);
      rmSync(unreadable.dir, { recursive: true, force: true });
    } finally {
      chmodSync(locked, 0o755);
    }
  });

  test("--set names a backup only repo2 has: found there; with --repo=2 the restore_command keeps --repo=2", () => {
    const found = restore("set-repo2", [`--set=${at.b2}`, "--type=immediate"]);
    expect(found.r.code).toBe(0);
    expect(found.out).toContain(`INFO: repo2: restore backup set ${at.b2},`);
    expect(/restore_command = '(.*)'/.exec(autoConf(found.dir))![1]).not.toContain("--repo=");
    expect(existsSync(join(found.dir, "global", "pg_control"))).toBe(true);
    rmSync(found.dir, { recursive: true, force: true });

    const pinned = restore("set-repo2-pinned", ["--repo=2", `--set=${at.b2}`, "--type=immediate"]);
    expect(pinned.r.code).toBe(0);
    expect(/restore_command = '(.*)'/.exec(autoConf(pinned.dir))![1]).toContain("--repo=2");
    rmSync(pinned.dir, { recursive: true, force: true });

    // Not in repo1, and repo1 is the only one searched.
    const wrong = restore("set-repo1", ["--repo=1", `--set=${at.b2}`, "--type=immediate"]);
    expect(wrong.r.code).toBe(75);
    expect(wrong.r.stderr).toContain(`backup set ${at.b2} is not valid`);
  });

  test("--type=time: repo1's only backup ended after the target, so repo2's is used; recovery gets the WAL only repo2 has", async () => {
    const args = [`--repo1-path=${at.repo1Gap}`, "--type=time", `--target=${at.time}`];
    const { dir, r, out } = restore("time", args);
    expect(r.code).toBe(0);
    expect(out).toContain(`INFO: repo2: restore backup set ${at.b2},`);
    const getLog = join(env.log, `${STANZA}-archive-get.log`);
    const logBefore = existsSync(getLog) ? readFileSync(getLog, "utf8").length : 0;
    expect(await phasesOf(dir)).toEqual(["p0:100", "p1:100"]);
    // The segment with p1 came from repo2 during this recovery.
    expect(readFileSync(getLog, "utf8").slice(logBefore)).toContain(`found ${at.p1Segment} in the repo2: ${at.archiveId} archive`);
    expect(backrestChoice("time-pgbr", args)).toBe(`repo2 ${at.b2}`);
  });

  test("latest with a backup in both: repo1's, the first repository's (pgBackRest agrees)", () => {
    const { dir, out } = restore("latest-both", ["--type=immediate"]);
    expect(out).toContain(`INFO: repo1: restore backup set ${at.b1},`);
    rmSync(dir, { recursive: true, force: true });
    expect(backrestChoice("latest-both-pgbr", ["--type=immediate"])).toBe(`repo1 ${at.b1}`);
  });
});

describe("archive-get falls back to repo2", () => {
  const storedSha1 = (name: string) => {
    const sub = join(repo2(), "archive", STANZA, at.archiveId, name.slice(0, 16));
    const file = readdirSync(sub).find((f) => f.startsWith(`${name}-`))!;
    return /-([0-9a-f]{40})/.exec(file)![1]!;
  };

  test("a segment repo1 does not have: fetched from repo2, bytes as archived", () => {
    const out = join(env.base, "get-sync");
    const r = env.run([`--repo1-path=${at.repo1Gap}`, "--log-level-console=info", "archive-get", at.p1Segment, out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`found ${at.p1Segment} in the repo2: ${at.archiveId} archive`);
    expect(sha1File(out)).toBe(storedSha1(at.p1Segment));
  });

  test("repo1 missing: a warning, and the segment from repo2", () => {
    const out = join(env.base, "get-missing");
    const r = env.run([`--repo1-path=${join(env.base, "no-such-repo")}`, "archive-get", at.p1Segment, out]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("WARN: repo1: [FileMissingError] unable to load info file");
    expect(sha1File(out)).toBe(storedSha1(at.p1Segment));
  });

  test("asynchronous: prefetched from repo2, repo1's warning relayed by the foreground", async () => {
    const spool = mkdirAsPostgres(join(env.base, "spool-async"));
    const args = [`--repo1-path=${join(env.base, "no-such-repo")}`, "--archive-async", `--spool-path=${spool}`, "--archive-get-queue-max=32MB"];
    const out = join(env.base, "get-async");
    const r = env.run([...args, "archive-get", at.p1Segment, out]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("WARN: repo1: [FileMissingError] unable to load info file");
    expect(sha1File(out)).toBe(storedSha1(at.p1Segment));
    await backgroundIdle();
    expect(readFileSync(join(env.log, `${STANZA}-archive-get-async.log`), "utf8")).toContain(`found ${at.p1Segment} in the repo2: ${at.archiveId} archive`);
  });
});
