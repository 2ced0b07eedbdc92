/**
 * Asynchronous archiving (archive-async=y, process-max=2): PostgreSQL's archive_command answers
 * from the spool while a background process pushes; archive-get prefetches into the spool; a
 * cluster recovers from the archive through asynchronous archive-get; errors and the queue limit
 * reach PostgreSQL through the spool's status files.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, copyFileSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ArchiveEnv, sha1File, sha1OfStored } from "../harness/archive.ts";
import { Cluster, PG_GID, PG_UID, mkdirAsPostgres, mustRun, SYSTEM_BIN, writeAsPostgres } from "../harness/cluster.ts";
import { BINARY, pgbunker, writeConfig } from "../harness/pgbunker.ts";

let env: ArchiveEnv;
let work: string;

beforeAll(async () => {
  env = await ArchiveEnv.create({ global: { "archive-async": true, "process-max": 2 } });
  work = mkdirAsPostgres(join(env.base, "work"));
});

afterAll(async () => {
  await env?.destroy();
});

/** Wait until no background archive process holds the stanza's lock (it finished its pass). */
async function backgroundIdle(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const r = Bun.spawnSync(["flock", "-n", join(env.lock, "demo-archive.lock"), "true"]);
    if (r.exitCode === 0) return;
    await Bun.sleep(50);
  }
  throw new Error("background archive process did not finish");
}

/** A real segment of this cluster (fetched from the archive once: pg_wal recycles its files). */
function segCopy(): string {
  const copy = join(work, "seg");
  if (!existsSync(copy)) env.runOk(["--no-archive-async", "archive-get", [...env.archivedSegments().keys()].sort()[0]!, copy]);
  return copy;
}

/** A pg_wal-like directory of WAL copies marked ready, for pushes PostgreSQL is not part of. */
function fakeWal(name: string, segments: string[], from: string): string {
  const dir = mkdirAsPostgres(join(work, name, "pg_wal"));
  mkdirAsPostgres(join(dir, "archive_status"));
  for (const s of segments) {
    copyFileSync(from, join(dir, s));
    chownSync(join(dir, s), PG_UID, PG_GID);
    writeAsPostgres(join(dir, "archive_status", `${s}.ready`), "");
  }
  return dir;
}

describe("archive-push through the spool", () => {
  test("PostgreSQL's WAL arrives, every segment, acknowledged from the spool; check passes", async () => {
    env.cluster.pgbenchInit(2);
    const last = await env.switchAndWait();
    const names = [...env.archivedSegments().keys()].sort();
    expect(names.at(-1)).toBe(last);
    expect(names.length).toBe(parseInt(last.slice(16), 16) - parseInt(names[0]!.slice(16), 16) + 1);
    const log = readFileSync(join(env.log, "demo-archive-push-async.log"), "utf8");
    expect(log).toMatch(/archive-push:async command begin/);
    expect(log).toMatch(/push \d+ WAL file\(s\) to archive/);
    expect(env.run(["check"]).code).toBe(0);
    // The PostgreSQL log shows no failed archive_command.
    expect(readFileSync(env.cluster.logFile, "utf8")).not.toContain("archive command failed");
  });

  test("archive-push-queue-max drops the whole queue loudly, async and sync", async () => {
    const names = ["0000000100000002000000A1", "0000000100000002000000A2", "0000000100000002000000A3"];
    const wal = fakeWal("queue", names, segCopy());
    const r = env.run(["--archive-push-queue-max=16MB", "archive-push", join(wal, names[0]!)]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`WARN: dropped WAL file '${names[0]}' because archive queue exceeded 16MB`);
    await backgroundIdle();
    expect(readFileSync(join(env.spool, "archive/demo/out", `${names[1]}.ok`), "utf8")).toBe(`0\ndropped WAL file '${names[1]}' because archive queue exceeded 16MB`);
    for (const n of names) expect(env.archivedSegments().has(n)).toBe(false);

    const sync = env.run(["--no-archive-async", "--archive-push-queue-max=16MB", "archive-push", join(wal, names[2]!)]);
    expect(sync.code).toBe(0);
    expect(sync.stderr).toContain(`dropped WAL file '${names[2]}' because archive queue exceeded 16MB`);
    expect(env.archivedSegments().has(names[2]!)).toBe(false);
  });

  test("archive-push-batch-size: a run pushes at most that much WAL, oldest first, and exits; the next run takes the next batch", async () => {
    await backgroundIdle();
    const names = ["0000000100000003000000B1", "0000000100000003000000B2", "0000000100000003000000B3", "0000000100000003000000B4", "0000000100000003000000B5"];
    const wal = fakeWal("batch", names, segCopy());
    const statuses = () => readdirSync(join(env.spool, "archive/demo/out")).filter((f) => names.some((n) => f.startsWith(n))).sort();
    const archived = () => names.filter((n) => env.archivedSegments().has(n));
    const logFile = join(env.log, "demo-archive-push-async.log");
    const logLines = () => readFileSync(logFile, "utf8").split("\n").filter((l) => l.includes("WAL file(s) to archive: 0000000100000003"));
    // 32MiB of 16MiB segments: two per run. With process-max=2 both go in the same run.
    const push = (n: string) => env.run(["--archive-push-batch-size=32MiB", "archive-push", join(wal, n)]);

    expect(push(names[0]!).code).toBe(0);
    await backgroundIdle();
    expect(statuses()).toEqual([`${names[0]}.ok`, `${names[1]}.ok`]);
    expect(archived()).toEqual(names.slice(0, 2));
    expect(logLines().at(-1)).toContain(`push 2 WAL file(s) to archive: ${names[0]}...${names[1]}`);

    // PostgreSQL asks for the next one: a new run, the next batch.
    expect(push(names[2]!).code).toBe(0);
    await backgroundIdle();
    expect(archived()).toEqual(names.slice(0, 4));
    expect(logLines().at(-1)).toContain(`push 2 WAL file(s) to archive: ${names[2]}...${names[3]}`);

    // Below one segment still pushes one at a time.
    expect(env.run(["--archive-push-batch-size=1MiB", "archive-push", join(wal, names[4]!)]).code).toBe(0);
    await backgroundIdle();
    expect(archived()).toEqual(names);
    expect(logLines().at(-1)).toContain(`push 1 WAL file(s) to archive: ${names[4]}`);
    for (const n of names) expect(sha1OfStored(env.archivedSegments().get(n)!)).toBe(sha1File(segCopy()));

    // Out of range is refused like any option.
    const bad = env.run(["--archive-push-batch-size=512KiB", "archive-push", join(wal, names[0]!)]);
    expect(bad.code).toBe(32);
    expect(bad.stderr).toContain("archive-push-batch-size");
  });

  test("errors reach the foreground through the spool: duplicate, then a stanza that does not exist", async () => {
    await backgroundIdle();
    const seg = [...env.archivedSegments().keys()].sort()[0]!;
    // Same name, different content: the background process writes NAME.error with code 45.
    const bytes = readFileSync(segCopy());
    bytes[123_456] = bytes[123_456]! ^ 0xff;
    const wal = fakeWal("dup", [seg], segCopy());
    Bun.write(join(wal, seg), bytes);
    const dup = env.run(["archive-push", join(wal, seg)]);
    expect(dup.code).toBe(45);
    expect(dup.stderr).toContain(`WAL file '${seg}' already exists in the repo1 archive with a different checksum`);

    await backgroundIdle();
    const conf = join(work, "missing.conf");
    writeConfig(conf, {
      global: { "repo1-path": join(work, "no-repo"), "lock-path": env.lock, "log-path": env.log, "spool-path": join(work, "spool2"), "archive-async": true },
      demo: { "pg1-path": env.cluster.dataDir },
    });
    const started = performance.now();
    const missing = pgbunker([`--config=${conf}`, "--stanza=demo", "archive-push", join(wal, seg)]);
    expect(missing.code).toBe(103);
    expect(missing.stderr).toContain("unable to find a valid repository");
    expect(missing.stderr).toContain("HINT: has a stanza-create been performed?");
    expect(performance.now() - started).toBeLessThan(10_000); // from global.error, not a timeout
  });
});

describe("archive-get through the spool", () => {
  test("prefetches the next segments, serves them from the spool, and says when the archive ends", async () => {
    await backgroundIdle();
    const names = [...env.archivedSegments().keys()].filter((n) => n.startsWith("00000001000000000")).sort();
    const [first, second, third] = names;
    const queueMax = `--archive-get-queue-max=${3 * 16}MB`;
    const out1 = join(work, "get1");
    const r1 = env.run([queueMax, "archive-get", first!, out1]);
    expect(r1.code).toBe(0);
    expect(r1.stdout).toContain(`found ${first} in the archive asynchronously`);
    expect(sha1File(out1)).toBe(env.archivedSegments().get(first!)!.match(/-([0-9a-f]{40})/)![1]!);
    await backgroundIdle();
    expect(readdirSync(join(env.spool, "archive/demo/in")).sort()).toEqual([second!, third!].sort());

    const out2 = join(work, "get2");
    const r2 = env.run([queueMax, "archive-get", second!, out2]);
    expect(r2.code).toBe(0);
    expect(sha1File(out2)).toBe(env.archivedSegments().get(second!)!.match(/-([0-9a-f]{40})/)![1]!);
    expect(existsSync(join(env.spool, "archive/demo/in", second!))).toBe(false);

    const none = env.run([queueMax, "archive-get", "0000000100000000000000FE", join(work, "none")]);
    expect(none.code).toBe(1);
    expect(none.stdout).toContain("unable to find 0000000100000000000000FE in the archive asynchronously");
    expect(existsSync(join(work, "none"))).toBe(false);
  });

  test("a cluster recovers from the archive through asynchronous archive-get", async () => {
    await backgroundIdle();
    const dir = join(env.base, "restored");
    mustRun([join(SYSTEM_BIN, "pg_basebackup"), "-h", env.cluster.socketDir, "-p", String(env.cluster.port), "-U", "postgres", "-D", dir, "-X", "none", "-c", "fast"]);
    // Work done after the base backup exists only in the archive.
    await env.cluster.query("create table after_backup as select g as id, md5(g::text) as v from generate_series(1, 50000) g");
    await env.cluster.query("update pgbench_accounts set abalance = abalance + 1 where aid % 7 = 0");
    await env.switchAndWait();
    const expected = [await env.cluster.tableChecksum("after_backup"), await env.cluster.tableChecksum("pgbench_accounts")];

    const restored = await Cluster.attach(dir);
    const conf = join(env.base, "restored.conf");
    writeConfig(conf, {
      global: { "repo1-path": env.repo, "lock-path": join(env.base, "lock-restored"), "log-path": env.log, "spool-path": join(env.base, "spool-restored"), "archive-async": true, "process-max": 2, "log-level-file": "detail" },
      demo: { "pg1-path": dir },
    });
    restored.writeConf({
      port: restored.port,
      archive_mode: "off",
      restore_command: `'${BINARY} --config=${conf} --stanza=demo archive-get %f "%p"'`,
    });
    writeAsPostgres(join(dir, "recovery.signal"), "");
    try {
      await restored.startAndWaitPromoted();
      expect([await restored.tableChecksum("after_backup"), await restored.tableChecksum("pgbench_accounts")]).toEqual(expected);
      expect(readFileSync(join(env.log, "demo-archive-get-async.log"), "utf8")).toMatch(/get \d+ WAL file\(s\) from archive/);
    } finally {
      await restored.destroy();
    }
  });
});
