/**
 * check against a running primary and a streaming standby: what passes, and each misconfiguration
 * it must catch (archive_command, archive_mode, archiving that does not work, no primary).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { ArchiveEnv } from "../harness/archive.ts";
import type { Cluster } from "../harness/cluster.ts";
import { pgbackrest, pgbunker, writeConfig } from "../harness/pgbunker.ts";

let env: ArchiveEnv;

beforeAll(async () => {
  env = await ArchiveEnv.create();
});

afterAll(async () => {
  await env?.destroy();
});

/** archive_command as the harness configured it, what a reset returns to. */
let configured: string | undefined;

async function setArchiveCommand(value: string | undefined): Promise<void> {
  configured ??= await env.cluster.scalar("show archive_command");
  const want = value ?? configured;
  await env.cluster.query(value === undefined ? "alter system reset archive_command" : `alter system set archive_command = '${value.replace(/'/g, "''")}'`);
  await env.cluster.query("select pg_reload_conf()");
  // A backend shows the new value once the postmaster has re-read the file and passed the reload
  // on, so a check started after that sees it too; a fixed sleep was a guess under load.
  for (let i = 0; i < 100 && (await env.cluster.scalar("show archive_command")) !== want; i++) await Bun.sleep(50);
}

describe("check on a primary", () => {
  test("passes: the switched segment is found in the repository", () => {
    const r = env.run(["check"]);
    expect(r.code).toBe(0);
    const m = /WAL segment ([0-9A-F]{24}) successfully archived to '([^']+)' on repo1/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(env.archivedSegments().get(m![1]!)).toBe(m![2]);
    expect(r.stdout).toContain("check repo1 configuration (primary)");
  });

  test("archive_command that does not run pgbunker", async () => {
    await setArchiveCommand("/bin/true");
    try {
      const r = env.run(["check"]);
      expect(r.code).toBe(68);
      expect(r.stderr).toContain("archive_command '/bin/true' must contain pgbunker");
    } finally {
      await setArchiveCommand(undefined);
    }
  });

  test("archiving that fails: ArchiveTimeoutError after archive-timeout", async () => {
    await setArchiveCommand("/bin/false pgbunker");
    try {
      const started = performance.now();
      const r = env.run(["check", "--archive-timeout=2"]);
      expect(r.code).toBe(82);
      expect(r.stderr).toMatch(/WAL segment [0-9A-F]{24} was not archived before the 2000ms timeout/);
      expect(r.stderr).toContain("HINT: check the archive_command");
      expect(performance.now() - started).toBeGreaterThan(1900);
    } finally {
      await setArchiveCommand(undefined);
    }
    // Archiving catches up once fixed.
    expect(env.run(["check"]).code).toBe(0);
  });

  test("a repository without the stanza is refused", () => {
    const r = pgbunker([`--config=${env.conf}`, "--stanza=demo", `--repo1-path=${join(env.base, "no-repo")}`, "check"]);
    expect(r.code).toBe(55);
    expect(r.stderr).toMatch(/unable to load info file '.*no-repo\/archive\/demo\/archive.info'/);
    expect(r.stderr).toContain("HINT: has a stanza-create been performed?");
  });
});

describe("check with a standby", () => {
  let standby: Cluster | undefined;

  afterAll(async () => {
    await standby?.destroy();
  });

  test("standby + primary: the standby's repository is checked without a WAL switch; standby alone has no primary", async () => {
    standby = await env.cluster.startStandby(join(env.base, "standby"));
    const conf = join(env.base, "standby.conf");
    const global = { "repo1-path": env.repo, "lock-path": env.lock, "log-path": env.log, "log-level-console": "info", "archive-timeout": 20 };
    writeConfig(conf, { global, demo: { ...standby.pgOptions(1), ...env.cluster.pgOptions(2) } });
    const both = pgbunker([`--config=${conf}`, "--stanza=demo", "check"]);
    expect(both.stderr).toBe("");
    expect(both.code).toBe(0);
    expect(both.stdout).toContain("check repo1 (standby)");
    expect(both.stdout).toContain("switch wal not performed because this is a standby");
    expect(both.stdout).toContain("successfully archived to");

    writeConfig(conf, { global, demo: standby.pgOptions(1) });
    const alone = pgbunker([`--config=${conf}`, "--stanza=demo", "check"]);
    expect(alone.code).toBe(27);
    expect(alone.stderr).toContain("primary database not found");
    // pgbackrest says the same of this configuration.
    const theirs = pgbackrest([`--config=${conf}`, "--stanza=demo", "check"]);
    expect(theirs.code).toBe(27);
    expect(theirs.stderr).toContain("primary database not found");
  });
});

test("archive_mode=off is refused", async () => {
  await env.cluster.query("alter system set archive_mode = off");
  env.cluster.stop();
  env.cluster.start();
  try {
    const r = env.run(["check"]);
    expect(r.code).toBe(87);
    expect(r.stderr).toContain("archive_mode must be enabled");
  } finally {
    await env.cluster.query("alter system reset archive_mode");
    env.cluster.stop();
    env.cluster.start();
  }
});
