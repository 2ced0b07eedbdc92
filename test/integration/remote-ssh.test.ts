/**
 * The remote storage driver over a real OpenSSH sshd on 127.0.0.1 and the built executable as
 * `pgbunker remote`: the storage conformance suite, then what goes wrong in real deployments
 * (refused key, unknown or changed host key, nothing listening, wrong remote command, a remote
 * of another version, a remote that never answers) must fail with a clear error and exit code.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dbConnect } from "../../src/command/shared/db.ts";
import { openStorage, storagePg, storageSpec } from "../../src/command/shared/storage.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { readPgControl } from "../../src/postgres/control.ts";
import { backupStart, backupStop, pgInfo } from "../../src/postgres/queries.ts";
import { closeRemoteSessions, remoteSession, type RemoteTarget } from "../../src/protocol/connection.ts";
import { encodeJson, FrameType } from "../../src/protocol/frame.ts";
import { RemoteDriver } from "../../src/storage/remote/remote.ts";
import { Storage } from "../../src/storage/storage.ts";
import { VERSION } from "../../src/version.ts";
import { storageConformance, testBytes } from "../conformance/storage.ts";
import { Cluster, freePort, mkdirAsPostgres, tempDir } from "../harness/cluster.ts";
import { BINARY, ensureBuilt, pgbunker, writeConfig } from "../harness/pgbunker.ts";
import { Sshd, TcpProxy } from "../harness/sshd.ts";
import { failure } from "../harness/failure.ts";

let sshd: Sshd;
let dir: string;
let remoteConf: string;

beforeAll(async () => {
  ensureBuilt();
  sshd = await Sshd.start();
  dir = tempDir("pgbunker-remote-");
  remoteConf = writeConfig(join(dir, "remote.conf"), { global: { "repo1-path": mkdirAsPostgres(join(dir, "repo")), "log-path": dir, "lock-path": dir } });
});

afterAll(async () => {
  await closeRemoteSessions();
  await sshd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function target(over: Partial<RemoteTarget["ssh"]> = {}, rest: Partial<RemoteTarget> = {}): RemoteTarget {
  return {
    ssh: { host: sshd.host, port: sshd.port, user: "postgres", keyFile: sshd.clientKey, knownHosts: sshd.knownHosts, keyCheck: "strict", connectTimeout: 10, option: "repo1-host", ...over },
    role: "repo",
    index: 1,
    command: "test",
    cmd: BINARY,
    config: { config: remoteConf },
    timeout: 30,
    fallback: {},
    ...rest,
  };
}

storageConformance("remote over a real sshd", async () => {
  const session = await remoteSession(target());
  const sub = `conformance-${Date.now()}`;
  const storage = new Storage(new RemoteDriver(session.client, session.open.features), `${session.open.base}/${sub}`);
  await storage.pathCreate("");
  return { storage, cleanup: async () => rmSync(join(dir, "repo", sub), { recursive: true, force: true }) };
});

describe("remote over ssh: what goes wrong", () => {
  test("the remote serves its own repo1-path and runs as the ssh user", async () => {
    const s = await remoteSession(target({}, { index: 1 }));
    expect(s.open.base).toBe(join(dir, "repo"));
    const storage = new Storage(new RemoteDriver(s.client, s.open.features), s.open.base);
    await storage.put("owned", "x");
    expect((await storage.info("owned"))!.user).toBe("postgres");
  });

  test("a key the server does not accept: HostConnectError naming the key and what to do", async () => {
    const e = await failure(remoteSession(target({ keyFile: sshd.otherKey })));
    expect(e.kind).toBe("HostConnectError");
    expect(e.code).toBe(49);
    expect(e.message).toContain(`unable to authenticate to postgres@127.0.0.1:${sshd.port}: the server refused key '${sshd.otherKey}'`);
    expect(e.hints.join("\n")).toContain(`${sshd.otherKey}.pub`);
  });

  test("unknown host key refused (strict); accept-new records it; a changed key is refused", async () => {
    const kh = join(dir, "known_hosts_test");
    writeFileSync(kh, "");
    const unknown = await failure(remoteSession(target({ knownHosts: kh })));
    expect(unknown.kind).toBe("HostConnectError");
    expect(unknown.message).toMatch(/host key verification failed: '\[127\.0\.0\.1\]:\d+' \(ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}\) is not in/);
    expect(unknown.hints.join("\n")).toContain("repo1-host-key-check=accept-new");

    const s = await remoteSession(target({ knownHosts: kh, keyCheck: "accept-new" }, { stanza: "accept-new" }));
    expect(s.client.alive).toBe(true);
    expect(readFileSync(kh, "utf8")).toBe(readFileSync(sshd.knownHosts, "utf8"));

    // Same host and port, another key: someone in between, or a reinstalled host.
    const other = readFileSync(`${sshd.otherKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
    writeFileSync(kh, `[127.0.0.1]:${sshd.port} ${other}\n`);
    const changed = await failure(remoteSession(target({ knownHosts: kh, keyCheck: "accept-new" }, { stanza: "changed" })));
    expect(changed.kind).toBe("HostConnectError");
    expect(changed.message).toContain("differs from the key in");
    expect(changed.hints.join("\n")).toContain(`ssh-keygen -R '[127.0.0.1]:${sshd.port}'`);
  });

  test("nothing listening: HostConnectError", async () => {
    const e = await failure(remoteSession(target({ port: await freePort() })));
    expect(e.kind).toBe("HostConnectError");
    expect(e.message).toMatch(/unable to connect to postgres@127\.0\.0\.1:\d+: ECONNREFUSED/);
  });

  test("wrong remote command path: ProtocolError with the shell's message and the option to fix", async () => {
    const e = await failure(remoteSession(target({}, { cmd: "/nonexistent/pgbunker" })));
    expect(e.kind).toBe("ProtocolError");
    expect(e.message).toContain("exited before the protocol started");
    expect(e.message).toContain("/nonexistent/pgbunker: No such file or directory");
    expect(e.message).toContain("exit code 127");
    expect(e.hints.join()).toContain("repo1-host-cmd");
  });

  test("a remote of another version: ProtocolError naming both versions", async () => {
    // A stand-in remote that greets as pgbunker 0.0.1 and then waits.
    const greeting = join(dir, "greeting.bin");
    writeFileSync(greeting, encodeJson(FrameType.GREETING, 0, { name: "pgbunker", version: "0.0.1", protocol: 1 }));
    const fake = join(dir, "old-pgbunker");
    writeFileSync(fake, `#!/bin/sh\ncat '${greeting}'\nexec sleep 5\n`);
    chmodSync(fake, 0o755);
    const e = await failure(remoteSession(target({}, { cmd: fake })));
    expect(e.kind).toBe("ProtocolError");
    expect(e.code).toBe(39);
    expect(e.message).toContain(`is version 0.0.1 (protocol 1), expected version ${VERSION}`);
  });

  test("a remote that never answers: ProtocolTimeoutError after protocol-timeout", async () => {
    const silent = join(dir, "silent");
    writeFileSync(silent, "#!/bin/sh\nexec sleep 5\n");
    chmodSync(silent, 0o755);
    const t0 = performance.now();
    const e = await failure(remoteSession(target({}, { cmd: silent, timeout: 1 })));
    expect(e.kind).toBe("ProtocolTimeoutError");
    expect(e.code).toBe(66);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  test("pgbunker remote run by hand refuses", () => {
    const r = pgbunker(["remote"]);
    expect(r.code).toBe(37);
    expect(r.stderr).toContain("remote command requires option: remote-type");
  });
});

describe("remote over ssh: the network fails under a running transfer", () => {
  test("link dropped mid-write: ProtocolError at once, the remote removes the partial file, the next session works", async () => {
    const proxy = TcpProxy.start(sshd.port);
    sshd.trustPort(proxy.port);
    try {
      const s = await remoteSession(target({ port: proxy.port }, { stanza: "drop" }));
      const storage = new Storage(new RemoteDriver(s.client, s.open.features), s.open.base);
      const w = await storage.openWrite("dropped/file");
      await w.write(testBytes(4 * 1024 * 1024));
      proxy.cut();
      const t0 = performance.now();
      const e = await failure((async () => {
        for (;;) await w.write(testBytes(1024 * 1024));
      })());
      expect(e.kind).toBe("ProtocolError");
      expect(e.message).toContain("connection to the pgbunker remote on repository host '127.0.0.1' was lost");
      expect(performance.now() - t0).toBeLessThan(5000);
      // The remote noticed too and withdrew the temp file: nothing anyone would trust.
      const dirPath = join(dir, "repo", "dropped");
      for (let i = 0; i < 50 && readdirSync(dirPath).length > 0; i++) await Bun.sleep(100);
      expect(readdirSync(dirPath)).toEqual([]);
      // A new session (the broken one is not reused).
      const again = await remoteSession(target({ port: proxy.port }, { stanza: "drop" }));
      expect(again.client).not.toBe(s.client);
      expect(again.client.alive).toBe(true);
    } finally {
      proxy.stop();
    }
  });

  test("remote killed by a signal mid-write: the temp file is removed, the client gets ProtocolError", async () => {
    const s = await remoteSession(target({}, { stanza: "killed" }));
    const storage = new Storage(new RemoteDriver(s.client, s.open.features), s.open.base);
    const w = await storage.openWrite("killed/file");
    await w.write(testBytes(2 * 1024 * 1024));
    await storage.exists("killed"); // a round trip: the data has been written remotely
    expect(readdirSync(join(dir, "repo", "killed"))).toEqual(["file.pgbunker.tmp"]);
    process.kill(s.client.greeting.pid!, "SIGTERM");
    const e = await failure((async () => {
      for (;;) await w.write(testBytes(1024 * 1024));
    })());
    expect(e.kind).toBe("ProtocolError");
    expect(e.message).toContain("terminated on signal [SIGTERM]");
    expect(readdirSync(join(dir, "repo", "killed"))).toEqual([]);
  });

  test("link goes silent mid-read: ProtocolTimeoutError after protocol-timeout, not a hang", async () => {
    const proxy = TcpProxy.start(sshd.port);
    sshd.trustPort(proxy.port);
    try {
      // Written through a direct session (fsync of a large file may take longer than 1s here).
      const direct = await remoteSession(target());
      await new Storage(new RemoteDriver(direct.client, direct.open.features), direct.open.base).put("silent-big", testBytes(32 * 1024 * 1024));
      const s = await remoteSession(target({ port: proxy.port }, { stanza: "silent", timeout: 1 }));
      const storage = new Storage(new RemoteDriver(s.client, s.open.features), s.open.base);
      const r = (await storage.openRead("silent-big"))!;
      await r.read();
      proxy.freeze();
      const t0 = performance.now();
      const e = await failure((async () => {
        while ((await r.read()) !== null);
      })());
      expect(e.kind).toBe("ProtocolTimeoutError");
      expect(performance.now() - t0).toBeLessThan(6000);
    } finally {
      proxy.stop();
    }
  });
});

describe("database host over ssh", () => {
  test("storagePg and dbConnect of a pg1-host config: pg_control, queries, backup start/stop on one session", async () => {
    const cluster = await Cluster.create();
    try {
      cluster.start();
      // The database host's own config knows the cluster; the backup host's names only the host.
      const dbConf = writeConfig(join(dir, "db.conf"), { demo: { "pg1-path": cluster.dataDir, "pg1-socket-path": cluster.socketDir, "pg1-port": cluster.port } });
      const backupConf = writeConfig(join(dir, "backup.conf"), {
        global: { "repo1-path": join(dir, "repo"), "lock-path": dir, "log-path": dir },
        demo: { ...sshd.hostOptions("pg1", BINARY, dbConf), "pg1-path": "/ignored/by/the/remote" },
      });
      const cfg = parseConfig({ argv: [`--config=${backupConf}`, "--stanza=demo", "check"], env: {} });
      const pg = await storagePg(cfg, 1, { readOnly: true });
      expect(pg.base).toBe(cluster.dataDir);
      const control = await readPgControl(pg);
      expect(control.systemId).toBeGreaterThan(0n);
      expect(new TextDecoder().decode((await pg.get("PG_VERSION"))!).trim()).toBe(String(cluster.major));

      const db = await dbConnect(cfg, 1);
      expect(db.description).toContain(`on database host '127.0.0.1'`);
      const info = await pgInfo(db);
      expect(info.dataDirectory).toBe(cluster.dataDir);
      const start = await backupStart(db, cluster.major, "remote test", true);
      // Another query in between on the same session, then stop: only one session can stop it.
      expect((await db.query("select 1 as one"))[0]!.one).toBe("1");
      const stop = await backupStop(db, cluster.major);
      expect(stop.lsn).toBeGreaterThanOrEqual(start.lsn);
      expect(stop.backupLabel).toContain("LABEL: remote test");
      await db.close();

      // A worker opens the same storage from its description: its own session.
      const spec = storageSpec(cfg, "pg", 1, true);
      expect(spec.kind).toBe("remote");
      expect(JSON.parse(JSON.stringify(spec))).toEqual(spec);
      const again = await openStorage(spec);
      expect(await again.exists("global/pg_control")).toBe(true);
    } finally {
      await cluster.destroy();
    }
  });
});
