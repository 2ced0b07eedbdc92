/**
 * Where the built binary reads its configuration when told nothing, with a private /etc
 * (test/harness/private-etc.ts: a mount namespace with /etc overlaid, the host's untouched):
 * pgBackRest's /etc/pgbackrest/pgbackrest.conf + conf.d when /etc/pgbunker has nothing, its old
 * /etc/pgbackrest.conf, pgbunker's own home when present; check names the files it read. Also
 * through the binary: PGBACKREST_* environment variables, and host-type=tls taking the TLS path.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { freePort } from "../harness/cluster.ts";
import { BINARY, pgbunker } from "../harness/pgbunker.ts";
import { runWithPrivateEtc } from "../harness/private-etc.ts";
import { StanzaEnv } from "../harness/stanza.ts";
import { Certs } from "../harness/tls.ts";

let env: StanzaEnv;
/** The stanza's config file (repository, log, lock paths and pg1-*), to be placed in /etc. */
let conf: string;

beforeAll(async () => {
  env = await StanzaEnv.create();
  conf = readFileSync(env.conf, "utf8");
});

afterAll(async () => {
  await env?.destroy();
});

const stanza = () => `--stanza=${env.stanza}`;

describe("default configuration location (private /etc)", () => {
  test("no /etc/pgbunker: /etc/pgbackrest/pgbackrest.conf plus conf.d/*.conf; check says which files it read", () => {
    const r = runWithPrivateEtc(
      { "/etc/pgbackrest/pgbackrest.conf": conf, "/etc/pgbackrest/conf.d/10-db.conf": "[global]\ndb-timeout=1700\n" },
      [BINARY, stanza(), "--log-level-console=info", "check"],
    );
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout).toContain("INFO: configuration read from '/etc/pgbackrest/pgbackrest.conf', '/etc/pgbackrest/conf.d/10-db.conf'");
    // The include file's option was applied (the command-begin line lists options from files).
    expect(r.stdout).toMatch(/check command begin .*--db-timeout=1700/);
  });

  test("pgBackRest's old /etc/pgbackrest.conf when /etc/pgbackrest/pgbackrest.conf is missing", () => {
    const r = runWithPrivateEtc({ "/etc/pgbackrest.conf": conf }, [BINARY, stanza(), "--log-level-console=detail", "--output=text", "info"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`stanza: ${env.stanza}`);
    expect(r.stdout).toContain("DETAIL: configuration read from '/etc/pgbackrest.conf'");
  });

  test("/etc/pgbunker/pgbunker.conf present: it is the configuration and pgBackRest's is not read", () => {
    const r = runWithPrivateEtc(
      { "/etc/pgbunker/pgbunker.conf": conf, "/etc/pgbackrest/pgbackrest.conf": "[global]\nrepo1-path=/nonexistent/repo\n" },
      [BINARY, stanza(), "--log-level-console=info", "check"],
    );
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(r.stdout).toContain("INFO: configuration read from '/etc/pgbunker/pgbunker.conf'\n");
    // A conf.d alone also makes /etc/pgbunker the home: pgBackRest's file is then ignored.
    const d = runWithPrivateEtc(
      { "/etc/pgbunker/conf.d/main.conf": conf, "/etc/pgbackrest/pgbackrest.conf": "[global]\nrepo1-path=/nonexistent/repo\n" },
      [BINARY, stanza(), "--log-level-console=detail", "info"],
    );
    expect(d.code).toBe(0);
    expect(d.stdout).toContain("DETAIL: configuration read from '/etc/pgbunker/conf.d/main.conf'\n");
    expect(d.stdout).toContain(`stanza: ${env.stanza}`);
  });

  test("nothing anywhere: no file read, said so; an explicit --config that is missing is an error", () => {
    const none = runWithPrivateEtc({}, [BINARY, stanza(), `--repo1-path=${env.repo}`, "--log-level-console=detail", "info"]);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain("DETAIL: no configuration file read");
    const missing = runWithPrivateEtc({}, [BINARY, stanza(), "--config=/etc/pgbackrest/pgbackrest.conf", "info"]);
    expect(missing.code).toBe(55);
    expect(missing.stderr).toContain("ERROR: [055]: unable to open missing config file '/etc/pgbackrest/pgbackrest.conf'");
  });
});

describe("environment and host-type=tls, through the binary", () => {
  test("PGBACKREST_* variables configure a command; PGBUNKER_* wins over them", () => {
    const run = (vars: Record<string, string>) => pgbunker(["--no-config", stanza(), "--output=text", "info"], { env: vars });
    const theirs = run({ PGBACKREST_REPO1_PATH: env.repo });
    expect(theirs.code).toBe(0);
    expect(theirs.stdout).toContain(`stanza: ${env.stanza}`);
    const both = run({ PGBACKREST_REPO1_PATH: env.repo, PGBUNKER_REPO1_PATH: `${env.base}/nothing-here` });
    expect(both.stdout).toContain("status: error (missing stanza path)");
    // PGBACKREST_CONFIG names the file (the config location options come from the environment too).
    const byFile = pgbunker([stanza(), "--output=text", "info"], { env: { PGBACKREST_CONFIG: env.conf } });
    expect(byFile.stdout).toContain(`stanza: ${env.stanza}`);
  });

  test("repo1-host-type=tls / pg1-host-type=tls from the command line or PGBACKREST_* take the TLS path: its options required, then a TLS connection", async () => {
    const cli = pgbunker([`--config=${env.conf}`, stanza(), "--pg1-host=127.0.0.1", "--pg1-host-type=tls", "backup"]);
    expect(cli.code).toBe(37);
    expect(cli.stderr).toContain("ERROR: [037]: pg1-host-type=tls requires option: pg1-host-cert-file");
    // From the environment: a certificate that is not PEM is refused before connecting...
    const repoLs = (over: Record<string, string>) => pgbunker([`--config=${env.conf}`, stanza(), "repo-ls"], { env: { PGBACKREST_REPO1_HOST: "127.0.0.1", PGBACKREST_REPO1_HOST_TYPE: "tls", ...over } });
    const notPem = repoLs({ PGBACKREST_REPO1_HOST_CERT_FILE: env.conf, PGBACKREST_REPO1_HOST_KEY_FILE: env.conf });
    expect(notPem.code).toBe(28);
    expect(notPem.stderr).toContain("ERROR: [028]: unable to use the TLS files of repo1-host (repo1-host-cert-file, -key-file, -ca-file/-ca-path)");
    // ...and a real one leads to a TLS connection on the port named (nothing listens there).
    const certs = Certs.make();
    try {
      const client = certs.client("db");
      const port = await freePort();
      const refused = repoLs({ PGBACKREST_REPO1_HOST_PORT: String(port), PGBACKREST_REPO1_HOST_CERT_FILE: client.cert, PGBACKREST_REPO1_HOST_KEY_FILE: client.key });
      expect(refused.code).toBe(49);
      expect(refused.stderr).toContain(`unable to connect to 127.0.0.1:${port} over TLS: ECONNREFUSED`);
      expect(refused.stderr).toContain("HINT: check that 'pgbunker server' runs on 127.0.0.1");
    } finally {
      certs.remove();
    }
  });
});
