/**
 * archive-push and archive-get on bad input: each case must fail with a clear message and
 * pgBackRest's exit code, and must never leave a partial or temporary file in the archive (or at
 * the destination). One running cluster; the "other" clusters are initdb'ed and never started
 * (archive-push and archive-get only read pg_control).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ArchiveEnv, sha1File } from "../harness/archive.ts";
import { Cluster, PG_GID, PG_UID, availableMajors, listFiles } from "../harness/cluster.ts";
import { BINARY, pgbackrest, pgbunker, writeConfig } from "../harness/pgbunker.ts";

let env: ArchiveEnv;
let seg: string; // a real archived segment of env's cluster
let segFile: string; // a copy of it outside pg_wal
let other: Cluster; // a second initdb (another system id)
let work: string;

beforeAll(async () => {
  env = await ArchiveEnv.create();
  seg = await env.switchAndWait();
  work = join(env.base, "work");
  mkdirSync(work);
  chownSync(work, PG_UID, PG_GID);
  segFile = copyAs(join(env.cluster.dataDir, "pg_wal", seg), "seg-copy");
  other = await Cluster.create({ baseDir: env.base, name: "other" });
});

afterAll(async () => {
  await other?.destroy();
  await env?.destroy();
});

function copyAs(from: string, name: string): string {
  const to = join(work, name);
  copyFileSync(from, to);
  chownSync(to, PG_UID, PG_GID);
  return to;
}

/** pgbunker with another config file (another cluster or repository), stanza demo. */
function withConf(conf: string, args: string[]) {
  return pgbunker([`--config=${conf}`, "--stanza=demo", ...args]);
}

/** No temporary or partial file anywhere in the repository. */
function expectNoTempFiles(): void {
  expect(listFiles(env.repo).filter((f) => f.includes(".tmp"))).toEqual([]);
}

describe("stanza problems", () => {
  test("unknown stanza (no config section): pg1-path is required", () => {
    const r = pgbunker([`--config=${env.conf}`, "--stanza=nosuch", "archive-push", segFile]);
    expect(r.code).toBe(37);
    expect(r.stderr).toContain("archive-push command requires option: pg1-path");
    expect(r.stderr).toContain("HINT: does this stanza exist?");
  });

  test("stanza not created: archive-push and archive-get name the missing archive.info", () => {
    const conf = join(work, "nostanza.conf");
    writeConfig(conf, {
      global: { "repo1-path": join(work, "empty-repo"), "lock-path": env.lock, "log-path": env.log },
      demo: { "pg1-path": env.cluster.dataDir },
    });
    const push = withConf(conf, ["archive-push", copyAs(segFile, "0000000100000000000000E1")]);
    expect(push.code).toBe(103);
    expect(push.stderr).toContain("unable to find a valid repository");
    expect(push.stderr).toMatch(/repo1: \[FileMissingError\] unable to load info file '.*archive\.info'/);
    expect(push.stderr).toContain("HINT: has a stanza-create been performed?");
    const get = withConf(conf, ["archive-get", seg, join(work, "x")]);
    expect(get.code).toBe(103);
    expect(existsSync(join(work, "x"))).toBe(false);
  });

  test("system-id mismatch: a second initdb pointing at the same repo is refused", () => {
    const conf = join(work, "other.conf");
    writeConfig(conf, { global: { "repo1-path": env.repo, "lock-path": env.lock, "log-path": env.log }, demo: { "pg1-path": other.dataDir } });
    const push = withConf(conf, ["archive-push", join(other.dataDir, "pg_wal", "000000010000000000000001")]);
    expect(push.code).toBe(103);
    expect(push.stderr).toMatch(/\[ArchiveMismatchError\] PostgreSQL version 15, system-id \d+ do not match stanza version 15, system-id \d+/);
    expect(push.stderr).toContain("HINT: are you archiving to the correct stanza?");
    const get = withConf(conf, ["archive-get", seg, join(work, "y")]);
    expect(get.code).toBe(103);
    expect(get.stderr).toContain("unable to retrieve the archive id for database version '15'");
    expectNoTempFiles();
  });

  test("archive-header-check: a segment written by another cluster is refused, unless disabled", () => {
    // pg_control says this stanza's cluster, the segment's page header says another one.
    const foreign = copyAs(join(other.dataDir, "pg_wal", "000000010000000000000001"), "0000000100000000000000C1");
    const r = env.run(["archive-push", foreign]);
    expect(r.code).toBe(44);
    expect(r.stderr).toMatch(/WAL file '.*0000000100000000000000C1' version 15, system-id \d+ do not match stanza version 15, system-id \d+/);
    expect(env.archivedSegments().has("0000000100000000000000C1")).toBe(false);
    expect(env.run(["--no-archive-header-check", "archive-push", foreign]).code).toBe(0);
    expect(env.archivedSegments().has("0000000100000000000000C1")).toBe(true);
  });

  test("version mismatch: a cluster of another major is refused", async () => {
    const majors = availableMajors().filter((m) => m !== 15);
    if (majors.length === 0) return;
    const old = await Cluster.create({ baseDir: env.base, name: "old", major: majors[0] });
    try {
      const conf = join(work, "old.conf");
      writeConfig(conf, { global: { "repo1-path": env.repo, "lock-path": env.lock, "log-path": env.log }, demo: { "pg1-path": old.dataDir } });
      const r = withConf(conf, ["archive-push", join(old.dataDir, "pg_wal", "000000010000000000000001")]);
      expect(r.code).toBe(103);
      expect(r.stderr).toContain(`PostgreSQL version ${majors[0]}, system-id`);
      expect(r.stderr).toContain("do not match stanza version 15");
    } finally {
      await old.destroy();
    }
  });
});

test("two repositories, one without the stanza: the other gets the WAL, the command reports CommandError naming repo2", () => {
  const conf = join(work, "two-repos.conf");
  writeConfig(conf, {
    global: { "repo1-path": env.repo, "repo2-path": join(work, "empty-repo2"), "lock-path": env.lock, "log-path": env.log },
    demo: { "pg1-path": env.cluster.dataDir },
  });
  const name = "0000000100000000000000C9";
  const push = withConf(conf, ["archive-push", copyAs(segFile, name)]);
  expect(push.code).toBe(104);
  expect(push.stderr).toContain("archive-push command encountered error(s):");
  expect(push.stderr).toMatch(/repo2: \[FileMissingError\] unable to load info file '.*empty-repo2\/archive\/demo\/archive.info'/);
  expect(env.archivedSegments().has(name)).toBe(true);
  // pgbackrest says the same of this configuration, and both find the segment in repo1.
  expect(pgbackrest([`--config=${conf}`, "--stanza=demo", "archive-push", join(work, name)]).code).toBe(104);
  const get = withConf(conf, ["archive-get", name, join(work, `${name}.out`)]);
  expect(get.code).toBe(0);
  expect(get.stderr).toContain("WARN: repo2: [FileMissingError]");
  expect(sha1File(join(work, `${name}.out`))).toBe(sha1File(segFile));
});

describe("damaged repository", () => {
  test("corrupt archive.info: the .copy is used; both corrupt is an error", () => {
    const info = join(env.repo, "archive", env.stanza, "archive.info");
    const good = readFileSync(info, "utf8");
    try {
      writeFileSync(info, good.replace('db-version="15"', 'db-version="16"'));
      const name = "0000000100000000000000C2";
      expect(env.run(["archive-push", copyAs(segFile, name)]).code).toBe(0);
      writeFileSync(`${info}.copy`, "garbage\n");
      const r = env.run(["archive-push", copyAs(segFile, "0000000100000000000000C3")]);
      expect(r.code).toBe(103);
      expect(r.stderr).toMatch(/\[ChecksumError\] unable to load info file/);
      expect(r.stderr).toContain("invalid checksum");
      expect(env.archivedSegments().has("0000000100000000000000C3")).toBe(false);
    } finally {
      writeFileSync(info, good);
      writeFileSync(`${info}.copy`, good);
      chownSync(info, PG_UID, PG_GID);
      chownSync(`${info}.copy`, PG_UID, PG_GID);
    }
  });

  test("corrupt archived segment: archive-get refuses it and writes nothing", () => {
    const name = "0000000100000000000000C4";
    env.runOk(["archive-push", copyAs(segFile, name)]);
    const stored = env.archivedSegments().get(name)!;
    const bytes = readFileSync(stored);
    // Still valid lz4 (same frame), different content: only the SHA-1 check can tell.
    const lz4 = Bun.spawnSync(["lz4", "-d", "-c", stored]).stdout;
    lz4[100_000] = lz4[100_000]! ^ 0xff;
    writeFileSync(stored, Bun.spawnSync(["lz4", "-1", "-c"], { stdin: lz4 }).stdout);
    const dest = join(work, "corrupt-out");
    const r = env.run(["archive-get", name, dest]);
    expect(r.code).toBe(26);
    expect(r.stderr).toMatch(/is corrupt: its content has SHA-1 [0-9a-f]{40}, its name says [0-9a-f]{40}/);
    expect(existsSync(dest)).toBe(false);
    expect(readdirSync(work).filter((f) => f.startsWith("corrupt-out"))).toEqual([]);

    // A truncated file: the lz4 frame does not end.
    writeFileSync(stored, bytes.subarray(0, bytes.length >> 1));
    const t = env.run(["archive-get", name, dest]);
    expect(t.code).toBe(29);
    expect(t.stderr).toContain("lz4 stream is truncated");
    expect(existsSync(dest)).toBe(false);
    expect(readdirSync(work).filter((f) => f.startsWith("corrupt-out"))).toEqual([]);
  });

  test("unwritable repository path: clear error, nothing left behind", () => {
    const dir = join(env.archiveIdDir(), "0000000100000000");
    chmodSync(dir, 0o550);
    try {
      const r = env.run(["archive-push", copyAs(segFile, "0000000100000000000000C5")]);
      expect(r.code).toBe(41);
      expect(r.stderr).toMatch(/unable to open file '.*0000000100000000000000C5\..*' for write: \[13\] Permission denied/);
      expect(r.stderr).toContain("HINT: check that the user running pgbunker owns the path or has permission to it.");
    } finally {
      chmodSync(dir, 0o750);
    }
    expect(env.archivedSegments().has("0000000100000000000000C5")).toBe(false);
    expectNoTempFiles();
  });
});

describe("duplicates", () => {
  test("same segment again: warning and success; different content: ArchiveDuplicateError", () => {
    const name = "0000000100000000000000C6";
    const src = copyAs(segFile, name);
    env.runOk(["archive-push", src]);
    const again = env.run(["archive-push", src]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`WARN: WAL file '${name}' already exists in the repo1 archive with the same checksum`);
    const bytes = readFileSync(src);
    bytes[200_000] = bytes[200_000]! ^ 0xff;
    writeFileSync(src, bytes);
    const diff = env.run(["archive-push", src]);
    expect(diff.code).toBe(45);
    expect(diff.stderr).toContain(`ERROR: [045]: WAL file '${name}' already exists in the repo1 archive with a different checksum`);
    expect([...env.archivedSegments().keys()].filter((n) => n === name).length).toBe(1);
    expectNoTempFiles();
  });

  test("concurrent archive-push of the same segment: all succeed, one file, no temp files", async () => {
    const name = "0000000100000000000000C7";
    const src = copyAs(segFile, name);
    const procs = Array.from({ length: 6 }, () =>
      Bun.spawn(["runuser", "-u", "postgres", "--", BINARY, `--config=${env.conf}`, `--stanza=${env.stanza}`, "archive-push", src], { stdout: "pipe", stderr: "pipe" }),
    );
    const codes = await Promise.all(procs.map((p) => p.exited));
    expect(codes).toEqual([0, 0, 0, 0, 0, 0]);
    const dir = join(env.archiveIdDir(), "0000000100000000");
    expect(readdirSync(dir).filter((f) => f.startsWith(name))).toEqual([`${name}-${sha1File(segFile)}.lz4`]);
    expectNoTempFiles();
  });

  test("concurrent pushes of different content: at most one copy survives, the others fail", async () => {
    const name = "0000000100000000000000C8";
    const sources = Array.from({ length: 4 }, (_, i) => {
      const p = copyAs(segFile, `${name}.${i}`);
      const b = readFileSync(p);
      b[300_000 + i] = b[300_000 + i]! ^ 0xff;
      writeFileSync(p, b);
      const dir = join(work, `c8-${i}`);
      mkdirSync(dir);
      chownSync(dir, PG_UID, PG_GID);
      return copyAs(p, `c8-${i}/${name}`);
    });
    const procs = sources.map((src) =>
      Bun.spawn(["runuser", "-u", "postgres", "--", BINARY, `--config=${env.conf}`, `--stanza=${env.stanza}`, "archive-push", src], { stdout: "pipe", stderr: "pipe" }),
    );
    const codes = await Promise.all(procs.map((p) => p.exited));
    expect(codes.filter((c) => c === 0).length).toBeLessThanOrEqual(1);
    expect(codes.every((c) => c === 0 || c === 45)).toBe(true);
    const dir = join(env.archiveIdDir(), "0000000100000000");
    expect(readdirSync(dir).filter((f) => f.startsWith(name)).length).toBeLessThanOrEqual(1);
    expectNoTempFiles();
  });
});

test("a stopped stanza refuses archive-push with StopError", () => {
  env.runOk(["stop"]);
  try {
    const r = env.run(["archive-push", segFile]);
    expect(r.code).toBe(62);
    expect(r.stderr).toContain("stop file exists for stanza demo");
    expect(r.stderr).toContain("HINT: run 'pgbunker --stanza=demo start'");
  } finally {
    env.runOk(["start"]);
  }
});
