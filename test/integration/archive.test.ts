/**
 * WAL archiving end to end with a real cluster whose archive_command is the built pgbunker:
 * every completed segment reaches the repository with the SHA-1 of its content in its name,
 * archive-get hands back byte-identical copies that pg_waldump reads, and pgbackrest 2.45 reads
 * what pgbunker archived and the other way round, for every compress-type.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ArchiveEnv, sha1File, sha1OfStored } from "../harness/archive.ts";
import { PG_GID, PG_UID, SYSTEM_BIN, runAsPostgres } from "../harness/cluster.ts";

let env: ArchiveEnv;
let out: string;

beforeAll(async () => {
  env = await ArchiveEnv.create();
  out = join(env.base, "out");
  mkdirSync(out);
  chownSync(out, PG_UID, PG_GID);
});

afterAll(async () => {
  await env?.destroy();
});

/** A WAL file copied from pg_wal under another name, for push tests that must not disturb PostgreSQL. */
function walCopy(segment: string, as: string): string {
  const dir = join(env.base, "wal-copies");
  if (!existsSync(dir)) {
    mkdirSync(dir);
    chownSync(dir, PG_UID, PG_GID);
  }
  const path = join(dir, as);
  copyFileSync(join(env.cluster.dataDir, "pg_wal", segment), path);
  chownSync(path, PG_UID, PG_GID);
  return path;
}

describe("archive-push from PostgreSQL's archive_command", () => {
  test("every completed segment arrives, named by the SHA-1 of its content", async () => {
    env.cluster.pgbenchInit(2);
    const last = await env.switchAndWait();
    const archived = env.archivedSegments();
    // Every segment from the first to the last switched one, no gap.
    const names = [...archived.keys()].sort();
    expect(names.at(-1)).toBe(last);
    expect(names.length).toBe(parseInt(last.slice(16), 16) - parseInt(names[0]!.slice(16), 16) + 1);
    for (const [seg, file] of archived) {
      expect(file.endsWith(".lz4")).toBe(true);
      expect(file).toContain(`${seg}-${sha1OfStored(file)}.lz4`);
    }
    // Nothing half-written is left behind.
    expect(readdirSync(join(env.archiveIdDir(), last.slice(0, 16))).filter((f) => f.includes("tmp"))).toEqual([]);
  });

  test("archive-get returns byte-identical segments that pg_waldump reads; missing is exit 1", async () => {
    const archived = env.archivedSegments();
    const seg = [...archived.keys()].sort().at(-2)!;
    const dest = join(out, seg);
    const r = env.run(["archive-get", seg, dest]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`found ${seg} in the repo1: ${env.cluster.major}-1 archive`);
    expect(`${seg}-${sha1File(dest)}`).toBe(archived.get(seg)!.split("/").pop()!.replace(/\.lz4$/, ""));
    const dump = runAsPostgres([join(SYSTEM_BIN, "pg_waldump"), "--stats", dest]);
    expect(dump.stderr).not.toContain("error");
    expect(dump.stdout).toMatch(/Total\s+\d+/);

    const missing = env.run(["archive-get", "0000000100000000000000FE", join(out, "missing")]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain("unable to find 0000000100000000000000FE in the archive");
    expect(existsSync(join(out, "missing"))).toBe(false);
  });

  test("relative paths as PostgreSQL passes them resolve against pg1-path", () => {
    const seg = [...env.archivedSegments().keys()].sort()[0]!;
    const r = env.run(["archive-get", seg, "pg_wal/RECOVERYXLOG"], { cwd: env.cluster.dataDir });
    expect(r.code).toBe(0);
    const got = join(env.cluster.dataDir, "pg_wal/RECOVERYXLOG");
    expect(sha1File(got)).toBe(env.archivedSegments().get(seg)!.match(/-([0-9a-f]{40})/)![1]!);
    runAsPostgres(["rm", "-f", got]);
    const wrongCwd = env.run(["archive-get", seg, "pg_wal/RECOVERYXLOG"], { cwd: env.base });
    expect(wrongCwd.code).toBe(32);
    expect(wrongCwd.stderr).toContain("is not the same as option pg1-path");
  });

  // archive_command runs this hundreds of times an hour: with log-level-file=warn a push that
  // has nothing to warn about must leave the log file as it was (no PROCESS START banner).
  test("log-level-file=warn: a quiet push writes nothing to the log file; a warning writes one banner and the line", () => {
    const logDir = join(env.base, "log-warn");
    mkdirSync(logDir);
    chownSync(logDir, PG_UID, PG_GID);
    const logFile = join(logDir, `${env.stanza}-archive-push.log`);
    const opts = [`--log-path=${logDir}`, "--log-level-file=warn"];
    const seg = [...env.archivedSegments().keys()].sort()[0]!;
    const fresh = walCopy(seg, "000000010000000000000099");
    for (const path of [fresh, walCopy(seg, "000000010000000000000098")]) expect(env.run([...opts, "archive-push", path]).code).toBe(0);
    // Two pushes of new segments: nothing at warn, so no file (or an empty one).
    expect(existsSync(logFile) ? readFileSync(logFile, "utf8") : "").toBe("");
    // Pushing a segment already archived with the same content warns: one banner, then the warning.
    expect(env.run([...opts, "archive-push", fresh]).code).toBe(0);
    const text = readFileSync(logFile, "utf8");
    expect(text.match(/PROCESS START/g)?.length).toBe(1);
    expect(text).toContain("WARN: WAL file '000000010000000000000099' already exists in the repo1 archive with the same checksum");
  });

  test("history and backup-label files are stored as PostgreSQL hands them over", () => {
    const dir = join(env.base, "wal-copies");
    mkdirSync(dir, { recursive: true });
    chownSync(dir, PG_UID, PG_GID);
    const history = join(dir, "00000002.history");
    Bun.write(history, "1\t0/3000000\tno recovery target specified\n");
    const label = join(dir, "000000010000000000000002.00000028.backup");
    Bun.write(label, "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n");
    Bun.spawnSync(["chown", `${PG_UID}:${PG_GID}`, history, label]);
    env.runOk(["archive-push", history]);
    env.runOk(["archive-push", label]);
    // Plain (not compressed), history directly in the archive id, labels beside their segment.
    expect(readFileSync(join(env.archiveIdDir(), "00000002.history"), "utf8")).toContain("no recovery target");
    expect(readFileSync(join(env.archiveIdDir(), "0000000100000000", "000000010000000000000002.00000028.backup"), "utf8")).toContain("START WAL");
    const got = join(out, "h");
    expect(env.backrest(["archive-get", "00000002.history", got]).code).toBe(0);
    expect(readFileSync(got, "utf8")).toBe("1\t0/3000000\tno recovery target specified\n");
    // A .partial segment (left by a promotion) is compressed and named by its SHA-1 like a segment.
    const seg = [...env.archivedSegments().keys()].sort()[0]!;
    const partial = walCopy(seg, "000000010000000000000003.partial");
    env.runOk(["archive-push", partial]);
    const stored = readdirSync(join(env.archiveIdDir(), "0000000100000000")).find((f) => f.startsWith("000000010000000000000003.partial-"));
    expect(stored).toBe(`000000010000000000000003.partial-${sha1File(partial)}.lz4`);
    expect(env.backrest(["archive-get", "000000010000000000000003.partial", join(out, "p")]).code).toBe(0);
    expect(sha1File(join(out, "p"))).toBe(sha1File(partial));
  });
});

describe("compatibility with pgbackrest 2.45", () => {
  for (const type of ["lz4", "gz", "none"] as const) {
    test(`compress-type=${type}: each tool gets what the other pushed, byte-identical`, () => {
      const seg = [...env.archivedSegments().keys()].sort()[0]!;
      const ours = type === "lz4" ? "0000000100000001000000A1" : type === "gz" ? "0000000100000001000000A2" : "0000000100000001000000A3";
      const theirs = ours.replace(/A(\d)$/, "B$1");
      const srcOurs = walCopy(seg, ours);
      const srcTheirs = walCopy(seg, theirs);
      const expected = sha1File(srcOurs);

      env.runOk([`--compress-type=${type}`, "archive-push", srcOurs]);
      const stored = env.archivedSegments().get(ours)!;
      expect(stored.endsWith(type === "none" ? expected : `${expected}.${type}`)).toBe(true);
      env.backrestOk(["archive-get", ours, join(out, `${ours}.theirs`)]);
      expect(sha1File(join(out, `${ours}.theirs`))).toBe(expected);

      env.backrestOk([`--compress-type=${type}`, "archive-push", srcTheirs]);
      env.runOk(["archive-get", theirs, join(out, `${theirs}.ours`)]);
      expect(sha1File(join(out, `${theirs}.ours`))).toBe(expected);
    });
  }

  test("pgbackrest info and check accept the stanza pgbunker created and archives into", async () => {
    const info = JSON.parse(env.backrestOk(["info", "--output=json"]));
    expect(info[0].status.message).toBe("no valid backups");
    expect(info[0].archive[0].min).toMatch(/^[0-9A-F]{24}$/);
    // pgbackrest's own check: connects, switches WAL, waits for pgbunker to archive it.
    const check = env.backrest(["check"]);
    expect(check.stderr).toBe("");
    expect(check.code).toBe(0);
  });
});
