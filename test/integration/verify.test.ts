/**
 * verify against a real repository (a full and an incremental backup by pgbunker, archived WAL),
 * clean and then damaged on copies: a flipped byte in a backup file, a truncated WAL segment, a
 * missing file, a WAL gap, orphaned files. pgbunker verify finds each, names it and exits non-zero;
 * pgBackRest 2.45's verify, run on the same copy, reports the same (its report lines all appear in
 * ours; for the gap, which pgBackRest does not judge, its WAL ranges split at the same segment).
 * verify --set (pgBackRest 2.55) reads one backup set and the WAL it needs: its report is
 * pgBackRest 2.59.1's, damage outside the set is not its business, damage inside is found.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { RunResult } from "../harness/cluster.ts";
import { backupLabel, PGBACKREST_259 } from "../harness/pgbunker.ts";
import { StanzaEnv } from "../harness/stanza.ts";

let env: StanzaEnv;
let full = "", incr = "";
/** A segment archived between the two backups (needed by neither for consistency). */
let between = "";
let copies = 0;

/** A copy of the repository to damage. */
function copyRepo(): string {
  return env.copyRepo(`repo-${copies++}`);
}

function verifyBoth(repo: string, extra: string[] = [], bin?: string): { ours: RunResult; theirs: RunResult } {
  const args = [`--repo1-path=${repo}`, "--log-level-console=warn", "verify", "--output=text", ...extra];
  // --job-retry=0: pgBackRest would otherwise retry an unreadable file after 15 seconds.
  return { ours: env.run(["--process-max=2", ...args]), theirs: env.backrest(["--job-retry=0", ...args], { bin }) };
}

/** Every line of pgBackRest's report is in ours (ours adds detail lines). */
function expectTheirsInOurs(ours: string, theirs: string): void {
  const mine = new Set(ours.split("\n"));
  const lines = theirs.split("\n").filter((l) => l !== "");
  expect(lines.length).toBeGreaterThan(2);
  for (const l of lines) expect({ line: l, found: mine.has(l) }).toEqual({ line: l, found: true });
}

function walFile(repo: string, segment: string): string {
  const dir = join(repo, `archive/${env.stanza}/15-1/${segment.slice(0, 16)}`);
  return join(dir, readdirSync(dir).find((f) => f.startsWith(`${segment}-`))!);
}

/** A file of the full backup, 10 kB or more, that the incremental does not store again but refers to. */
function referencedFile(repo: string): { name: string; file: string } {
  const manifest = readFileSync(join(repo, `backup/${env.stanza}/${incr}/backup.manifest`), "utf8");
  const name = new RegExp(`^(pg_data/base/\\d+/\\d+)=\\{[^\\n]*"reference":"${full}"[^\\n]*"size":(?:[1-9]\\d{4,})`, "m").exec(manifest)![1]!;
  return { name, file: join(repo, `backup/${env.stanza}/${full}/${name}.lz4`) };
}

/** Flip one stored byte (at offset 200) of a file. */
function flipByte(file: string): void {
  const fd = openSync(file, "r+");
  writeSync(fd, new Uint8Array([0xa5]), 0, 1, 200);
  closeSync(fd);
}

function backupStart(label: string): { start: string; stop: string } {
  const b = JSON.parse(env.runOk(["info", "--output=json", `--set=${label}`]))[0].backup[0];
  return b.archive;
}

beforeAll(async () => {
  env = await StanzaEnv.create();
  env.cluster.pgbenchInit(1);
  // Without it, on a fast machine the incremental stores every file again (the time-resolution
  // rule) and the flipped-byte test finds no referenced file.
  await env.settle();
  full = backupLabel(env.runOk(["--type=full", "backup"]));
  env.cluster.mustTool("pgbench", ["-t", "200", "-n", "postgres"]);
  between = await env.archiveNow();
  env.cluster.mustTool("pgbench", ["-t", "200", "-n", "postgres"]);
  incr = backupLabel(env.runOk(["--type=incr", "backup"]));
  await env.archiveNow();
});

afterAll(async () => {
  await env?.destroy();
});

describe("verify", () => {
  test("a clean repository passes; --verbose prints exactly pgBackRest's report; json agrees", () => {
    const { ours, theirs } = verifyBoth(env.repo, ["--verbose"]);
    expect(theirs.code).toBe(0);
    expect(ours.code).toBe(0);
    expect(ours.stdout).toBe(theirs.stdout);
    expect(ours.stdout).toContain(`backup: ${incr}, status: valid`);
    const json = JSON.parse(env.runOk(["verify", "--output=json"]));
    expect(json[0].status).toEqual({ code: 0, errors: 0, message: "ok" });
    expect(json[0].backup.map((b: { label: string; status: string }) => [b.label, b.status])).toEqual([[full, "valid"], [incr, "valid"]]);
    expect(json[0].archive[0].checked).toBe(json[0].archive[0].valid);
    expect(json[0].archive[0].gaps).toEqual([]);
  });

  test("a flipped byte in a backup file: checksum invalid in both backups that use it", () => {
    const repo = copyRepo();
    // A file the incremental backup did not store again but refers to in the full backup.
    const { name, file } = referencedFile(repo);
    flipByte(file);
    const { ours, theirs } = verifyBoth(repo);
    expect(ours.code).toBe(103);
    expect(ours.stdout).toContain(`checksum invalid: ${full}/${name}.lz4`);
    expect(ours.stdout).toContain(`  backup: ${incr}, status: invalid`);
    expectTheirsInOurs(ours.stdout, theirs.stdout);
  });

  test("a truncated WAL segment: damaged in the archive, and the backup that needs it cannot be restored", () => {
    const repo = copyRepo();
    const { start } = backupStart(incr);
    truncateSync(walFile(repo, start), 1000);
    const { ours, theirs } = verifyBoth(repo);
    expect(ours.code).toBe(103);
    expect(ours.stdout).toMatch(/    other: 1\n/);
    expect(ours.stdout).toContain(`  backup: ${incr}, status: invalid`);
    expect(ours.stdout).toContain(`    wal missing for consistency: ${start}`);
    expectTheirsInOurs(ours.stdout, theirs.stdout);
  });

  test("a missing backup file", () => {
    const repo = copyRepo();
    rmSync(join(repo, `backup/${env.stanza}/${incr}/pg_data/global/pg_control.lz4`));
    const { ours, theirs } = verifyBoth(repo);
    expect(ours.code).toBe(103);
    expect(ours.stdout).toContain(`    missing: ${incr}/pg_data/global/pg_control.lz4`);
    expectTheirsInOurs(ours.stdout, theirs.stdout);
  });

  test("a WAL gap between the backups breaks point-in-time recovery; pgBackRest's ranges split at it", () => {
    const repo = copyRepo();
    rmSync(walFile(repo, between));
    const { ours } = verifyBoth(repo);
    expect(ours.code).toBe(103);
    expect(ours.stdout).toContain(`    wal gap: ${between} - ${between} (timeline 1, breaks point-in-time recovery)`);
    // pgBackRest does not judge gaps; its detail log shows the archive in two ranges around it.
    const detail = env.backrest([`--repo1-path=${repo}`, "--job-retry=0", "--log-level-console=detail", "verify"]);
    expect(detail.code).toBe(0);
    const ranges = [...detail.stdout.matchAll(/wal start: ([0-9A-F]{24}), wal stop: ([0-9A-F]{24})/g)].map((m) => [m[1], m[2]]);
    expect(ranges).toHaveLength(2);
    expect(BigInt(`0x${ranges[0]![1]!.slice(16)}`) + 2n).toBe(BigInt(`0x${ranges[1]![0]!.slice(16)}`));
    expect(BigInt(`0x${ranges[0]![1]!.slice(16)}`) + 1n).toBe(BigInt(`0x${between.slice(16)}`));
    // The same gap removed by archive retention on purpose is expected, not an error.
    const retained = env.run([`--repo1-path=${repo}`, "--repo1-retention-archive=1", "--repo1-retention-archive-type=incr", "verify", "--output=text"]);
    expect(retained.code).toBe(0);
  });

  test("orphaned files and a damaged info file copy; json names them", () => {
    const repo = copyRepo();
    writeFileSync(join(repo, `backup/${env.stanza}/${full}/pg_data/base/5/99999.lz4`), "stray");
    writeFileSync(join(repo, `archive/${env.stanza}/15-1/junk`), "stray");
    writeFileSync(join(repo, `backup/${env.stanza}/backup.info.copy`), "[backrest]\nbroken\n");
    const r = env.run([`--repo1-path=${repo}`, "verify", "--output=json"]);
    expect(r.code).toBe(103);
    const json = JSON.parse(r.stdout)[0];
    expect(json.orphans).toEqual([`archive/${env.stanza}/15-1/junk`, `backup/${env.stanza}/${full}/pg_data/base/5/99999.lz4`]);
    expect(json["info-file"]).toHaveLength(1);
    expect(json["info-file"][0]).toContain("backup.info.copy");
    expect(json.status).toEqual({ code: 1, errors: 3, message: "error" });
  });
});

describe("verify --set", () => {
  test("reads only the set and the WAL from its start to its stop: pgBackRest 2.59.1's verbose report, line for line", () => {
    for (const set of [incr, full]) {
      const { ours, theirs } = verifyBoth(env.repo, ["--verbose", `--set=${set}`], PGBACKREST_259);
      expect(theirs.code).toBe(0);
      expect(ours.code).toBe(0);
      expect(ours.stdout).toBe(theirs.stdout);
      const { start, stop } = backupStart(set);
      const json = JSON.parse(env.runOk(["verify", "--output=json", `--set=${set}`]))[0];
      expect(json.backup.map((b: { label: string }) => b.label)).toEqual([set]);
      expect([json.archive[0].min, json.archive[0].max, json.archive[0].checked]).toEqual([start, stop, 1]);
    }
  });

  test("damage outside the set does not fail it; damage to a file or WAL it needs does, as pgBackRest 2.59.1 reports", () => {
    const repo = copyRepo();
    rmSync(walFile(repo, between));
    writeFileSync(join(repo, `archive/${env.stanza}/15-1/junk`), "stray");
    expect(env.run([`--repo1-path=${repo}`, "verify"]).code).toBe(103);
    expect(env.run([`--repo1-path=${repo}`, "verify", `--set=${incr}`]).code).toBe(0);
    expect(env.run([`--repo1-path=${repo}`, "verify", `--set=${full}`]).code).toBe(0);

    // A file of the full backup the incremental refers to: both sets are damaged.
    const { name, file } = referencedFile(repo);
    flipByte(file);
    // The incremental's own start segment: only the incremental needs it.
    truncateSync(walFile(repo, backupStart(incr).start), 1000);
    const forIncr = verifyBoth(repo, [`--set=${incr}`], PGBACKREST_259);
    expect(forIncr.ours.code).toBe(103);
    expect(forIncr.ours.stdout).toContain(`checksum invalid: ${full}/${name}.lz4`);
    expect(forIncr.ours.stdout).toContain(`    wal missing for consistency: ${backupStart(incr).start}`);
    expectTheirsInOurs(forIncr.ours.stdout, forIncr.theirs.stdout);
    const forFull = verifyBoth(repo, [`--set=${full}`], PGBACKREST_259);
    expect(forFull.ours.code).toBe(103);
    expect(forFull.ours.stdout).toContain(`  backup: ${full}, status: invalid`);
    expect(forFull.ours.stdout).not.toContain("wal missing");
    expectTheirsInOurs(forFull.ours.stdout, forFull.theirs.stdout);
  });

  test("a set the repository does not hold, or not a label: pgBackRest's words, an error code, nothing read", () => {
    const repo = copyRepo();
    // Listed in backup.info, directory gone: not a set either (pgBackRest looks at the directories).
    rmSync(join(repo, `backup/${env.stanza}/${incr}`), { recursive: true });
    const absent = `${full}_29991231-235959I`;
    for (const [set, code, message] of [[incr, 75, `backup set ${incr} is not valid`], [absent, 75, `backup set ${absent} is not valid`], ["latest", 32, "'latest' is not a valid backup label format"]] as const) {
      const { ours, theirs } = verifyBoth(repo, [`--set=${set}`], PGBACKREST_259);
      expect(theirs.stdout).toContain(message);
      expect({ set, code: ours.code }).toEqual({ set, code });
      expect(ours.stderr).toContain(`ERROR: [0${code}]: ${message}`);
      expect(ours.stdout).toBe("");
    }
  });
});
