/**
 * Remote operation over TLS: each host runs `pgbunker server` (test/harness/remote-env.ts with
 * transport "tls", certificates made with openssl), no sshd anywhere. The backup host runs
 * stanza-create, backup, expire, info and verify against PostgreSQL on the database host; the
 * database host runs archive-push (sync and async), info and restore (PITR) against the
 * repository on the backup host. Then what must be refused (wrong CA, expired certificate, CN
 * not authorised, no TLS), the server killed mid-backup, two clients at once, SIGHUP and SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { closeRemoteSessions, remoteSession, type RemoteTarget } from "../../src/protocol/connection.ts";
import { RemoteDriver } from "../../src/storage/remote/remote.ts";
import { Storage } from "../../src/storage/storage.ts";
import { storageConformance } from "../conformance/storage.ts";
import { sha1File, sha1OfStored } from "../harness/archive.ts";
import { freePort, mkdirAsPostgres, runAsPostgres } from "../harness/cluster.ts";
import { BINARY, backupLabel } from "../harness/pgbunker.ts";
import { RemoteEnv, type TlsLink } from "../harness/remote-env.ts";
import { TcpProxy } from "../harness/sshd.ts";

let env: RemoteEnv;
let tls: TlsLink;
let full = "";
let incr = "";
const TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history", "after_full"];
const sums: Record<string, string> = {};

beforeAll(async () => {
  env = await RemoteEnv.create({ transport: "tls" });
  tls = env.tls!;
});

afterAll(async () => {
  await closeRemoteSessions();
  await env?.destroy();
});

/** The servers' log files (written synchronously, unlike their piped console). */
const dbServerLog = () => readFileSync(join(env.dbDir, "log", "all-server.log"), "utf8");
const backupServerLog = () => readFileSync(join(env.backupDir, "log", "all-server.log"), "utf8");

/** An in-test client of the backup host's server, as the database host (CN db-host) reaches it. */
function repoTarget(over: Partial<NonNullable<RemoteTarget["tls"]>> = {}): RemoteTarget {
  return {
    tls: { host: "127.0.0.1", port: tls.backupPort, certFile: tls.dbClient.cert, keyFile: tls.dbClient.key, caFile: tls.certs.ca, connectTimeout: 10, option: "repo1-host", ...over },
    role: "repo", index: 1, stanza: env.stanza, command: "test", cmd: BINARY, config: {}, timeout: 30, fallback: {},
  };
}

describe("TLS: backup host → database host", () => {
  test("stanza-create on the backup host reads pg_control and queries PostgreSQL through the database host's server", () => {
    const out = env.backupHostOk(["stanza-create"]);
    expect(out).toContain("stanza-create command end: completed successfully");
    const info = readFileSync(join(env.repo, "backup", env.stanza, "backup.info"), "utf8");
    expect(info).toContain(`"db-version":"${env.cluster.major}"`);
    // The server logged who connected, for which stanza and command.
    expect(dbServerLog()).toMatch(/INFO: client 'backup-host' from 127\.0\.0\.1:\d+: stanza-create on stanza 'demo', serving the database/);
  });
});

describe("TLS: database host → backup host", () => {
  test("archive-push from archive_command stores every segment in the repository on the backup host", async () => {
    env.cluster.pgbenchInit(2);
    const last = await env.switchAndWait();
    const segs = env.archived();
    expect(segs.has(last)).toBe(true);
    for (const [seg, file] of segs) expect(file).toContain(`${seg}-${sha1OfStored(file)}.lz4`);
    const dir = join(env.archiveIdDir(), last.slice(0, 16));
    expect(readdirSync(dir).filter((f) => f.includes("tmp"))).toEqual([]);
    expect(backupServerLog()).toMatch(/client 'db-host' from 127\.0\.0\.1:\d+: archive-push on stanza 'demo', serving the repository \(repo1\)/);
  });

  test("asynchronous archive-push: the background archiver's workers reach the backup host's server", async () => {
    env.writeConfigs({ dbGlobal: { "archive-async": true, "process-max": 2 } });
    try {
      const segs: string[] = [];
      for (let i = 0; i < 2; i++) {
        await env.cluster.query("create table if not exists async_t (g int); insert into async_t select generate_series(1, 1000)");
        segs.push(await env.switchAndWait());
      }
      const stored = env.archived();
      for (const seg of segs) expect(sha1OfStored(stored.get(seg)!)).toBe(stored.get(seg)!.split("/").pop()!.slice(25, 65));
      expect(readFileSync(join(env.dbDir, "log", `${env.stanza}-archive-push-async.log`), "utf8")).toContain(segs.at(-1)!);
    } finally {
      env.writeConfigs();
    }
  });

  test("archive-get through the server returns byte-identical segments", () => {
    const segs = env.archived();
    const seg = [...segs.keys()].sort().at(-1)!;
    const out = mkdirAsPostgres(join(env.dbDir, "out"));
    env.dbHostOk(["archive-get", seg, join(out, seg)]);
    expect(`${seg}-${sha1File(join(out, seg))}`).toBe(segs.get(seg)!.split("/").pop()!.replace(/\.lz4$/, ""));
  });
});

describe("TLS: backups, info, expire, verify", () => {
  test("full (process-max=2, a connection per worker) then incr; pgBackRest verifies what was written", async () => {
    const out = env.backupHostOk(["--type=full", "--process-max=2", "--start-fast", "backup"]);
    full = backupLabel(out);
    const log = readFileSync(join(env.backupDir, "log", `${env.stanza}-backup.log`), "utf8");
    expect(log.match(/connected to the pgbunker remote on database host '127\.0\.0\.1'/g)?.length).toBeGreaterThanOrEqual(3);

    await env.cluster.query("create table after_full as select g, md5(g::text) as v from generate_series(1, 20000) g");
    const incrOut = env.backupHostOk(["--type=incr", "--start-fast", "backup"]);
    incr = backupLabel(incrOut);
    expect(incr).toMatch(new RegExp(`^${full}_\\d{8}-\\d{6}I$`));
    for (const t of TABLES) sums[t] = await env.cluster.tableChecksum(t);
    await env.cluster.query("select pg_create_restore_point('after_incr')");
    // Written after the restore point: PITR must leave it out.
    await env.cluster.query("create table too_late as select 1 as x");
    await env.switchAndWait();
    expect(env.backrestOk(["info"])).toContain(`incr backup: ${incr}`);
    expect(env.backrest(["verify"]).code).toBe(0);
  });

  test("info and expire on the backup host; info and verify from the database host through the server", () => {
    env.backupHostOk(["expire", "--repo1-retention-full=1"]);
    expect(env.labels()).toEqual([full, incr]);
    const remoteInfo = JSON.parse(env.dbHostOk(["--log-level-console=warn", "info", "--output=json"]));
    expect(remoteInfo[0].backup.map((b: { label: string }) => b.label)).toEqual([full, incr]);
    const remote = env.dbHost(["--process-max=2", "--output=text", "verify"]);
    expect({ code: remote.code, stderr: remote.stderr }).toEqual({ code: 0, stderr: "" });
    expect(remote.stdout).toMatch(/status: ok/);
  });
});

describe("TLS: restore on the database host", () => {
  test("restore (process-max=2) to a named restore point: WAL through archive-get over TLS, data identical, later table absent", async () => {
    const { cluster: c } = await env.restoreOnDbHost("restored", [`--set=${incr}`, "--type=name", "--target=after_incr", "--target-action=promote", "--process-max=2"]);
    for (const t of TABLES) expect(`${t} ${await c.tableChecksum(t)}`).toBe(`${t} ${sums[t]}`);
    expect(await c.scalar("select count(*) from pg_class where relname = 'too_late'")).toBe("0");
    expect(readFileSync(join(env.dbDir, "log", `${env.stanza}-archive-get.log`), "utf8")).toMatch(/found [0-9A-F]{24} in the repo1/);
    c.stop();
  });
});

storageConformance("remote over TLS (pgbunker server)", async () => {
  const session = await remoteSession(repoTarget());
  const sub = `conformance-${crypto.randomUUID()}`;
  const storage = new Storage(new RemoteDriver(session.client, session.open.features), `${session.open.base}/${sub}`);
  await storage.pathCreate("");
  return { storage, cleanup: async () => rmSync(join(env.repo, sub), { recursive: true, force: true }) };
});

describe("TLS: refused, with clear errors and nothing written", () => {
  test("wrong CA on either side, expired or unauthorised client certificate, missing certificate, nothing listening, not TLS", async () => {
    const otherCa = tls.certs.client("backup-host", { by: "other-ca" });
    const expired = tls.certs.client("backup-host", { expired: true });
    const intruder = tls.certs.client("intruder");
    // A plain TCP service where the client expects TLS.
    const plainPort = await freePort();
    const plain = Bun.listen({ hostname: "127.0.0.1", port: plainPort, socket: { open(s) { s.write("SSH-2.0-OpenSSH_9.2\r\n"); }, data() {} } });
    const cases: [string[], number, RegExp][] = [
      [[`--pg1-host-ca-file=${tls.certs.otherCa}`], 49, /unable to connect to 127\.0\.0\.1:\d+ over TLS: the server's certificate is not trusted[\s\S]*HINT: pg1-host-ca-file/],
      [[`--pg1-host-cert-file=${otherCa.cert}`, `--pg1-host-key-file=${otherCa.key}`], 105, /access denied: the certificate of client 'backup-host' is not trusted \([A-Z_]+\)[\s\S]*HINT: it must be signed by a CA in tls-server-ca-file/],
      [[`--pg1-host-cert-file=${expired.cert}`, `--pg1-host-key-file=${expired.key}`], 105, /is not trusted \(CERT_HAS_EXPIRED\)/],
      [[`--pg1-host-cert-file=${intruder.cert}`, `--pg1-host-key-file=${intruder.key}`], 105, /access denied: client 'intruder' is not authorized for stanza 'demo'[\s\S]*HINT: to allow it, add tls-server-auth=intruder=demo/],
      [["--reset-pg1-host-cert-file"], 37, /pg1-host-type=tls requires option: pg1-host-cert-file/],
      [[`--pg1-host-port=${await freePort()}`], 49, /unable to connect to 127\.0\.0\.1:\d+ over TLS: ECONNREFUSED/],
      [[`--pg1-host-port=${plainPort}`], 49, /unable to connect to 127\.0\.0\.1:\d+ over TLS: the server does not speak TLS \(ERR_SSL_WRONG_VERSION_NUMBER/],
    ];
    const before = env.labels();
    try {
      for (const [args, code, message] of cases) {
        // Asynchronously: the plain TCP service runs in this process.
        const r = await env.backupHostAsync([...args, "--type=full", "backup"]);
        expect({ args, code: r.code, stderr: r.stderr }).toMatchObject({ args, code, stderr: expect.stringMatching(message) });
      }
    } finally {
      plain.stop(true);
    }
    expect(env.labels()).toEqual(before);
    expect(readdirSync(join(env.repo, "backup", env.stanza)).filter((f) => /^\d{8}-\d{6}F$/.test(f)).sort()).toEqual([full]);
    expect(dbServerLog()).toContain("refused client 127.0.0.1:");
  });

  test("a plain TCP client gets no session; the server goes on serving (server-ping answers, a backup-host command works)", async () => {
    const closed = new Promise<void>((resolve) => {
      void Bun.connect({ hostname: "127.0.0.1", port: tls.dbPort, socket: { open(s) { s.write("GET / HTTP/1.0\r\n\r\n"); }, data() {}, close() { resolve(); }, error() { resolve(); } } });
    });
    await closed;
    expect(dbServerLog()).toMatch(/TLS handshake with 127\.0\.0\.1:\d+ failed/);
    const ping = runAsPostgres([BINARY, `--tls-server-port=${tls.dbPort}`, "--log-level-console=info", "server-ping", "127.0.0.1"]);
    expect(ping.stdout).toMatch(/pgbunker server on 127\.0\.0\.1:\d+ answered/);
    expect(ping.code).toBe(0);
    const dead = runAsPostgres([BINARY, `--tls-server-port=${await freePort()}`, "server-ping", "127.0.0.1"]);
    expect(dead.code).toBe(49);
    expect(dead.stderr).toMatch(/ECONNREFUSED[\s\S]*HINT: check that 'pgbunker server' runs on 127\.0\.0\.1/);
    expect(env.backupHostOk(["check"])).toContain("check command end: completed successfully");
  });
});

describe("TLS: the database host's server dies mid-backup", () => {
  test("killed during the copy: the backup fails cleanly; with the server back, the next backup resumes and completes", async () => {
    const proxy = TcpProxy.start(tls.dbPort);
    env.writeConfigs({ port: proxy.port });
    try {
      const before = env.labels();
      const args = ["--type=full", "--process-max=2", "--start-fast", "--compress-type=gz", "--compress-level=6", "--job-retry-interval=0", "backup"];
      const running = env.backupHostAsync(args);
      const deadline = Date.now() + 60_000;
      while (proxy.downstream < 3 * 1024 * 1024 && Date.now() < deadline) await Bun.sleep(5);
      tls.dbServer!.signal("SIGKILL");
      const failed = await running;
      expect([39, 49]).toContain(failed.code);
      expect(failed.stderr).toMatch(/ERROR: \[0(39|49)\]: (.*was lost|unable to connect to 127\.0\.0\.1:\d+ over TLS)/);
      expect(env.labels()).toEqual(before);
      await tls.dbServer!.restart();
      env.writeConfigs();
      const retry = env.backupHostOk(args);
      expect(retry).toContain("resumable backup");
      const label = backupLabel(retry);
      expect(env.backrest(["verify"]).code).toBe(0);
      expect(env.backrestOk(["info"])).toContain(`full backup: ${label}`);
    } finally {
      proxy.stop();
      env.writeConfigs();
    }
  });
});

describe("TLS: the server's life", () => {
  test("two clients at once: an open session reads a file while another client's commands run on the same server", async () => {
    // A fresh session: a cached one went idle past protocol-timeout while this process waited.
    await closeRemoteSessions();
    const a = await remoteSession(repoTarget());
    const storage = new Storage(new RemoteDriver(a.client, a.open.features), a.open.base);
    const manifest = `backup/${env.stanza}/${full}/backup.manifest`;
    // While session A is open, the database host (client B) runs its own commands on the server.
    const verify = env.dbHost(["--process-max=2", "--output=text", "verify"]);
    expect(verify.stdout).toMatch(/status: ok/);
    const bytes = (await storage.get(manifest))!;
    expect(new Bun.CryptoHasher("sha1").update(bytes).digest("hex")).toBe(sha1File(join(env.repo, manifest)));
    expect(a.client.alive).toBe(true);
  });

  test("SIGHUP re-reads tls-server-auth: a CN refused before is served after", async () => {
    const late = tls.certs.client("late-client");
    const target = repoTarget({ certFile: late.cert, keyFile: late.key });
    await expect(remoteSession(target)).rejects.toThrow(/client 'late-client' is not authorized for stanza 'demo'/);
    const conf = readFileSync(env.backupConf, "utf8").replace(/^tls-server-auth=.*$/m, (line) => `${line}\ntls-server-auth=late-client=other,${env.stanza}`);
    writeFileSync(env.backupConf, conf);
    tls.backupServer!.signal("SIGHUP");
    const deadline = Date.now() + 20_000;
    while (!backupServerLog().includes("configuration reloaded (SIGHUP)") && Date.now() < deadline) await Bun.sleep(20);
    const s = await remoteSession(target);
    expect((await new Storage(new RemoteDriver(s.client, s.open.features), s.open.base).list(`backup/${env.stanza}`))!.map((e) => e.name)).toContain(full);
    env.writeConfigs();
  });

  test("SIGTERM: no new connections, the running session is served to its end, then the server exits 0", async () => {
    const a = await remoteSession(repoTarget());
    const storage = new Storage(new RemoteDriver(a.client, a.open.features), a.open.base);
    tls.backupServer!.signal("SIGTERM");
    const deadline = Date.now() + 20_000;
    while (!backupServerLog().includes("SIGTERM: no longer accepting connections; waiting for") && Date.now() < deadline) await Bun.sleep(20);
    expect(backupServerLog()).toMatch(/waiting for [1-9]\d* running session/);
    // Still served after the signal.
    const info = (await storage.get(`backup/${env.stanza}/backup.info`))!;
    expect(new TextDecoder().decode(info)).toContain(`${full}=`);
    const refused = runAsPostgres([BINARY, `--tls-server-port=${tls.backupPort}`, "server-ping", "127.0.0.1"]);
    expect(refused.code).toBe(49);
    await closeRemoteSessions();
    expect(await tls.backupServer!.exited()).toBe(0);
    expect(backupServerLog()).toContain("server command end: completed successfully");
  });
});

