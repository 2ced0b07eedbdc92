/**
 * Point-in-time recovery with pgbunker end to end: WAL archived by pgbunker archive-push, full and
 * incremental backups by pgbunker backup, restores by pgbunker restore replaying WAL through
 * pgbunker archive-get. Each target type lands on exactly the rows of its target; a target whose
 * WAL is missing from the archive makes recovery fail loudly.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ERROR_CODES } from "../../src/common/error.ts";
import { Cluster, runAsPostgres } from "../harness/cluster.ts";
import type { StanzaEnv } from "../harness/stanza.ts";
import { makeStanza, removeStanza, STANZA, startRestored } from "./restore-lib.ts";

let env: StanzaEnv;
const restored: Cluster[] = [];
/** What was recorded at each target: the phases the table holds there. */
const at = {} as { rpLsn: string; xid: string; lsn: string; time: string; incr: string };

const phases = async (c: Cluster) => (await c.query("select phase, count(*)::int as n from t group by phase order by phase")).map((r) => `${r.phase}:${r.n}`);
const insert = (phase: string, n = 100) => env.cluster.query(`insert into t select g, '${phase}' from generate_series(1, ${n}) g`);

beforeAll(async () => {
  env = await makeStanza({ archiver: "pgbunker" });
  await env.cluster.query("create table t (id int, phase text)");
  await insert("p0");
  env.runOk(["--type=full", "backup"]);
  await insert("p1");
  const out = env.runOk(["--type=incr", "--log-level-console=info", "backup"]);
  at.incr = /new backup label = (\S+)/.exec(out)![1]!;
  await env.archiveNow();
  // name: after p2
  await insert("p2");
  at.rpLsn = await env.cluster.scalar("select pg_create_restore_point('rp1')::text");
  // xid: the transaction that inserts p3
  at.xid = await env.cluster.scalar("with i as (insert into t select g, 'p3' from generate_series(1, 100) g) select txid_current()::text");
  await insert("p4");
  // lsn: after p4
  // (the insert position: with synchronous_commit=off the write position can lag behind the commits)
  at.lsn = await env.cluster.scalar("select pg_current_wal_insert_lsn()::text");
  await insert("p5");
  // time: after p5, a second before p6
  await Bun.sleep(1100);
  at.time = await env.cluster.scalar("select clock_timestamp()::text");
  await Bun.sleep(1100);
  await insert("p6");
  await env.archiveNow();
  // A later backup: targets before it must be restored from the earlier one (chosen by time/lsn, --set otherwise).
  env.runOk(["--type=incr", "backup"]);
});

afterAll(async () => {
  for (const c of restored) if (c.running()) c.stop("immediate");
  await removeStanza(env);
});

/** Restore into a new directory with these options, start, return the phases found (after pg_checksums, and pg_amcheck if asked). */
async function restoreAndCount(name: string, args: string[], set = at.incr, opts: { amcheck?: boolean } = {}): Promise<string[]> {
  const dir = join(env.base, name);
  const out = env.runOk([`--pg1-path=${dir}`, "--target-action=promote", "--archive-mode=off", "--log-level-console=info", ...args, "restore"]);
  expect(out).toContain(`restore backup set ${set},`);
  const c = await startRestored(dir);
  restored.push(c);
  const found = await phases(c);
  if (opts.amcheck) {
    const amcheck = c.tool("pg_amcheck", ["--all", "--install-missing"]);
    expect(amcheck.stdout + amcheck.stderr).toBe("");
  }
  c.stop();
  const sums = c.tool("pg_checksums", ["--check", "-D", dir]);
  expect(sums.stdout).toContain("Bad checksums:  0");
  if (!process.env.RESTORE_TEST_KEEP_DIRS) rmSync(dir, { recursive: true, force: true });
  return found;
}

const upTo = (last: number) => Array.from({ length: last + 1 }, (_, i) => `p${i}:100`);

describe("point-in-time recovery through pgbunker archive-get", () => {
  test("--type=name: the named restore point", async () => {
    expect(await restoreAndCount("name", ["--type=name", "--target=rp1", `--set=${at.incr}`])).toEqual(upTo(2));
  });

  test("--type=xid: through the target transaction, or just before it with --target-exclusive", async () => {
    expect(await restoreAndCount("xid", ["--type=xid", `--target=${at.xid}`, `--set=${at.incr}`])).toEqual(upTo(3));
    expect(await restoreAndCount("xid-ex", ["--type=xid", `--target=${at.xid}`, "--target-exclusive", `--set=${at.incr}`])).toEqual(upTo(2));
  });

  test("--type=lsn and --type=time: the backup set is chosen from the target (not the latest)", async () => {
    expect(await restoreAndCount("lsn", ["--type=lsn", `--target=${at.lsn}`])).toEqual(upTo(4));
    expect(await restoreAndCount("time", ["--type=time", `--target=${at.time}`], at.incr, { amcheck: true })).toEqual(upTo(5));
  });

  test("--type=immediate: the state at the end of the backup (the incremental, with p1)", async () => {
    expect(await restoreAndCount("immediate", ["--type=immediate", `--set=${at.incr}`])).toEqual(upTo(1));
  });

  test("the WAL of the target is missing from the archive: recovery fails and says so", async () => {
    const repo = join(env.base, "repo-missing");
    env.copyRepo("repo-missing");
    const segment = await env.cluster.scalar(`select pg_walfile_name('${at.rpLsn}')`);
    const archiveId = readdirSync(join(repo, "archive", STANZA)).find((d) => /^\d+-\d+$/.test(d))!;
    const dir = join(repo, "archive", STANZA, archiveId, segment.slice(0, 16));
    const removed = readdirSync(dir).filter((f) => f.slice(0, 24) >= segment);
    expect(removed.length).toBeGreaterThan(0);
    for (const f of removed) rmSync(join(dir, f));

    const dest = join(env.base, "missing");
    // A restore point restore reads the archive first, and refuses a name that is not there.
    const byName = env.run([`--repo1-path=${repo}`, `--pg1-path=${dest}`, "--type=name", "--target=rp1", `--set=${at.incr}`, "--target-action=promote", "restore"]);
    expect(byName.code).toBe(ERROR_CODES.OptionInvalidValueError);
    expect(byName.stderr).toContain(`restore point 'rp1' is not in the archive after backup ${at.incr}`);
    expect(existsSync(dest)).toBe(false);
    // An LSN target is not checked beforehand: recovery itself finds the WAL missing.
    env.runOk([`--repo1-path=${repo}`, `--pg1-path=${dest}`, "--type=lsn", `--target=${at.rpLsn}`, `--set=${at.incr}`, "--target-action=promote", "--archive-mode=off", "restore"]);
    const c = await Cluster.attach(dest);
    restored.push(c);
    // pg_ctl -w returns once archive recovery has started; the end of recovery decides.
    runAsPostgres([join(c.bin, "pg_ctl"), "-D", dest, "-l", c.logFile, "-w", "-t", "60", "-o", `-p ${c.port} -k ${c.socketDir}`, "start"]);
    const deadline = Date.now() + 60_000;
    while (existsSync(join(dest, "postmaster.pid")) && Date.now() < deadline) await Bun.sleep(200);
    expect(existsSync(join(dest, "postmaster.pid"))).toBe(false);
    const log = c.tailLog(200);
    expect(log).toContain("FATAL:  recovery ended before configured recovery target was reached");
    // archive-get told PostgreSQL the segment is not there (and logged it), rather than failing hard.
    expect(readFileSync(join(env.base, "log", `${STANZA}-archive-get.log`), "utf8")).toContain(`unable to find ${segment} in the archive`);
  });
});
