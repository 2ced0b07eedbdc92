/**
 * stanza-create, stanza-upgrade, stanza-delete, start/stop, and encrypted repositories, checked
 * against what pgbackrest 2.45 writes and reads: info files must be byte-identical to pgbackrest's
 * for the same cluster, and each tool must accept the other's stanza.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ArchiveEnv, sha1File } from "../harness/archive.ts";
import { Cluster, PG_GID, PG_UID, availableMajors, mkdirAsPostgres } from "../harness/cluster.ts";
import { pgbackrest, pgbunker, writeConfig } from "../harness/pgbunker.ts";

let env: ArchiveEnv;
let work: string;
let segFile: string;

beforeAll(async () => {
  env = await ArchiveEnv.create();
  work = mkdirAsPostgres(join(env.base, "work"));
  const seg = await env.switchAndWait();
  // Under its own name: archive-push takes only WAL file names.
  segFile = join(work, seg);
  copyFileSync(join(env.cluster.dataDir, "pg_wal", seg), segFile);
  chownSync(segFile, PG_UID, PG_GID);
});

afterAll(async () => {
  await env?.destroy();
});

/** A config like env's, for another repository (and optionally another cluster / cipher). */
function conf(name: string, opts: { pgPath?: string; global?: Record<string, string | number | boolean> } = {}): { file: string; repo: string; run: (args: string[]) => ReturnType<typeof pgbunker>; backrest: (args: string[]) => ReturnType<typeof pgbackrest> } {
  const file = join(work, `${name}.conf`);
  const repo = join(work, `repo-${name}`);
  writeConfig(file, {
    global: { "repo1-path": repo, "lock-path": env.lock, "log-path": env.log, "log-level-console": "info", ...opts.global },
    demo: { "pg1-path": opts.pgPath ?? env.cluster.dataDir, "pg1-port": env.cluster.port, "pg1-socket-path": env.cluster.socketDir },
  });
  return {
    file,
    repo,
    run: (args) => pgbunker([`--config=${file}`, "--stanza=demo", ...args]),
    backrest: (args) => pgbackrest([`--config=${file}`, "--stanza=demo", ...args]),
  };
}

/** The four info files of two repositories, byte for byte. */
function sameInfoFiles(a: string, b: string): void {
  const fa = infoFiles(a);
  const fb = infoFiles(b);
  for (let i = 0; i < fa.length; i++) expect({ file: fa[i], text: readFileSync(fa[i]!, "utf8") }).toEqual({ file: fa[i], text: readFileSync(fb[i]!, "utf8") });
}

const infoFiles = (repo: string) => [join(repo, "archive/demo/archive.info"), join(repo, "archive/demo/archive.info.copy"), join(repo, "backup/demo/backup.info"), join(repo, "backup/demo/backup.info.copy")];

describe("stanza-create", () => {
  test("writes the info files byte-identical to pgbackrest's; each tool accepts the other's stanza", () => {
    const theirs = conf("theirs");
    expect(theirs.backrest(["stanza-create"]).code).toBe(0);
    sameInfoFiles(env.repo, theirs.repo);

    const again = env.run(["stanza-create"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("stanza 'demo' already exists on repo1 and is valid");
    expect(env.backrest(["stanza-create"]).stdout).toContain("already exists on repo1 and is valid");
    expect(theirs.run(["stanza-create"]).stdout).toContain("already exists on repo1 and is valid");
  });

  test("refuses another cluster's stanza and a directory with leftovers", async () => {
    const other = await Cluster.create({ baseDir: env.base, name: "other" });
    try {
      const mismatch = pgbunker([`--config=${conf("mismatch", { pgPath: other.dataDir }).file}`, `--repo1-path=${env.repo}`, "--stanza=demo", "--no-online", "stanza-create"]);
      expect(mismatch.code).toBe(28);
      expect(mismatch.stderr).toContain("backup and archive info files exist but do not match the database");
      expect(mismatch.stderr).toContain("HINT: is this the correct stanza?");
    } finally {
      await other.destroy();
    }
    const left = conf("leftovers");
    mkdirAsPostgres(join(left.repo, "archive/demo/15-1/0000000100000000"));
    writeFileSync(join(left.repo, "archive/demo/15-1/0000000100000000/x"), "");
    const r = left.run(["stanza-create"]);
    expect(r.code).toBe(40);
    expect(r.stderr).toContain("archive directory not empty");
    expect(existsSync(join(left.repo, "archive/demo/archive.info"))).toBe(false);
  });

  test("a stanza-create cut short is completed; a lost backup.info beside backups is not papered over", () => {
    const half = conf("half");
    half.run(["stanza-create"]);
    rmSync(join(half.repo, "backup/demo/backup.info"));
    rmSync(join(half.repo, "backup/demo/backup.info.copy"));
    const r = half.run(["stanza-create"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("backup.info was missing on repo1 and has been created");
    expect(readFileSync(join(half.repo, "backup/demo/backup.info"), "utf8")).toBe(readFileSync(join(env.repo, "backup/demo/backup.info"), "utf8"));

    rmSync(join(half.repo, "backup/demo/backup.info"));
    rmSync(join(half.repo, "backup/demo/backup.info.copy"));
    mkdirAsPostgres(join(half.repo, "backup/demo/20250101-000000F"));
    const lost = half.run(["stanza-create"]);
    expect(lost.code).toBe(55);
    expect(lost.stderr).toContain("archive.info exists but backup.info is missing on repo1");
  });
});

describe("stanza-upgrade", () => {
  const oldMajor = 14;
  test("after a major upgrade: a new history entry, identical to pgbackrest's, WAL under the new archive id", async () => {
    if (!availableMajors().includes(oldMajor)) return;
    const old = await Cluster.create({ baseDir: env.base, name: "v14", major: oldMajor });
    try {
      const ours = conf("upgrade-ours", { pgPath: old.dataDir });
      const theirs = conf("upgrade-theirs", { pgPath: old.dataDir });
      expect(ours.run(["--no-online", "stanza-create"]).code).toBe(0);
      expect(theirs.backrest(["--no-online", "stanza-create"]).code).toBe(0);
      // Now the stanza's cluster is the running 15.
      const up = (c: ReturnType<typeof conf>, tool: "run" | "backrest") => c[tool]([`--pg1-path=${env.cluster.dataDir}`, "stanza-upgrade"]);
      const r = up(ours, "run");
      expect(r.code).toBe(0);
      expect(up(theirs, "backrest").code).toBe(0);
      sameInfoFiles(ours.repo, theirs.repo);
      const info = readFileSync(join(ours.repo, "archive/demo/archive.info"), "utf8");
      expect(info).toMatch(/^1=\{"db-id":\d+,"db-version":"14"\}$/m);
      expect(info).toMatch(/^2=\{"db-id":\d+,"db-version":"15"\}$/m);
      expect(up(ours, "run").stdout).toContain("stanza 'demo' on repo1 is already up to date");
      // pgbunker upgrades what pgbackrest created and the other way round: covered by identity above.
      const name = "0000000100000000000000D1";
      const src = join(work, name);
      copyFileSync(segFile, src);
      chownSync(src, PG_UID, PG_GID);
      const pg15 = `--pg1-path=${env.cluster.dataDir}`;
      const push = ours.run([pg15, "archive-push", src]);
      expect(push.stderr).toBe("");
      expect(readdirSync(join(ours.repo, "archive/demo/15-2/0000000100000000"))).toEqual([`${name}-${sha1File(src)}.lz4`]);
      const out = join(work, "upgrade-get");
      expect(theirs.backrest([pg15, "archive-get", name, out]).code).toBe(1); // not pushed there
      expect(theirs.backrest([pg15, "archive-push", src]).code).toBe(0);
      expect(ours.run([pg15, "archive-get", name, out]).code).toBe(0);
      expect(sha1File(out)).toBe(sha1File(src));
      expect(readdirSync(join(theirs.repo, "archive/demo/15-2/0000000100000000"))).toEqual([`${name}-${sha1File(src)}.gz`]);
    } finally {
      await old.destroy();
    }
  });
});

describe("stanza-delete, stop and start", () => {
  test("stanza-delete needs stop, refuses a running cluster unless --force, removes everything", () => {
    const d = conf("delete");
    expect(d.backrest(["stanza-create"]).code).toBe(0);
    expect(d.run(["archive-push", segFile]).code).toBe(0);
    const noStop = d.run(["stanza-delete"]);
    expect(noStop.code).toBe(55);
    expect(noStop.stderr).toContain("stop file does not exist for stanza 'demo'");
    d.run(["stop"]);
    try {
      const running = d.run(["stanza-delete"]);
      expect(running.code).toBe(38);
      expect(running.stderr).toContain("postmaster.pid exists - looks like PostgreSQL is running");
      expect(existsSync(join(d.repo, "archive/demo/archive.info"))).toBe(true);
      expect(d.run(["stanza-delete", "--force"]).code).toBe(0);
      expect(existsSync(join(env.lock, "demo.stop"))).toBe(false);
    } finally {
      rmSync(join(env.lock, "demo.stop"), { force: true });
    }
    expect(existsSync(join(d.repo, "archive/demo"))).toBe(false);
    expect(existsSync(join(d.repo, "backup/demo"))).toBe(false);
    expect(d.run(["stanza-delete"]).code).toBe(0);
    // pgbackrest agrees the stanza is gone: it can be created again.
    expect(d.backrest(["stanza-create"]).code).toBe(0);
  });

  test("stop for all stanzas, start; stop --force terminates the process holding the lock", async () => {
    const all = pgbunker([`--config=${env.conf}`, "stop"]);
    expect(all.code).toBe(0);
    const refused = env.run(["archive-push", segFile]);
    expect(refused.code).toBe(62);
    expect(refused.stderr).toContain("stop file exists for all stanzas");
    expect(pgbunker([`--config=${env.conf}`, "stop"]).stderr).toContain("WARN: stop file already exists for all stanzas");
    expect(pgbunker([`--config=${env.conf}`, "start"]).code).toBe(0);
    expect(pgbunker([`--config=${env.conf}`, "start"]).stderr).toContain("WARN: stop file does not exist for all stanzas");

    // A process holding the stanza's archive lock (flock(2), as pgbunker takes it).
    mkdirAsPostgres(env.lock);
    const lockFile = join(env.lock, "demo-archive.lock");
    const holder = Bun.spawn(["runuser", "-u", "postgres", "--", "flock", "-x", lockFile, "sleep", "60"]);
    let flockPid = 0;
    for (let i = 0; i < 50 && !flockPid; i++) {
      await Bun.sleep(50);
      flockPid = Number(Bun.spawnSync(["pgrep", "-f", `^flock -x ${lockFile}`]).stdout.toString().trim().split("\n")[0] || 0);
    }
    const sleepPid = Number(Bun.spawnSync(["pgrep", "-P", String(flockPid)]).stdout.toString().trim() || 0);
    try {
      writeFileSync(lockFile, `${flockPid}\narchive-push:async\n`);
      const stop = env.run(["stop", "--force"]);
      expect(stop.code).toBe(0);
      expect(stop.stdout).toContain(`sent term signal to process ${flockPid}`);
      expect(await holder.exited).not.toBe(0);
    } finally {
      if (sleepPid) process.kill(sleepPid);
      env.runOk(["start"]);
    }
  });
});

describe("encrypted repository (repo1-cipher-type=aes-256-cbc)", () => {
  const cipher = { "repo1-cipher-type": "aes-256-cbc", "repo1-cipher-pass": "correct horse battery staple" };

  test("pgbunker's encrypted stanza and WAL (sync and async) are read by pgbackrest, and the other way round", async () => {
    const ours = conf("enc-ours", { global: cipher });
    const theirs = conf("enc-theirs", { global: cipher });
    expect(ours.run(["stanza-create"]).code).toBe(0);
    expect(theirs.backrest(["stanza-create"]).code).toBe(0);
    for (const f of infoFiles(ours.repo)) expect(readFileSync(f).subarray(0, 8).toString()).toBe("Salted__");
    expect(JSON.parse(ours.backrest(["info", "--output=json"]).stdout)[0].cipher).toBe("aes-256-cbc");

    for (const [pusher, getter, name] of [[ours.run, ours.backrest, "000000010000000000000E01"], [theirs.backrest, theirs.run, "000000010000000000000E02"]] as const) {
      const src = join(work, name);
      copyFileSync(segFile, src);
      chownSync(src, PG_UID, PG_GID);
      const p = pusher(["archive-push", src]);
      expect(p.code).toBe(0);
      const out = join(work, `${name}.out`);
      expect(getter(["archive-get", name, out]).code).toBe(0);
      expect(sha1File(out)).toBe(sha1File(segFile));
    }
    // Asynchronous push (a worker per file) into the encrypted repository, read back by pgbackrest.
    const wal = mkdirAsPostgres(join(work, "enc-wal", "pg_wal"));
    mkdirAsPostgres(join(wal, "archive_status"));
    for (const n of ["000000010000000000000E03", "000000010000000000000E04"]) {
      copyFileSync(segFile, join(wal, n));
      chownSync(join(wal, n), PG_UID, PG_GID);
      writeFileSync(join(wal, "archive_status", `${n}.ready`), "");
    }
    const async = ours.run(["--archive-async", `--spool-path=${join(work, "enc-spool")}`, "--process-max=2", "archive-push", join(wal, "000000010000000000000E03")]);
    expect(async.stderr).toBe("");
    for (const n of ["000000010000000000000E03", "000000010000000000000E04"]) {
      const out = join(work, `${n}.out`);
      for (let i = 0; i < 100 && ours.backrest(["archive-get", n, out]).code !== 0; i++) await Bun.sleep(100);
      expect(sha1File(out)).toBe(sha1File(segFile));
    }
    // WAL is stored compressed then encrypted with archive.info's own passphrase.
    const stored = Bun.spawnSync(["find", join(ours.repo, "archive"), "-name", "000000010000000000000E01-*"]).stdout.toString().trim();
    expect(stored.endsWith(".lz4")).toBe(true);
    expect(readFileSync(stored).subarray(0, 8).toString()).toBe("Salted__");
  });

  test("a wrong passphrase is a clear error", () => {
    const wrong = conf("enc-ours-wrong", { global: { ...cipher, "repo1-cipher-pass": "not the passphrase", "repo1-path": join(work, "repo-enc-ours") } });
    const r = wrong.run(["archive-get", "000000010000000000000E01", join(work, "never")]);
    expect(r.code).toBe(103);
    expect(r.stderr).toContain("[CryptoError]");
    expect(r.stderr).toContain("wrong passphrase");
    expect(existsSync(join(work, "never"))).toBe(false);
  });
});
