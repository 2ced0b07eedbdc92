/**
 * The two topologies of remote operation, with the built binary on both ends and a real sshd in
 * between (test/harness/remote-env.ts): the backup host runs stanza-create, backup, expire, info
 * and verify against PostgreSQL on the database host; the database host runs archive-push,
 * archive-get and restore against the repository on the backup host.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sha1File, sha1OfStored } from "../harness/archive.ts";
import { encodeJson, FrameType } from "../../src/protocol/frame.ts";
import { Cluster, freePort, mkdirAsPostgres, PG_GID, PG_UID, runAsPostgres, spawnAsPostgres, SYSTEM_BIN } from "../harness/cluster.ts";
import { backupLabel, BINARY, writeConfig } from "../harness/pgbunker.ts";
import { RemoteEnv } from "../harness/remote-env.ts";
import { TcpProxy } from "../harness/sshd.ts";

let env: RemoteEnv;
const restored: Cluster[] = [];
let full = "";
let incr = "";
const TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history", "after_full"];
const sums: Record<string, string> = {};

beforeAll(async () => {
  env = await RemoteEnv.create();
});

afterAll(async () => {
  for (const c of restored) await c.destroy();
  await env?.destroy();
});

describe("backup host → database host", () => {
  test("stanza-create on the backup host reads pg_control and queries PostgreSQL through the remote", () => {
    const out = env.backupHostOk(["stanza-create"]);
    expect(out).toContain("stanza-create command end: completed successfully");
    const info = readFileSync(join(env.repo, "backup", env.stanza, "backup.info"), "utf8");
    expect(info).toContain(`"db-version":"${env.cluster.major}"`);
    // The backup host has no cluster of its own: everything it learned came over SSH.
    expect(existsSync(join(env.backupDir, "pg"))).toBe(false);
  });
});

describe("database host → backup host", () => {
  test("archive-push from archive_command stores every segment in the remote repository", async () => {
    env.cluster.pgbenchInit(3);
    const last = await env.switchAndWait();
    const segs = env.archived();
    expect(segs.has(last)).toBe(true);
    for (const [seg, file] of segs) expect(file).toContain(`${seg}-${sha1OfStored(file)}.lz4`);
    // Nothing half-written in the repository.
    const dir = join(env.repo, "archive", env.stanza, `${env.cluster.major}-1`, last.slice(0, 16));
    expect(readdirSync(dir).filter((f) => f.includes("tmp"))).toEqual([]);
    // The push log is on the database host; the repository host only ran remotes.
    expect(readFileSync(join(env.dbDir, "log", `${env.stanza}-archive-push.log`), "utf8")).toContain(`pushed WAL file '${last}' to the archive`);
  });

  test("archive-get from the database host returns byte-identical segments", () => {
    const segs = env.archived();
    const seg = [...segs.keys()].sort().at(-1)!;
    const out = join(env.dbDir, "out");
    mkdirSync(out, { recursive: true });
    chownSync(out, PG_UID, PG_GID);
    const dest = join(out, seg);
    const r = env.dbHostOk(["archive-get", seg, dest]);
    expect(r).toContain(`found ${seg} in the repo1: ${env.cluster.major}-1 archive`);
    expect(`${seg}-${sha1File(dest)}`).toBe(segs.get(seg)!.split("/").pop()!.replace(/\.lz4$/, ""));
    const missing = env.dbHost(["archive-get", "0000000100000000000000FE", join(out, "missing")]);
    expect(missing.code).toBe(1);
    expect(existsSync(join(out, "missing"))).toBe(false);
  });

  test("asynchronous archive-push (archive-async=y): the background archiver's workers reach the repository host", async () => {
    env.writeConfigs({ dbGlobal: { "archive-async": true, "process-max": 2 } });
    try {
      const segs: string[] = [];
      for (let i = 0; i < 3; i++) {
        await env.cluster.query("create table if not exists async_t (g int); insert into async_t select generate_series(1, 1000)");
        segs.push(await env.switchAndWait());
      }
      const stored = env.archived();
      for (const seg of segs) expect(stored.has(seg)).toBe(true);
      expect(readFileSync(join(env.dbDir, "log", `${env.stanza}-archive-push-async.log`), "utf8")).toContain(segs.at(-1)!);
    } finally {
      env.writeConfigs();
    }
  });

  test("check on the backup host: PostgreSQL switches WAL through the remote and the segment arrives", () => {
    const out = env.backupHostOk(["check"]);
    expect(out).toContain("check command end: completed successfully");
    expect(out).toMatch(/WAL segment [0-9A-F]{24} successfully archived/);
  });
});

describe("backup host: backups of the database host under load", () => {
  test("full backup under pgbench load, then incr: compressed on the database host, valid for pgBackRest", async () => {
    const bench = spawnAsPostgres([join(SYSTEM_BIN, "pgbench"), "-h", env.cluster.socketDir, "-p", String(env.cluster.port), "-U", "postgres", "-c", "2", "-T", "8", "postgres"]);
    await Bun.sleep(1000);
    const out = env.backupHostOk(["--type=full", "--process-max=2", "--start-fast", "backup"]);
    full = backupLabel(out);
    expect(full).toMatch(/F$/);
    expect(await bench.exited).toBe(0);
    // Each worker had its own session with the database host (main + 2 workers).
    const log = readFileSync(join(env.backupDir, "log", `${env.stanza}-backup.log`), "utf8");
    expect(log.match(/connected to the pgbunker remote on database host '127\.0\.0\.1'/g)?.length).toBeGreaterThanOrEqual(3);

    await env.cluster.query("create table after_full as select g, md5(g::text) as v from generate_series(1, 20000) g");
    const incrOut = env.backupHostOk(["--type=incr", "--start-fast", "backup"]);
    incr = backupLabel(incrOut);
    expect(incr).toMatch(new RegExp(`^${full}_\\d{8}-\\d{6}I$`));
    for (const t of TABLES) sums[t] = await env.cluster.tableChecksum(t);
    await env.cluster.query("select pg_create_restore_point('after_incr')");
    await env.switchAndWait();

    // pgBackRest (the oracle) reads what the backup host wrote: info lists both, verify passes.
    expect(env.backrestOk(["info"])).toContain(`incr backup: ${incr}`);
    expect(env.backrest(["verify"]).code).toBe(0);
  });

  test("info and expire on the backup host; info on the database host", () => {
    const info = env.backupHostOk(["info"]);
    expect(info).toContain(`full backup: ${full}`);
    expect(info).toContain(`incr backup: ${incr}`);
    env.backupHostOk(["expire", "--repo1-retention-full=1"]);
    expect(env.backupHostOk(["info"])).toContain(`incr backup: ${incr}`);
    // The database host sees the same through its repository host.
    const remoteInfo = JSON.parse(env.dbHostOk(["--log-level-console=warn", "info", "--output=json"]));
    expect(remoteInfo[0].backup.map((b: { label: string }) => b.label)).toEqual([full, incr]);
  });

  test("repo-ls, repo-get and annotate from the database host through the repository host: as on the backup host", () => {
    for (const args of [["repo-ls", "--recurse", "--output=json"], ["repo-ls", `backup/${env.stanza}`, "--sort=desc"], ["repo-get", `backup/${env.stanza}/${full}/backup.manifest`]]) {
      const remote = env.dbHost(args);
      expect({ args, code: remote.code, stderr: remote.stderr }).toEqual({ args, code: 0, stderr: "" });
      expect(remote.stdout).toBe(env.backupHostOk(args));
    }
    // Absolute paths are checked against the repository host's repo-path.
    expect(env.dbHostOk(["repo-ls", join(env.repo, "backup")])).toBe(`${env.stanza}\n`);
    env.dbHostOk([`--set=${full}`, "--annotation=via=repo-host", "annotate"]);
    expect(env.backupHostOk([`--set=${full}`, "info"])).toContain("annotation(s)\n                via: repo-host\n");
  });

  test("verify on the backup host, and from the database host through the repository host", () => {
    expect(env.backupHost(["verify"]).code).toBe(0);
    const remote = env.dbHost(["--process-max=2", "--output=text", "verify"]);
    expect({ code: remote.code, stderr: remote.stderr }).toEqual({ code: 0, stderr: "" });
    expect(remote.stdout).toMatch(/status: ok/);
  });
});

describe("database host: restore from the repository host", () => {
  test("restore with process-max=2 (a session per worker) to a named point: WAL through archive-get over SSH, data identical", async () => {
    const { cluster: c, out } = await env.restoreOnDbHost("restored", [`--set=${incr}`, "--type=name", "--target=after_incr", "--target-action=promote", "--process-max=2"]);
    expect(out).toContain(`restore backup set ${incr}`);
    const log = readFileSync(join(env.dbDir, "log", `${env.stanza}-restore.log`), "utf8");
    expect(log.match(/connected to the pgbunker remote on repository host '127\.0\.0\.1'/g)?.length).toBeGreaterThanOrEqual(3);
    for (const t of TABLES) expect(`${t} ${await c.tableChecksum(t)}`).toBe(`${t} ${sums[t]}`);
    // WAL replay fetched segments from the repository host (restore_command on the database host).
    expect(readFileSync(join(env.dbDir, "log", `${env.stanza}-archive-get.log`), "utf8")).toMatch(/found [0-9A-F]{24} in the repo1/);
    c.stop();
    expect(c.tool("pg_checksums", ["--check", "-D", c.dataDir]).stdout).toContain("Bad checksums:  0");
  });
});

describe("backup host: backup from a standby on a second database host", () => {
  test("replicated files come from the standby host, the rest from the primary host, both over SSH, bundled; the restore has the primary's data", async () => {
    // The standby "host": its own data directory and its own config (pg1-path is the standby there).
    const hostDir = mkdirAsPostgres(join(env.base, "standby-host"));
    for (const d of ["log", "lock"]) mkdirAsPostgres(join(hostDir, d));
    const dir = join(hostDir, "standby");
    const standby = await env.cluster.startStandby(dir);
    restored.push(standby);
    const standbyConf = join(hostDir, "pgbunker.conf");
    writeConfig(standbyConf, {
      global: { "log-path": join(hostDir, "log"), "lock-path": join(hostDir, "lock"), "log-level-file": "detail" },
      [env.stanza]: standby.pgOptions(1),
    });
    const conf = join(env.backupDir, "standby.conf");
    writeConfig(conf, {
      global: { "repo1-path": env.repo, "log-path": join(env.backupDir, "log"), "lock-path": join(env.backupDir, "lock"), "backup-standby": true, "start-fast": true },
      [env.stanza]: {
        ...env.sshd.hostOptions("pg1", BINARY, env.dbConf), "pg1-path": env.cluster.dataDir,
        ...env.sshd.hostOptions("pg2", BINARY, standbyConf), "pg2-path": dir,
      },
    });
    const out = RemoteEnv.ok(runAsPostgres([BINARY, `--config=${conf}`, `--stanza=${env.stanza}`, "--type=full", "--process-max=2", "--repo1-bundle", "--log-level-console=detail", "backup"], { cwd: env.backupDir }), "backup from standby");
    const label = backupLabel(out);
    expect(out).toMatch(/replay on the standby reached \S+/);
    const read = [...out.matchAll(/ backup file (\S+) \(/g)].map((m) => m[1]!);
    const fromStandby = read.filter((p) => p.startsWith(`127.0.0.1:${dir}/`));
    const fromPrimary = read.filter((p) => p.startsWith(`127.0.0.1:${env.cluster.dataDir}/`));
    expect(fromStandby.length + fromPrimary.length).toBe(read.length);
    expect(fromStandby.length).toBeGreaterThan(read.length * 0.9);
    expect(fromPrimary).toContain(`127.0.0.1:${env.cluster.dataDir}/global/pg_control`);
    // Bundled too (repo-bundle): the workers wrote bundles into the repository from both hosts' files.
    expect(readdirSync(join(env.repo, "backup", env.stanza, label, "bundle")).length).toBeGreaterThan(0);
    expect(env.backrest(["verify"]).code).toBe(0);

    const want: Record<string, string> = {};
    for (const t of TABLES) want[t] = await env.cluster.tableChecksum(t);
    const { cluster: c } = await env.restoreOnDbHost("restored-standby", [`--set=${label}`, "--type=immediate", "--target-action=promote"]);
    for (const t of TABLES) expect(`${t} ${await c.tableChecksum(t)}`).toBe(`${t} ${want[t]}`);
    c.stop();
    standby.stop();
  });
});

describe("backup host: the network fails mid-backup", () => {
  // Runnable on its own (-t "network fails"): the stanza, and more data than the cut threshold
  // below even compressed (so the cut always falls inside the copy). Idempotent in a full run.
  beforeAll(async () => {
    env.backupHostOk(["stanza-create"]);
    await env.cluster.query("create table if not exists net_cut as select g, decode(md5(g::text) || md5((-g)::text), 'hex') as v from generate_series(1, 300000) g");
    await env.cluster.query("checkpoint");
  }, 120_000);

  test("link to the database host dropped during the copy: the backup fails cleanly, a retry resumes and completes", async () => {
    // The proxy runs in this process: while it is up, only asynchronous spawns (a synchronous one
    // stops this event loop, and with it every connection through the proxy).
    const proxy = TcpProxy.start(env.sshd.port);
    env.sshd.trustPort(proxy.port);
    env.writeConfigs({ port: proxy.port });
    const before = env.labels();
    try {
      let ended = false;
      const running = env.backupHostAsync(["--type=full", "--process-max=2", "--start-fast", "--compress-type=gz", "--compress-level=6", "backup"]).finally(() => (ended = true));
      // Cut once the copy is well under way (compressed file data is flowing back); the cluster
      // holds more than that even compressed, so the backup cannot have ended first.
      while (proxy.downstream < 3 * 1024 * 1024 && !ended) await Bun.sleep(5);
      expect({ endedBeforeCut: ended }).toEqual({ endedBeforeCut: false });
      proxy.cut();
      const failed = await running;
      expect({ code: failed.code, stderr: failed.stderr }).toEqual({ code: 39, stderr: expect.any(String) });
      expect(failed.stderr).toMatch(/ERROR: \[039\]: .*connection to the pgbunker remote on database host '127\.0\.0\.1' was lost/);
    } finally {
      proxy.stop();
      env.writeConfigs();
    }
    // Nothing was added to the repository's list of backups: the partial one is not trusted.
    expect(env.labels()).toEqual(before);
    // PostgreSQL ended the backup with the session: a new one can start at once.
    const retry = env.backupHostOk(["--type=full", "--process-max=2", "--start-fast", "--compress-type=gz", "--compress-level=6", "backup"]);
    expect(retry).toContain("resumable backup");
    const label = backupLabel(retry);
    expect(env.backrest(["verify"]).code).toBe(0);
    expect(env.backrestOk(["info"])).toContain(`full backup: ${label}`);
  });
});

describe("bad remote settings, through the built binary: clear errors and pgBackRest exit codes", () => {
  test("unreachable host, refused key, unknown host key, wrong remote command, remote of another version, silent remote", async () => {
    const fake = join(env.base, "old-pgbunker");
    writeFileSync(join(env.base, "greeting.bin"), encodeJson(FrameType.GREETING, 0, { name: "pgbunker", version: "0.0.1", protocol: 1 }));
    writeFileSync(fake, `#!/bin/sh\ncat '${join(env.base, "greeting.bin")}'\nexec sleep 5\n`);
    const silent = join(env.base, "silent-pgbunker");
    writeFileSync(silent, "#!/bin/sh\nexec sleep 5\n");
    chmodSync(fake, 0o755);
    chmodSync(silent, 0o755);
    const emptyKnownHosts = join(env.base, "empty_known_hosts");
    writeFileSync(emptyKnownHosts, "");
    const cases: [string[], number, RegExp][] = [
      [[`--pg1-host-port=${await freePort()}`], 49, /unable to connect to postgres@127\.0\.0\.1:\d+: ECONNREFUSED/],
      [[`--pg1-host-key-file=${env.sshd.otherKey}`], 49, /unable to authenticate to postgres@127\.0\.0\.1:\d+: the server refused key/],
      [[`--pg1-host-known-hosts=${emptyKnownHosts}`], 49, /host key verification failed: '\[127\.0\.0\.1\]:\d+' \(ssh-ed25519 SHA256:/],
      [["--pg1-host-cmd=/no/such/pgbunker"], 39, /exited before the protocol started: .*\/no\/such\/pgbunker: No such file or directory[\s\S]*HINT: check pg1-host-cmd/],
      [[`--pg1-host-cmd=${fake}`], 39, /pgbunker remote on database host '127\.0\.0\.1' is version 0\.0\.1 \(protocol 1\), expected version/],
      [[`--pg1-host-cmd=${silent}`, "--protocol-timeout=1", "--db-timeout=0.5"], 66, /timed out after 1s waiting for the pgbunker remote on database host '127\.0\.0\.1' to start/],
    ];
    const fulls = () => readdirSync(join(env.repo, "backup", env.stanza)).filter((f) => /^\d{8}-\d{6}F$/.test(f)).sort();
    const before = fulls();
    for (const [args, code, message] of cases) {
      const r = env.backupHost([...args, "--type=full", "backup"]);
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.stderr).toMatch(message);
    }
    // None of these left a backup behind.
    expect(fulls()).toEqual(before);
  });
});
