/**
 * Which failure before the protocol starts gets which message, over the harness's real sshd: the
 * link dropping under a remote that has not greeted yet is the network's fault (HostConnectError,
 * check the network and sshd, job-retry retries it), while a remote command that really exits
 * keeps the ProtocolError that points at repo1-host-cmd.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { closeRemoteSessions, remoteSession, type RemoteTarget } from "../../src/protocol/connection.ts";
import { mkdirAsPostgres, tempDir } from "../harness/cluster.ts";
import { ensureBuilt } from "../harness/pgbunker.ts";
import { failure } from "../harness/failure.ts";
import { Sshd, TcpProxy } from "../harness/sshd.ts";

let sshd: Sshd;
let dir: string;

beforeAll(async () => {
  ensureBuilt();
  sshd = await Sshd.start();
  dir = mkdirAsPostgres(tempDir("pgbunker-handshake-"));
});

afterAll(async () => {
  await closeRemoteSessions();
  await sshd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A stand-in remote command (run by sshd as postgres). */
function script(name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

function target(port: number, cmd: string): RemoteTarget {
  return {
    ssh: { host: sshd.host, port, user: "postgres", keyFile: sshd.clientKey, knownHosts: sshd.knownHosts, keyCheck: "strict", connectTimeout: 10, option: "repo1-host" },
    role: "repo",
    index: 1,
    command: "test",
    cmd,
    config: { config: join(dir, "none.conf") },
    timeout: 60,
    fallback: {},
  };
}

describe("failures before the remote greets", () => {
  test("link cut while the remote is starting: HostConnectError about the network, with the job-retry hint", async () => {
    const started = join(dir, "started");
    // Signals that it runs (so the cut falls after SSH auth and exec), then never greets.
    const cmd = script("silent-remote", `touch '${started}'\nexec sleep 120`);
    const proxy = TcpProxy.start(sshd.port);
    sshd.trustPort(proxy.port);
    try {
      const pending = failure(remoteSession(target(proxy.port, cmd)));
      // Wait for the condition, not for a time: the remote command has started.
      for (let i = 0; i < 300 && !existsSync(started); i++) await Bun.sleep(50);
      expect(existsSync(started)).toBe(true);
      proxy.cut();
      const e = await pending;
      expect(e.kind).toBe("HostConnectError");
      expect(e.code).toBe(49);
      expect(e.message).toContain(`connection to 127.0.0.1:${proxy.port} lost during the SSH handshake with the pgbunker remote on repository host '127.0.0.1': `);
      expect(e.message).not.toContain("exited before the protocol started");
      const hints = e.hints.join("\n");
      expect(hints).toContain("check the network and sshd on 127.0.0.1");
      expect(hints).toContain("job-retry");
      expect(hints).not.toContain("repo1-host-cmd");
    } finally {
      proxy.stop();
    }
  });

  test("remote command exits before greeting: ProtocolError with its stderr, exit code and the repo1-host-cmd hint", async () => {
    const cmd = script("exiting-remote", "echo 'cannot start: no config' >&2\nexit 3");
    const e = await failure(remoteSession(target(sshd.port, cmd)));
    expect(e.kind).toBe("ProtocolError");
    expect(e.code).toBe(39);
    expect(e.message).toContain("pgbunker remote on repository host '127.0.0.1' exited before the protocol started: cannot start: no config (remote exit code 3)");
    expect(e.hints.join("\n")).toContain("check repo1-host-cmd");
  });
});
