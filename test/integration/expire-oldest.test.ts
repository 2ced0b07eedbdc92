/**
 * expire --oldest (pgBackRest 2.58) and --archive-expire-before=SEGMENT (2.59) against a real
 * repository of pgbunker backups (F1 D1, F2 I2, F3) and archived WAL, plus a second repository the
 * cluster archives into that holds no backup (an archive-only repository). Each run is compared
 * with pgBackRest 2.59.1 expiring a copy of the same repository: the same backups and WAL files
 * remain. What remains restores; values pgBackRest refuses are refused and change nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { listFiles, tempDir, type RunResult } from "../harness/cluster.ts";
import { PGBACKREST_259 } from "../harness/pgbunker.ts";
import { StanzaEnv } from "../harness/stanza.ts";

let env: StanzaEnv;
const repo2 = tempDir("pgb-expire-repo2-");
let F1 = "", D1 = "", F2 = "", I2 = "", F3 = "";
let copies = 0;

async function backup(type: "full" | "diff" | "incr"): Promise<string> {
  env.cluster.mustTool("pgbench", ["-t", "100", "-n", "postgres"]);
  await env.archiveNow();
  return /new backup label = (\S+)/.exec(env.runOk(["--repo=1", `--type=${type}`, "--no-expire-auto", "backup"]))![1]!;
}

function startOf(label: string): string {
  return (JSON.parse(env.runOk(["--repo=1", "info", "--output=json", `--set=${label}`])) as any[])[0].backup[0].archive.start as string;
}

/** Every file of a repository with its SHA-1 (to prove a refused run changed nothing). */
function snapshot(repo: string): string[] {
  return listFiles(repo).filter((f) => !f.endsWith(".lock") && statSync(join(repo, f)).isFile()).map((f) => `${f} ${createHash("sha1").update(readFileSync(join(repo, f))).digest("hex")}`);
}

/** Names in the repository: the result both tools must agree on (file contents carry their own versions). */
function tree(repo: string): string[] {
  return listFiles(repo).filter((f) => !f.endsWith(".lock"));
}

/** WAL files (segments and .backup files, without checksum and extension) of archive id 15-1. */
function walOf(repo: string): string[] {
  const dir = join(repo, `archive/${env.stanza}/15-1`);
  return readdirSync(dir).filter((d) => /^[0-9A-F]{16}$/.test(d)).flatMap((d) => readdirSync(join(dir, d))).map((f) => f.replace(/-[0-9a-f]{40}.*$/, "")).sort();
}

function labelsOf(repo: string): string[] {
  return (JSON.parse(env.runOk([`--repo1-path=${repo}`, "--repo=1", "info", "--output=json"])) as { backup: { label: string }[] }[])[0]!.backup.map((b) => b.label);
}

/** pgbunker and pgBackRest 2.59.1 expire copies of repository `index` with the same arguments; both copies are returned. */
function expireBoth(args: string[], index = 1): { ours: RunResult; theirs: RunResult; oursRepo: string; theirsRepo: string } {
  const from = index === 1 ? env.repo : repo2;
  const oursRepo = env.copyRepo(`ours-${copies}`, from);
  const theirsRepo = env.copyRepo(`theirs-${copies++}`, from);
  const run = (repo: string) => [`--repo${index}-path=${repo}`, `--repo=${index}`, ...args, "expire"];
  return { ours: env.run(run(oursRepo)), theirs: env.backrest(run(theirsRepo), { bin: PGBACKREST_259 }), oursRepo, theirsRepo };
}

/** Segment n of timeline 1 (log id 0). */
const seg = (n: number) => `00000001000000000000${n.toString(16).toUpperCase().padStart(4, "0")}`;
const segNo = (name: string) => Number.parseInt(name.slice(16, 24), 16);

beforeAll(async () => {
  env = await StanzaEnv.create({ global: { "repo2-path": repo2 } });
  env.cluster.pgbenchInit(1);
  F1 = await backup("full");
  D1 = await backup("diff");
  F2 = await backup("full");
  I2 = await backup("incr");
  F3 = await backup("full");
  env.cluster.mustTool("pgbench", ["-t", "100", "-n", "postgres"]);
  await env.archiveNow();
});

afterAll(async () => {
  await env?.destroy();
  rmSync(repo2, { recursive: true, force: true });
});

describe("expire --archive-expire-before and --oldest", () => {
  test("values pgBackRest refuses are refused before anything is touched, with its error codes", () => {
    const before = [snapshot(env.repo), snapshot(repo2)];
    const refused = env.copyRepo("refused");
    const theirs = (args: string[]) => env.backrest([`--repo1-path=${refused}`, "--repo=1", ...args, "expire"], { bin: PGBACKREST_259 }).code;
    const conflict = env.run(["--oldest", `--set=${F2}`, "expire"]);
    expect(conflict.code).toBe(31);
    expect(conflict.stderr).toContain("ERROR: [031]: --oldest and --set cannot be used together");
    expect(theirs(["--oldest", `--set=${F2}`])).toBe(31);
    for (const value of ["latest", "00000001000000000000000a", `${seg(5)}.partial`, `${seg(5)}0`, seg(5).slice(1), `${seg(5).slice(0, 23)}:`]) {
      const r = env.run([`--archive-expire-before=${value}`, "--repo1-retention-full=1", "expire"]);
      expect({ value, code: r.code }).toEqual({ value, code: 32 });
      expect(r.stderr).toContain(`ERROR: [032]: '${value}' is not a valid WAL segment name for option '--archive-expire-before'`);
      // pgBackRest's pattern ([0-F]) lets ':' through; a name that is not hexadecimal is refused here.
      if (!value.endsWith(":")) expect(theirs([`--archive-expire-before=${value}`])).toBe(32);
    }
    expect([snapshot(env.repo), snapshot(repo2), snapshot(refused)]).toEqual([...before, before[0]!]);
  });

  test("retention not met: WAL goes only before the segment and before the oldest full backup, as with pgBackRest 2.59.1", () => {
    const all = walOf(env.repo);
    const f1 = startOf(F1);
    expect(segNo(all[0]!)).toBeLessThan(segNo(f1));
    for (const before of [seg(segNo(f1) - 1), startOf(D1)]) {
      const { ours, theirs, oursRepo, theirsRepo } = expireBoth([`--archive-expire-before=${before}`]);
      expect(theirs.code).toBe(0);
      expect(ours.code).toBe(0);
      expect(tree(oursRepo)).toEqual(tree(theirsRepo));
      const boundary = before < f1 ? before : f1;
      expect(walOf(oursRepo)).toEqual(all.filter((w) => w.slice(0, 24) >= boundary));
      expect(labelsOf(oursRepo)).toEqual([F1, D1, F2, I2, F3]);
    }
  });

  test("retention met: the segment keeps the WAL from it on that retention alone would remove, as with pgBackRest 2.59.1", () => {
    const all = walOf(env.repo);
    const d1 = startOf(D1);
    const { ours, theirs, oursRepo, theirsRepo } = expireBoth(["--repo1-retention-full=2", `--archive-expire-before=${d1}`]);
    expect([ours.code, theirs.code]).toEqual([0, 0]);
    expect(tree(oursRepo)).toEqual(tree(theirsRepo));
    expect(labelsOf(oursRepo)).toEqual([F2, I2, F3]);
    expect(walOf(oursRepo)).toEqual(all.filter((w) => w.slice(0, 24) >= d1));
    // Without it, retention removes everything before F2.
    const plain = expireBoth(["--repo1-retention-full=2"]);
    expect(walOf(plain.oursRepo)[0]).toBe(startOf(F2));
  });

  test("archive-only repository (no backup): without archive retention nothing goes; with it, everything before the segment", () => {
    const all = walOf(repo2);
    const before = seg(segNo(all[0]!) + 3);
    const unset = env.run(["--repo=2", `--archive-expire-before=${before}`, "expire"]);
    expect(unset.code).toBe(0);
    expect(unset.stdout).toContain("'repo2-retention-archive' is not set");
    expect(walOf(repo2)).toEqual(all);

    const { ours, theirs, oursRepo, theirsRepo } = expireBoth(["--repo2-retention-full=1", `--archive-expire-before=${before}`], 2);
    expect([ours.code, theirs.code]).toEqual([0, 0]);
    expect(tree(oursRepo)).toEqual(tree(theirsRepo));
    expect(walOf(oursRepo)).toEqual(all.filter((w) => w.slice(0, 24) >= before));
    expect(env.run([`--repo2-path=${oursRepo}`, "--repo=2", "verify"]).code).toBe(0);
  });

  test("--oldest: only the oldest full set and the WAL only it needed go, retention-full=1 notwithstanding, as with pgBackRest 2.59.1; what remains restores", async () => {
    const final = await env.cluster.tableChecksum("pgbench_accounts");
    const theirsRepo = env.copyRepo(`theirs-${copies++}`);
    const all = walOf(env.repo);
    const ours = env.run(["--repo1-retention-full=1", "--oldest", "expire"]);
    expect(ours.code).toBe(0);
    expect(ours.stdout).toContain(`repo1: expire full backup set ${F1}, ${D1}`);
    // repo2 has no full backup to spare.
    expect(ours.stderr).toContain("WARN: repo2: expire oldest requested but no eligible full backup to expire");
    env.backrestOk([`--repo1-path=${theirsRepo}`, "--repo=1", "--repo1-retention-full=1", "--oldest", "expire"], { bin: PGBACKREST_259 });
    expect(tree(env.repo)).toEqual(tree(theirsRepo));
    expect(labelsOf(env.repo)).toEqual([F2, I2, F3]);
    expect(walOf(env.repo)).toEqual(all.filter((w) => w.slice(0, 24) >= startOf(F2)));
    expect(env.run(["--repo=1", "verify"]).code).toBe(0);

    const c = await env.restoreAndStart("pgbunker", F2, ["--repo=1", "--type=default"]);
    expect(await c.tableChecksum("pgbench_accounts")).toBe(final);
    c.stop();
  });

  test("--oldest again takes F2's set; with one full backup left it warns and removes nothing", () => {
    env.runOk(["--repo=1", "--oldest", "expire"]);
    expect(labelsOf(env.repo)).toEqual([F3]);
    const before = snapshot(env.repo);
    const last = env.run(["--repo=1", "--oldest", "expire"]);
    expect(last.code).toBe(0);
    expect(last.stderr).toContain("WARN: repo1: expire oldest requested but no eligible full backup to expire");
    expect(snapshot(env.repo)).toEqual(before);
  });
});
