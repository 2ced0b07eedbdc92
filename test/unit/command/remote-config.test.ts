/**
 * How a command's configuration becomes a remote target (what the other host is told), and how
 * the remote combines its own configuration with what the caller sent.
 */
import { expect, test } from "bun:test";
import { remoteConfig } from "../../../src/command/remote/remote.ts";
import { remoteTarget } from "../../../src/command/shared/remote-factory.ts";
import { parseConfigText } from "../../../src/config/ini-config.ts";
import { parseConfig } from "../../../src/config/parse.ts";
import { remoteArgv } from "../../../src/protocol/connection.ts";
import { shellQuote } from "../../../src/protocol/ssh.ts";

function cfgOf(ini: string, argv: string[]) {
  return parseConfig({ argv, env: {}, configSections: parseConfigText(ini, "test.conf") });
}

test("backup host: pg1-host target with defaults, explicit remote config only when set, pg fallbacks", () => {
  const cfg = cfgOf("[demo]\npg1-host=db1\npg1-path=/data/15/main\npg1-port=5433\n", ["--stanza=demo", "backup"]);
  const t = remoteTarget(cfg, "pg", 1);
  expect(t.ssh).toMatchObject({ host: "db1", port: 22, user: "postgres", keyCheck: "strict", option: "pg1-host" });
  expect(t.ssh?.keyFile).toBeUndefined();
  expect(t.ssh?.knownHosts).toBeUndefined();
  expect(t.config).toEqual({ config: undefined, configIncludePath: undefined, configPath: undefined });
  expect(t.fallback).toMatchObject({ path: "/data/15/main", port: "5433", database: "postgres" });
  expect(t).toMatchObject({ role: "pg", index: 1, stanza: "demo", command: "backup", cmd: process.execPath });
  expect(remoteArgv(t)).toEqual([process.execPath, "--stanza=demo", "--remote-type=pg", "--log-level-console=off", "--log-level-stderr=error", "remote"]);
  // Plain data: it travels to worker threads.
  expect(JSON.parse(JSON.stringify(t))).toEqual(JSON.parse(JSON.stringify(t)));
});

test("database host: repo1-host target with every SSH option set", () => {
  const cfg = cfgOf(
    [
      "[global]", "repo1-host=backup.example.com", "repo1-host-port=2222", "repo1-host-user=pgbackrest", "repo1-host-cmd=/opt/pgbunker/bin/pgbunker",
      "repo1-host-config=/etc/pgbunker/repo.conf", "repo1-host-key-file=/var/lib/postgresql/.ssh/backup_key", "repo1-host-known-hosts=/etc/pgbunker/known_hosts",
      "repo1-host-key-check=accept-new", "protocol-timeout=120", "[demo]", "pg1-path=/data",
    ].join("\n"),
    ["--stanza=demo", "archive-push", "pg_wal/000000010000000000000001"],
  );
  const t = remoteTarget(cfg, "repo", 1);
  expect(t.ssh).toEqual({
    host: "backup.example.com", port: 2222, user: "pgbackrest", keyFile: "/var/lib/postgresql/.ssh/backup_key", knownHosts: "/etc/pgbunker/known_hosts",
    keyCheck: "accept-new", connectTimeout: 60, option: "repo1-host",
  });
  expect(t.timeout).toBe(120);
  expect(t.fallback).toEqual({});
  expect(remoteArgv(t)).toEqual(["/opt/pgbunker/bin/pgbunker", "--config=/etc/pgbunker/repo.conf", "--stanza=demo", "--remote-type=repo", "--log-level-console=off", "--log-level-stderr=error", "remote"]);
});

test("the remote prefers its own configuration; the caller's pg values fill the gaps; no host options survive", () => {
  const own = cfgOf("[demo]\npg1-path=/own/data\npg1-socket-path=/own/run\npg1-host=loop\n", ["--stanza=demo", "--remote-type=pg", "remote"]);
  const local = remoteConfig(own, { command: "backup", fallback: { path: "/caller/data", port: "5433", user: "backup" } });
  expect(local.command).toBe("backup");
  expect(local.str("pg1-path")).toBe("/own/data");
  expect(local.str("pg1-socket-path")).toBe("/own/run");
  expect(local.str("pg1-port")).toBe("5433");
  expect(local.str("pg1-user")).toBe("backup");
  expect(local.has("pg1-host")).toBe(false);
});

test("words for the remote shell are quoted only when needed", () => {
  expect(shellQuote("/usr/bin/pgbunker")).toBe("/usr/bin/pgbunker");
  expect(shellQuote("--config=/etc/pg bunker/x.conf")).toBe("'--config=/etc/pg bunker/x.conf'");
  expect(shellQuote("it's")).toBe("'it'\\''s'");
  expect(shellQuote("$(rm -rf /)")).toBe("'$(rm -rf /)'");
});

test("tls: the target names the certificate files and the CA, port 8432 by default; a missing certificate is a clear error", () => {
  const cfg = cfgOf(
    ["[global]", "repo1-host=backup.example.com", "repo1-host-type=tls", "repo1-host-cert-file=/etc/pgbunker/db1.crt", "repo1-host-key-file=/etc/pgbunker/db1.key", "repo1-host-ca-file=/etc/pgbunker/ca.crt", "[demo]", "pg1-path=/data"].join("\n"),
    ["--stanza=demo", "archive-push", "pg_wal/000000010000000000000001"],
  );
  const t = remoteTarget(cfg, "repo", 1);
  expect(t.ssh).toBeUndefined();
  expect(t.tls).toEqual({ host: "backup.example.com", port: 8432, certFile: "/etc/pgbunker/db1.crt", keyFile: "/etc/pgbunker/db1.key", caFile: "/etc/pgbunker/ca.crt", caPath: undefined, connectTimeout: 60, option: "repo1-host" });
  const noCert = cfgOf("[demo]\npg1-host=db1\npg1-host-type=tls\npg1-host-port=9000\npg1-path=/data\n", ["--stanza=demo", "backup"]);
  let e: unknown;
  try {
    remoteTarget(noCert, "pg", 1);
  } catch (x) {
    e = x;
  }
  expect(e).toMatchObject({ kind: "OptionRequiredError", message: "pg1-host-type=tls requires option: pg1-host-cert-file" });
});
