/**
 * expire against a real repository of pgbunker backups (full, diff, incr) and archived WAL:
 * the backups and WAL the retention options name go, exactly as pgBackRest 2.45's expire removes
 * them from a copy of the same repository; every kept backup still restores (pgbunker and pgBackRest)
 * and recovers to the end of the archive; dry-run, --set, expire-auto; and an expire interrupted halfway leaves a
 * repository that info, verify, backup and restore accept, and that the next expire finishes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { listFiles, PG_GID, PG_UID } from "../harness/cluster.ts";
import { StanzaEnv } from "../harness/stanza.ts";

let env: StanzaEnv;
/** label → pgbench_accounts checksum when the backup was taken. */
const atBackup = new Map<string, string>();
let F1 = "", D1 = "", I1 = "", F2 = "", I2 = "", D2 = "", F3 = "";

async function write(): Promise<void> {
  env.cluster.mustTool("pgbench", ["-t", "200", "-n", "postgres"]);
}

async function backup(type: "full" | "diff" | "incr", extra: string[] = ["--no-expire-auto"]): Promise<string> {
  await write();
  const out = env.runOk([`--type=${type}`, ...extra, "backup"]);
  const label = /new backup label = (\S+)/.exec(out)![1]!;
  atBackup.set(label, await env.cluster.tableChecksum("pgbench_accounts"));
  return label;
}

function labels(run: "pgbunker" | "pgbackrest", repo = env.repo): string[] {
  const args = [`--repo1-path=${repo}`, "info", "--output=json"];
  const r = run === "pgbunker" ? env.runOk(args) : env.backrestOk(args);
  return (JSON.parse(r) as { backup: { label: string }[] }[])[0]!.backup.map((b) => b.label);
}

function tree(repo: string): string[] {
  return listFiles(repo).filter((f) => !f.endsWith(".lock"));
}

function segmentsOf(repo: string): string[] {
  const dir = join(repo, `archive/${env.stanza}/15-1`);
  return readdirSync(dir).filter((d) => /^[0-9A-F]{16}$/.test(d)).flatMap((d) => readdirSync(join(dir, d))).filter((f) => /^[0-9A-F]{24}-/.test(f)).map((f) => f.slice(0, 24)).sort();
}

beforeAll(async () => {
  env = await StanzaEnv.create();
  env.cluster.pgbenchInit(1);
  F1 = await backup("full");
  D1 = await backup("diff");
  I1 = await backup("incr");
  F2 = await backup("full");
  I2 = await backup("incr");
  D2 = await backup("diff");
  F3 = await backup("full");
  await write();
  await env.archiveNow();
});

afterAll(async () => {
  await env?.destroy();
});

describe("expire", () => {
  let final = "";

  test("retention-full=2, retention-diff=1: the same backups and WAL go as with pgbackrest expire", async () => {
    final = await env.cluster.tableChecksum("pgbench_accounts");
    const copy = env.copyRepo("repo-pgbackrest");
    const before = segmentsOf(env.repo);

    const out = env.runOk(["--repo1-retention-full=2", "--repo1-retention-diff=1", "expire"]);
    expect(out).toContain(`repo1: expire full backup set ${F1}, ${D1}, ${I1}`);
    expect(out).toContain(`repo1: expire diff backup ${D2}`);
    env.backrestOk([`--repo1-path=${copy}`, "--repo1-retention-full=2", "--repo1-retention-diff=1", "expire"]);
    expect(tree(env.repo)).toEqual(tree(copy));

    // Gone from info (both tools read the result), directories gone, the rest intact.
    expect(labels("pgbunker")).toEqual([F2, I2, F3]);
    expect(labels("pgbackrest")).toEqual([F2, I2, F3]);
    for (const l of [F1, D1, I1, D2]) expect(existsSync(join(env.repo, `backup/${env.stanza}/${l}`))).toBe(false);
    // WAL: everything before F2's start went, nothing from there on.
    const f2Start = (JSON.parse(env.runOk(["info", "--output=json", `--set=${F2}`])) as any[])[0].backup[0].archive.start as string;
    const after = segmentsOf(env.repo);
    expect(after[0]).toBe(f2Start);
    expect(after).toEqual(before.filter((s) => s >= f2Start));

    expect(env.run(["verify"]).code).toBe(0);
    expect(env.backrest(["verify"]).code).toBe(0);
  });

  test("every kept backup restores and recovers to the end of the archive (pgbunker and pgbackrest restore)", async () => {
    for (const [tool, label] of [["pgbunker", F2], ["pgbackrest", I2], ["pgbunker", F3]] as const) {
      const c = await env.restoreAndStart(tool, label, ["--type=default"]);
      expect(`${label}: ${await c.tableChecksum("pgbench_accounts")}`).toBe(`${label}: ${final}`);
      c.stop();
    }
  });

  test("--dry-run changes nothing; --set expires one set; the last full backup is refused", () => {
    const before = tree(env.repo);
    const dry = env.runOk(["--repo1-retention-full=1", "--dry-run", "expire"]);
    expect(dry).toContain(`[DRY-RUN] repo1: expire full backup set ${F2}, ${I2}`);
    expect(dry).toContain(`[DRY-RUN] repo1: remove expired backup ${F2}`);
    expect(tree(env.repo)).toEqual(before);

    env.runOk([`--set=${I2}`, "expire"]);
    expect(labels("pgbunker")).toEqual([F2, F3]);
    env.runOk([`--set=${F2}`, "expire"]);
    expect(labels("pgbackrest")).toEqual([F3]);
    const last = env.run([`--set=${F3}`, "expire"]);
    expect(last.code).toBe(104);
    expect(last.stderr).toContain("[075]");
    expect(last.stderr).toContain(`full backup ${F3} is the only full backup`);
    expect(labels("pgbunker")).toEqual([F3]);
  });

  test("an interrupted expire leaves a repository info, verify, backup and restore accept; the next expire finishes", async () => {
    const F4 = await backup("full");
    // Make F3's directory impossible to remove completely: expire saves backup.info, removes F3's
    // manifest, then fails inside the directory, as a crash there would leave it.
    const stuck = join(env.repo, `backup/${env.stanza}/${F3}/pg_data/base/1`);
    chownSync(stuck, 0, 0);
    try {
      const r = env.run(["--repo1-retention-full=1", "expire"]);
      expect(r.code).not.toBe(0);
    } finally {
      chownSync(stuck, PG_UID, PG_GID);
    }
    // What a crash at that point leaves: F3 no longer listed, its manifest gone, files half removed.
    expect(existsSync(join(env.repo, `backup/${env.stanza}/${F3}/backup.manifest`))).toBe(false);
    expect(existsSync(join(env.repo, `backup/${env.stanza}/${F3}/backup.manifest.copy`))).toBe(false);
    expect(existsSync(stuck)).toBe(true);

    expect(labels("pgbunker")).toEqual([F4]);
    expect(JSON.parse(env.runOk(["info", "--output=json"]))).toEqual(JSON.parse(env.backrestOk(["info", "--output=json"])));
    const v = env.run(["verify", "--output=text"]);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain(`warning: backup/${env.stanza}/${F3} is not in backup.info`);
    expect(env.backrest(["verify"]).code).toBe(0);
    const c = await env.restoreAndStart("pgbunker", F4);
    expect(await c.tableChecksum("pgbench_accounts")).toBe(atBackup.get(F4)!);
    c.stop();
    // A backup after the crash works (and clears the leftover itself, or the next expire does).
    const I4 = await backup("incr");
    expect(labels("pgbackrest")).toEqual([F4, I4]);
    env.runOk(["--repo1-retention-full=1", "expire"]);
    expect(existsSync(join(env.repo, `backup/${env.stanza}/${F3}`))).toBe(false);
    expect(env.run(["verify"]).code).toBe(0);
  });

  test("expire-auto: a backup expires what its retention says once it has succeeded", async () => {
    const before = labels("pgbunker");
    const F5 = await backup("full", ["--repo1-retention-full=1"]);
    expect(labels("pgbunker")).toEqual([F5]);
    expect(labels("pgbackrest")).toEqual([F5]);
    for (const l of before) expect(existsSync(join(env.repo, `backup/${env.stanza}/${l}`))).toBe(false);
    expect(env.backrest(["verify"]).code).toBe(0);
  });

  // Nothing written in between, so several of these start within one second: each label has to
  // move on rather than fail with "not later than the newest" (which broke this file's setup
  // now and then). pgBackRest 2.45 and pgbunker list them all, in order.
  test("back-to-back backups of every type, nothing between them: each gets a new, later label", () => {
    const got: string[] = [];
    for (const type of ["full", "diff", "incr", "incr", "diff", "full", "incr", "full"]) {
      const out = env.runOk([`--type=${type}`, "--no-expire-auto", "backup"]);
      got.push(/new backup label = (\S+)/.exec(out)![1]!);
    }
    expect([...got].sort()).toEqual(got);
    expect(new Set(got).size).toBe(got.length);
    expect(labels("pgbunker").slice(-got.length)).toEqual(got);
    expect(labels("pgbackrest").slice(-got.length)).toEqual(got);
  });
});
