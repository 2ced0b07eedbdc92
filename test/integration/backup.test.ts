/**
 * backup against a real cluster, checked by the real pgBackRest 2.45: it lists the backups, its
 * verify passes and its restore of every backup (full, diff, incr) gives the recorded data.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mkdirAsPostgres, runAsPostgres, SYSTEM_BIN, spawnAsPostgres } from "../harness/cluster.ts";
import { BINARY } from "../harness/pgbunker.ts";
import { Manifest } from "../../src/repo/manifest.ts";
import { StanzaEnv } from "../harness/stanza.ts";

let env: StanzaEnv;

/** Restore a backup with pgBackRest (the oracle) into a new directory and start it. */
const restoreWithPgbackrest = (set: string, extra?: string[]) => env.restoreAndStart("pgbackrest", set, extra);

function manifestText(label: string): string {
  return readFileSync(join(env.repo, `backup/${env.stanza}/${label}/backup.manifest`), "utf8");
}

function countFiles(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? countFiles(join(dir, e.name)) : 1;
  return n;
}

beforeAll(async () => {
  env = await StanzaEnv.create({ archiver: "pgbunker" });
  env.cluster.pgbenchInit(5);
});

afterAll(async () => {
  await env?.destroy();
});

describe("backup", () => {
  let full = "";
  let loadChecksums: Record<string, string> = {};

  test("full backup while pgbench runs (-c 4); pgbackrest restores it to a recorded point with identical data", async () => {
    const bench = spawnAsPostgres([join(SYSTEM_BIN, "pgbench"), "-h", env.cluster.socketDir, "-p", String(env.cluster.port), "-U", "postgres", "-c", "4", "-T", "12", "postgres"]);
    await Bun.sleep(1500);
    const out = env.runOk(["--type=full", "--process-max=2", "backup"]);
    expect(out).toMatch(/new backup label = \d{8}-\d{6}F/);
    full = /new backup label = (\S+)/.exec(out)![1]!;
    expect(await bench.exited).toBe(0);

    // The point the test records: after the load, a named restore point.
    for (const t of ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]) loadChecksums[t] = await env.cluster.tableChecksum(t);
    await env.cluster.query("select pg_create_restore_point('after_load')");
    await env.archiveNow();

    const c = await restoreWithPgbackrest(full, ["--type=name", "--target=after_load", "--target-action=promote"]);
    for (const [t, sum] of Object.entries(loadChecksums)) expect(`${t} ${await c.tableChecksum(t)}`).toBe(`${t} ${sum}`);
    expect(Number(await c.scalar("select count(*) from pgbench_history"))).toBeGreaterThan(0);
    c.stop();
    const check = c.tool("pg_checksums", ["--check", "-D", c.dataDir]);
    expect(check.stdout).toContain("Bad checksums:  0");
  });

  test("pgbackrest info lists it and pgbackrest verify passes", () => {
    expect(env.backupLabels()).toEqual([full]);
    const text = env.backrestOk(["info"]);
    expect(text).toContain(`full backup: ${full}`);
    const v = env.backrest(["verify", "--log-level-console=info"]);
    expect(v.code).toBe(0);
    const m = manifestText(full);
    expect(m).toContain('option-compress-type="lz4"');
    expect(m).toMatch(/^pg_data\/base\/\d+\/\d+=\{"checksum":"[0-9a-f]{40}","checksum-page":true,"rck":"[0-9a-f]{40}","repo-size":\d+,"size":\d+,"timestamp":\d+\}$/m);
    expect(m).toContain("pg_data/backup_label=");
    expect(m).not.toContain("pg_data/postmaster.pid");
    expect(m).not.toMatch(/^pg_data\/pg_wal\/0/m);
  });

  test("full → changes → diff → changes → incr: unchanged files referenced, each backup restores its own data", async () => {
    await env.cluster.query("create table after_full as select g from generate_series(1, 1000) g");
    const diffOut = env.runOk(["--type=diff", "backup"]);
    const diff = /new backup label = (\S+)/.exec(diffOut)![1]!;
    expect(diff).toMatch(new RegExp(`^${full}_\\d{8}-\\d{6}D$`));
    await env.cluster.query("create table after_diff as select g from generate_series(1, 2000) g");
    const incrOut = env.runOk(["--type=incr", "backup"]);
    const incr = /new backup label = (\S+)/.exec(incrOut)![1]!;
    expect(incr).toMatch(/I$/);

    // Referenced, not copied: the incremental holds few files of its own.
    const m = manifestText(incr);
    const refs = (m.match(/"reference":"/g) ?? []).length;
    const files = (m.match(/^pg_(data|tblspc)\/.*=\{/gm) ?? []).length;
    expect(refs).toBeGreaterThan(files * 0.8);
    expect(m).toContain(`backup-prior="${diff}"`);
    expect(m).toContain(`backup-reference="${full},${diff},${incr}"`);
    const stored = countFiles(join(env.repo, `backup/${env.stanza}/${incr}/pg_data`));
    expect(stored).toBeLessThan(files - refs + 5);
    expect(env.backupLabels()).toEqual([full, diff, incr]);
    expect(env.backrest(["verify"]).code).toBe(0);

    const cDiff = await restoreWithPgbackrest(diff);
    expect(await cDiff.scalar("select count(*) from after_full")).toBe("1000");
    expect(await cDiff.scalar("select to_regclass('after_diff') is null")).toBe("true");
    cDiff.stop();
    const cIncr = await restoreWithPgbackrest(incr);
    expect(await cIncr.scalar("select count(*) from after_full")).toBe("1000");
    expect(await cIncr.scalar("select count(*) from after_diff")).toBe("2000");
    expect(await cIncr.tableChecksum("pgbench_accounts")).toBe(await env.cluster.tableChecksum("pgbench_accounts"));
    cIncr.stop();
  });

  test("a corrupted page is reported with file and block; the backup completes and stays valid", async () => {
    await env.cluster.query("create table corrupt_me as select g, md5(g::text) as v from generate_series(1, 5000) g");
    const rel = await env.cluster.scalar("select pg_relation_filepath('corrupt_me')");
    await env.cluster.query("checkpoint");
    env.cluster.stop();
    const file = join(env.cluster.dataDir, rel);
    const buf = readFileSync(file);
    buf[2 * 8192 + 3000] = buf[2 * 8192 + 3000]! ^ 0xff;
    writeFileSync(file, buf);
    env.cluster.start();
    try {
      const r = env.run(["--type=incr", "backup"]);
      expect(r.code).toBe(0);
      expect(r.stdout + r.stderr).toContain(`invalid page checksums found in file ${file} at pages 2`);
      const label = /new backup label = (\S+)/.exec(r.stdout)![1]!;
      expect(manifestText(label)).toMatch(new RegExp(`^pg_data/${rel}=\\{"checksum":"[0-9a-f]{40}","checksum-page":false,"checksum-page-error":\\[2\\]`, "m"));
      const info = JSON.parse(env.backrestOk(["info", "--output=json"]))[0].backup.at(-1);
      expect(info.label).toBe(label);
      expect(info.error).toBe(true);
      expect(env.backrest(["verify"]).code).toBe(0);
    } finally {
      await env.cluster.query("drop table corrupt_me");
    }
  });

  test("killed with SIGKILL halfway, the next backup resumes: it copies less and the result verifies and restores", async () => {
    await env.cluster.query("create table big as select g, md5(g::text) || md5((g * 7)::text) as v from generate_series(1, 150000) g");
    await env.cluster.query("checkpoint");
    // Files copied by the killed run: stored (rck) and not referring to another backup.
    const stored = (m: Manifest) => m.fileList().filter((f) => f.rck !== undefined && f.reference === undefined).length;
    const killed = await env.killBackupWhen(["--type=full", "--process-max=1", "--manifest-save-threshold=1"], full, (m) => stored(m) >= 5);
    expect(stored(killed.partial)).toBeGreaterThan(4);
    expect(env.backupLabels()).not.toContain(killed.label); // never listed while partial

    const r = env.run(["--type=full", "--process-max=2", "--log-level-console=detail", "backup"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`resumable backup ${killed.label} of same type exists`);
    const resumed = (r.stdout.match(/checksum resumed file/g) ?? []).length;
    const copied = (r.stdout.match(/ backup file /g) ?? []).length;
    expect(resumed).toBeGreaterThan(4);
    expect(r.stdout).toContain(`new backup label = ${killed.label}`);
    expect(env.backrest(["verify"]).code).toBe(0);
    expect(copied + resumed).toBeGreaterThan(resumed);

    const c = await restoreWithPgbackrest(killed.label);
    expect(await c.tableChecksum("big")).toBe(await env.cluster.tableChecksum("big"));
    c.stop();
    await env.cluster.query("drop table big");
  });

  test("other compress types: gz, zst, none are verified and restored by pgbackrest; an incr keeps its prior's type", async () => {
    for (const type of ["gz", "zst", "none"]) {
      const out = env.runOk(["--type=full", `--compress-type=${type}`, "backup"]);
      const label = /new backup label = (\S+)/.exec(out)![1]!;
      const m = manifestText(label);
      expect(m).toContain(`option-compress-type="${type}"`);
      const ext = type === "none" ? "" : `.${type}`;
      expect(readdirSync(join(env.repo, `backup/${env.stanza}/${label}/pg_data`))).toContain(`backup_label${ext}`);
    }
    const incr = env.run(["--type=incr", "--compress-type=lz4", "backup"]);
    expect(incr.stderr).toMatch(/incr backup cannot alter compress-type option to 'lz4', reset to value in \S+F/);
    const label = /new backup label = (\S+)/.exec(incr.stdout)![1]!;
    expect(manifestText(label)).toContain('option-compress-type="none"');
    expect(env.backrest(["verify"]).code).toBe(0);
    const c = await restoreWithPgbackrest(label);
    expect(await c.tableChecksum("pgbench_accounts")).toBe(await env.cluster.tableChecksum("pgbench_accounts"));
    c.stop();
  });
});

describe("backup: on a terminal", () => {
  test("shows progress (files, bytes, rate, ETA) on one redrawn line", () => {
    // script(1) gives the backup a pseudo-terminal, as a DBA running it by hand has.
    const cmd = `${BINARY} --config=${env.conf} --stanza=${env.stanza} --type=full --log-level-console=warn backup`;
    const r = runAsPostgres(["script", "-qec", cmd, "/dev/null"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\r\x1b\[Kbackup: \d+\/\d+ files, [\d.]+\w*B\/[\d.]+\w*B \(\d+%\), [\d.]+\w*B\/s, ETA \d+:\d\d/);
  });
});

describe("backup: bad input", () => {
  test("stanza stopped, cluster not running, wrong pg1-path, missing stanza: clear errors, nothing listed", async () => {
    const before = env.backupLabels();
    mkdirAsPostgres(join(env.base, "lock"));
    writeFileSync(join(env.base, "lock", `${env.stanza}.stop`), "");
    let r = env.run(["backup"]);
    expect(r.code).toBe(62);
    expect(r.stderr).toContain(`stop file exists for stanza ${env.stanza}`);
    runAsPostgres(["rm", join(env.base, "lock", `${env.stanza}.stop`)]);

    r = env.run([`--pg1-path=${env.base}/nowhere`, "backup"]);
    expect(r.code).toBe(58);
    expect(r.stderr).toContain(`do not match version '15' and '${env.base}/nowhere' of option pg1-path`);

    r = env.run(["--pg1-port=1", "backup"]);
    expect(r.code).toBe(56);
    expect(r.stderr).toMatch(/unable to connect to .*port=1/);
    expect(r.stderr).toContain("unable to find primary cluster - cannot proceed");

    r = pgbunkerIn(["--stanza=other", `--pg1-path=${env.cluster.dataDir}`, "backup"]);
    expect(r.code).toBe(55);
    expect(r.stderr).toContain("has a stanza-create been performed?");
    expect(env.backupLabels()).toEqual(before);
  });

  test("archive_command that does not archive: archive-check times out clearly; the backup is not listed", async () => {
    const before = env.backupLabels();
    await env.cluster.query("alter system set archive_command = 'false'");
    await env.cluster.query("select pg_reload_conf()");
    try {
      const r = env.run(["--archive-timeout=3", "backup"]);
      expect(r.code).toBe(82);
      expect(r.stderr).toMatch(/WAL segment [0-9A-F]{24} was not archived before the 3s timeout/);
      expect(env.backupLabels()).toEqual(before);
    } finally {
      await env.cluster.query("alter system reset archive_command");
      await env.cluster.query("select pg_reload_conf()");
    }
    await env.archiveNow();
  });

  test("a full repository disk fails the backup cleanly and a later backup succeeds", async () => {
    const small = mkdirAsPostgres(join(env.base, "small-repo"));
    const mount = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0755", "tmpfs", small]);
    if (mount.exitCode !== 0) {
      console.warn("skipped: cannot mount a tmpfs here");
      return;
    }
    try {
      Bun.spawnSync(["chown", "postgres:postgres", small]);
      env.backrestOk([`--repo1-path=${small}`, "--no-online", "stanza-create"]);
      const infoBefore = readFileSync(join(small, `backup/${env.stanza}/backup.info`), "utf8");
      const r = env.run([`--repo1-path=${small}`, "--no-archive-check", "--type=full", "backup"]);
      expect([41, 64]).toContain(r.code);
      expect(r.stderr).toContain("No space left on device");
      expect(r.stderr).toContain("HINT: free space");
      expect(readFileSync(join(small, `backup/${env.stanza}/backup.info`), "utf8")).toBe(infoBefore);
      const leftovers = Bun.spawnSync(["find", small, "-name", "*.pgbunker.tmp"]).stdout.toString();
      expect(leftovers).toBe("");
      // With space again, the next backup completes (resuming what fitted) and verifies.
      expect(Bun.spawnSync(["mount", "-o", "remount,size=300m", small]).exitCode).toBe(0);
      const again = env.run([`--repo1-path=${small}`, "--no-archive-check", "--type=full", "backup"]);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain("of same type exists");
      expect(env.backrest([`--repo1-path=${small}`, "verify"]).code).toBe(0);
    } finally {
      Bun.spawnSync(["umount", small]);
    }
  });
});

function pgbunkerIn(args: string[]) {
  return runAsPostgres([BINARY, `--config=${env.conf}`, ...args]);
}
