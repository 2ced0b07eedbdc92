/**
 * What archive-push must not leave in the archive, and what cleans up after it: a file whose name
 * is not WAL is refused (nothing stored, verify stays clean); a push SIGKILLed between writing its
 * temporary file and renaming it leaves that file, which verify reports as a warning (exit 0) and
 * which the next push to that directory, or expire, removes once stale. The WAL already archived
 * stays byte-identical throughout.
 *
 * The kill is made deterministic with strace's fault injection: the kernel delivers SIGKILL as the
 * push enters rename(2), its only rename, when the temporary file is complete. Staleness is made
 * with utimes, never by waiting.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ArchiveEnv, sha1File } from "../harness/archive.ts";
import { listFiles, mkdirAsPostgres, PG_GID, PG_UID } from "../harness/cluster.ts";
import { BINARY } from "../harness/pgbunker.ts";

let env: ArchiveEnv;
let work: string;
let segFile: string; // a real segment of env's cluster, outside pg_wal

beforeAll(async () => {
  env = await ArchiveEnv.create();
  const seg = await env.switchAndWait();
  work = mkdirAsPostgres(join(env.base, "work"));
  segFile = join(work, "seg");
  env.runOk(["archive-get", seg, segFile]);
});

afterAll(async () => {
  await env?.destroy();
});

/** A copy of the segment under another name, owned by postgres. */
function segAs(name: string, dir = work): string {
  const to = join(dir, name);
  copyFileSync(segFile, to);
  chownSync(to, PG_UID, PG_GID);
  return to;
}

/** SHA-1 of every stored WAL file of the archive id (stored bytes), by path. */
function archiveSha1s(): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of listFiles(env.archiveIdDir())) if (!f.endsWith(".tmp")) out.set(f, sha1File(join(env.archiveIdDir(), f)));
  return out;
}

function tempsIn(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith(".pgbunker.tmp"));
}

/** Set a file's mtime this many seconds into the past. */
function age(path: string, seconds: number): void {
  const t = new Date(Date.now() - seconds * 1000);
  utimesSync(path, t, t);
}

function verifyText() {
  return env.run(["verify", "--output=text"]);
}

describe("names that are not WAL", () => {
  test("archive-push ./notwal is refused with ParamInvalidError, synchronously and asynchronously; nothing is stored", () => {
    const before = listFiles(env.repo);
    const spoolBefore = existsSync(env.spool) ? listFiles(env.spool) : [];
    // PostgreSQL passes %p relative to the data directory; so does this.
    segAs("notwal", env.cluster.dataDir);
    try {
      for (const extra of [[], ["--archive-async"]]) {
        const r = env.run([...extra, "archive-push", "./notwal"], { cwd: env.cluster.dataDir });
        expect(r.code).toBe(96);
        expect(r.stderr).toContain("ERROR: [096]: './notwal' is not a WAL file: archive-push expects a WAL segment (24 hex digits");
        expect(r.stderr).toContain("not 'notwal'");
        expect(r.stderr).toContain("HINT: archive_command must pass PostgreSQL's %p");
      }
    } finally {
      rmSync(join(env.cluster.dataDir, "notwal"));
    }
    expect(listFiles(env.repo)).toEqual(before);
    expect(existsSync(env.spool) ? listFiles(env.spool) : []).toEqual(spoolBefore);
    const v = verifyText();
    expect(v.stdout).not.toContain("orphaned");
    expect(v.code).toBe(0);
  });
});

describe("temporary files of killed pushes", () => {
  test.skipIf(!Bun.which("strace"))("SIGKILL before the rename leaves a temp file: verify warns, exit 0; the next push there removes it once stale; WAL intact", () => {
    const dir = join(env.archiveIdDir(), "0000000100000000");
    const before = archiveSha1s();
    const name = "0000000100000000000000D1";
    const src = segAs(name);
    const killed = Bun.spawnSync(
      ["strace", "-f", "-o", "/dev/null", "-u", "postgres", "-e", "trace=rename,renameat,renameat2", "-e", "inject=rename,renameat,renameat2:signal=SIGKILL",
        BINARY, `--config=${env.conf}`, `--stanza=${env.stanza}`, "archive-push", src],
      { cwd: "/tmp", stdout: "pipe", stderr: "pipe" },
    );
    expect(killed.exitCode === 0).toBe(false);
    const temps = tempsIn(dir);
    expect(temps.length).toBe(1);
    expect(temps[0]!.startsWith(`${name}.`)).toBe(true);
    expect(readdirSync(dir).some((f) => f.startsWith(`${name}-`))).toBe(false);
    const temp = join(dir, temps[0]!);

    // verify names it, as a warning: a temp file is no damage, the exit code stays 0.
    let v = verifyText();
    expect(v.stdout).toContain(`warning: temporary file archive/demo/${env.cluster.major}-1/0000000100000000/${temps[0]} (`);
    expect(v.stdout).toContain("possibly a write in progress");
    expect(v.stdout).not.toContain("orphaned");
    expect(v.code).toBe(0);

    // A push to the same directory leaves a temp file a live push could still be writing...
    env.runOk(["archive-push", segAs("0000000100000000000000D2")]);
    expect(existsSync(temp)).toBe(true);
    // ...and removes it once it is older than any live push (61 minutes with default timeouts).
    age(temp, 3700);
    v = verifyText();
    expect(v.stdout).toContain("left by an interrupted write");
    expect(v.code).toBe(0);
    env.runOk(["archive-push", segAs("0000000100000000000000D3")]);
    expect(tempsIn(dir)).toEqual([]);
    expect(verifyText().stdout).not.toContain("temporary file");

    // The pushed segments are there, byte-identical; nothing else in the archive changed.
    const after = archiveSha1s();
    for (const [f, sha1] of before) expect(after.get(f)).toBe(sha1);
    const stored = (n: string) => [...after.keys()].filter((f) => f.startsWith(`0000000100000000/${n}-`));
    expect(stored(name)).toEqual([]);
    for (const n of ["0000000100000000000000D2", "0000000100000000000000D3"]) expect(stored(n)).toEqual([`0000000100000000/${n}-${sha1File(segFile)}.lz4`]);
  });

  test("expire removes the stale temp files of the stanza, in directories no push comes back to; fresh ones stay", () => {
    const before = archiveSha1s();
    const lonely = join(env.archiveIdDir(), "00000001000000AA");
    mkdirSync(lonely);
    chownSync(lonely, PG_UID, PG_GID);
    const stale = [
      join(lonely, "00000001000000AA00000001.999-deadbeef.pgbunker.tmp"),
      join(env.archiveIdDir(), "00000002.history.999-deadbeef.pgbunker.tmp"),
      join(env.repo, "archive", env.stanza, "archive.info.pgbunker.tmp"),
      join(env.repo, "backup", env.stanza, "backup.info.pgbunker.tmp"),
    ];
    const fresh = join(lonely, "00000001000000AA00000002.998-deadbeef.pgbunker.tmp");
    for (const f of [...stale, fresh]) {
      writeFileSync(f, "half a push");
      chownSync(f, PG_UID, PG_GID);
    }
    for (const f of stale) age(f, 2 * 86400);

    // Not orphans, not problems: five warnings, exit 0.
    const v = verifyText();
    expect(v.stdout.split("\n").filter((l) => l.includes("warning: temporary file")).length).toBe(5);
    expect(v.stdout).not.toContain("orphaned");
    expect(v.code).toBe(0);

    // --dry-run says what would go and removes nothing.
    const dry = env.run(["expire", "--dry-run"]);
    expect(dry.code).toBe(0);
    for (const f of stale) expect(dry.stdout).toContain(`[DRY-RUN] repo1: remove stale temporary file ${f}`);
    for (const f of [...stale, fresh]) expect(existsSync(f)).toBe(true);

    const r = env.run(["expire"]);
    expect(r.code).toBe(0);
    for (const f of stale) expect(r.stdout).toContain(`repo1: remove stale temporary file ${f}`);
    expect(r.stdout).not.toContain(fresh);
    for (const f of stale) expect(existsSync(f)).toBe(false);
    expect(existsSync(fresh)).toBe(true);

    rmSync(lonely, { recursive: true });
    expect(archiveSha1s()).toEqual(before);
    expect(verifyText().code).toBe(0);
  });
});
