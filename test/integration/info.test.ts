/**
 * info against one repository holding backups made by both pgBackRest 2.45 and pgbunker (full,
 * incremental on the other tool's full, differential, with a tablespace, a symlink, a second
 * database and annotations): `pgbunker info` prints the same text and the same json, key by key,
 * as `pgbackrest info`, for every form (all stanzas, one stanza, --set of each backup, --type,
 * missing stanza, unknown backup); and it reports a running backup and a stopped stanza.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Lock, lockFile, lockProgress } from "../../src/common/lock.ts";
import { mkdirAsPostgres, PG_GID, PG_UID } from "../harness/cluster.ts";
import type { RunResult } from "../harness/cluster.ts";
import { pgbackrest, pgbunker } from "../harness/pgbunker.ts";
import { StanzaEnv } from "../harness/stanza.ts";

let env: StanzaEnv;
const labels: string[] = [];

/** Every path where two JSON documents differ ("" when they are equal). */
function jsonDiff(a: unknown, b: unknown, path = "$"): string[] {
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || (a === null) !== (b === null)) return [`${path}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`];
  if (Array.isArray(a)) {
    const out = a.length === (b as unknown[]).length ? [] : [`${path}: length ${a.length} != ${(b as unknown[]).length}`];
    a.forEach((x, i) => out.push(...jsonDiff(x, (b as unknown[])[i], `${path}[${i}]`)));
    return out;
  }
  if (a && typeof a === "object") {
    const keys = new Set([...Object.keys(a), ...Object.keys(b as object)]);
    return [...keys].flatMap((k) => jsonDiff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`));
  }
  return a === b ? [] : [`${path}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`];
}

/** Parse json keeping 64-bit integers exact (system ids) as strings for comparison. */
function parseExact(text: string): unknown {
  return JSON.parse(text.replace(/:(\d{16,})/g, ':"$1"'));
}

/** Run both tools with the config only (each form says which stanza, if any). */
function both(args: string[]): { ours: RunResult; theirs: RunResult } {
  return { ours: pgbunker([`--config=${env.conf}`, ...args]), theirs: pgbackrest([`--config=${env.conf}`, ...args]) };
}

beforeAll(async () => {
  // pgBackRest archives (its backup insists on its own archive_command); both tools back up.
  env = await StanzaEnv.create({ archiver: "pgbackrest" });
  const c = env.cluster;
  c.pgbenchInit(1);
  const ts = mkdirAsPostgres(join(env.base, "ts1"));
  await c.query(`create tablespace ts1 location '${ts}'`);
  await c.query("create database db2");
  await c.query("create table in_ts tablespace ts1 as select g from generate_series(1, 5000) g");
  const ext = mkdirAsPostgres(join(env.base, "ext"));
  writeFileSync(join(ext, "note.txt"), "x");
  chownSync(join(ext, "note.txt"), PG_UID, PG_GID);
  symlinkSync(ext, join(c.dataDir, "pg_ext"));

  const take = (tool: "pgbunker" | "pgbackrest", type: string, extra: string[] = []) => {
    c.mustTool("pgbench", ["-t", "100", "-n", "postgres"]);
    const args = [`--type=${type}`, "--no-expire-auto", ...extra, "backup"];
    if (tool === "pgbunker") labels.push(/new backup label = (\S+)/.exec(env.runOk(args))![1]!);
    else {
      env.backrestOk(args);
      labels.push(env.backupLabels().at(-1)!);
    }
  };
  take("pgbackrest", "full", ["--annotation=source=pgbackrest", "--annotation=ticket=42"]);
  take("pgbunker", "incr");
  take("pgbackrest", "diff");
  take("pgbunker", "full", ["--annotation=source=pgbunker"]);
  await env.archiveNow();
});

afterAll(async () => {
  await env?.destroy();
});

describe("info", () => {
  test("the repository holds the backups of both tools, and both verify it alike", () => {
    expect(labels).toHaveLength(4);
    expect(env.backupLabels()).toEqual(labels);
    const args = [`--stanza=${env.stanza}`, "--log-level-console=warn", "verify", "--output=text", "--verbose"];
    const { ours, theirs } = both(args);
    expect(ours.code).toBe(0);
    expect(ours.stdout).toBe(theirs.stdout);
  });

  test("json: same structure and values as pgbackrest, key by key, for every form", () => {
    const st = `--stanza=${env.stanza}`;
    const forms = [[], [st], ...labels.map((l) => [st, `--set=${l}`]), ["--type=full"], [st, "--type=incr"], ["--stanza=nope"], [st, "--set=20200101-000000F"]];
    for (const form of forms) {
      const { ours, theirs } = both([...form, "info", "--output=json"]);
      expect({ form, code: ours.code }).toEqual({ form, code: theirs.code });
      expect({ form, diff: jsonDiff(parseExact(ours.stdout), parseExact(theirs.stdout)) }).toEqual({ form, diff: [] });
      // Nothing but the document on stdout, and no trailing newline, as pgbackrest prints it.
      expect(ours.stdout).toBe(theirs.stdout);
    }
  });

  test("text: the same lines as pgbackrest for every form", () => {
    const st = `--stanza=${env.stanza}`;
    const forms = [[], ...labels.map((l) => [st, `--set=${l}`]), [st, "--type=diff"], ["--stanza=nope"], [st, "--set=20200101-000000F"]];
    for (const form of forms) {
      const { ours, theirs } = both([...form, "info"]);
      expect({ form, code: ours.code, text: ours.stdout }).toEqual({ form, code: 0, text: theirs.stdout });
    }
    const detail = env.runOk([`--set=${labels[0]}`, "info"]);
    expect(detail).toMatch(/database list: db2 \(\d+\), postgres \(\d+\)/);
    expect(detail).toMatch(/tablespaces:\n\s+ts1 \(\d+\) => /);
    expect(detail).toContain(`symlinks:\n                pg_ext => ${join(env.base, "ext")}`);
    expect(detail).toContain("annotation(s)\n                source: pgbackrest\n                ticket: 42");
  });

  test("a running backup (with its progress) and a stopped stanza", () => {
    const lockPath = join(env.base, "lock");
    // Hold the stanza's backup lock as a backup does, and publish progress in it.
    const lock = Lock.acquire(lockPath, env.stanza, ["backup"], "backup");
    chownSync(lockFile(lockPath, env.stanza, "backup"), PG_UID, PG_GID);
    try {
      lockProgress(42.5);
      const { ours, theirs } = both([`--stanza=${env.stanza}`, "info"]);
      expect(ours.stdout.split("\n")[1]).toBe("    status: ok (backup/expire running - 42.50% complete)");
      // pgBackRest reads the same lock file and sees the same.
      expect(theirs.stdout.split("\n")[1]).toBe("    status: ok (backup/expire running - 42.50% complete)");
      const json = JSON.parse(env.runOk(["info", "--output=json"]));
      expect(json[0].status.lock).toEqual({ backup: { held: true } });
    } finally {
      lock.release();
    }
    expect(env.runOk(["info"]).split("\n")[1]).toBe("    status: ok");

    env.runOk(["stop"]);
    try {
      expect(env.runOk(["info"]).split("\n")[1]).toBe("    status: ok (stopped)");
      expect(JSON.parse(env.runOk(["info", "--output=json"]))[0].status).toEqual({ code: 0, lock: { backup: { held: false } }, message: "ok", stopped: true });
    } finally {
      env.runOk(["start"]);
    }
  });

  test("errors: --set without --stanza; a damaged backup.info is a status, not a crash", async () => {
    const noStanza = pgbunker([`--config=${env.conf}`, `--set=${labels[0]}`, "info"]);
    expect(noStanza.code).toBe(31);
    expect(noStanza.stderr).toContain("option 'set' not valid without option 'stanza'");
    const bi = join(env.repo, `backup/${env.stanza}/backup.info`);
    const text = await Bun.file(bi).text();
    for (const f of [bi, `${bi}.copy`]) writeFileSync(f, text.replace('"backup-type":"full"', '"backup-type":"fulx"'));
    try {
      const out = env.run(["info", "--output=json"]);
      expect(out.code).toBe(0);
      const doc = JSON.parse(out.stdout);
      expect(doc[0].status).toMatchObject({ code: 99, message: "other" });
      expect(doc[0].repo[0].status.message).toContain("ChecksumError");
      expect(env.runOk(["info"])).toContain("status: error (other)");
    } finally {
      for (const f of [bi, `${bi}.copy`]) writeFileSync(f, text);
    }
  });
});
