/**
 * Where the built binary reads its configuration when told nothing, with a private /etc
 * (test/harness/private-etc.ts: a mount namespace with /etc overlaid, the host's untouched):
 * pgBackRest's /etc/pgbackrest/pgbackrest.conf + conf.d when /etc/pgbunker has nothing, its old
 * /etc/pgbackrest.conf, pgbunker's own home when present; check names the files it read. Also
 * through the binary: PGBACKREST_* environment variables, and host-type=tls refused.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { BINARY, pgbunker } from "../harness/pgbunker.ts";
import { runWithPrivateEtc } from "../harness/private-etc.ts";
import { StanzaEnv } from "../harness/stanza.ts";

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

describe("environment and refused values, through the binary", () => {
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

  test("repo1-host-type=tls / pg1-host-type=tls: FeatureNotSupportedError (067) before anything is done, naming where it was set", () => {
    const cli = pgbunker([`--config=${env.conf}`, stanza(), "--pg1-host=db", "--pg1-host-type=tls", "backup"]);
    expect(cli.code).toBe(67);
    expect(cli.stderr).toContain("ERROR: [067]: option 'pg1-host-type=tls' (command line) is not available: pgbunker has no TLS server yet, so it cannot connect over TLS");
    expect(cli.stderr).toContain("HINT: use ssh (the default");
    const fromEnv = pgbunker([`--config=${env.conf}`, stanza(), "info"], { env: { PGBACKREST_REPO1_HOST: "backup", PGBACKREST_REPO1_HOST_TYPE: "tls" } });
    expect(fromEnv.code).toBe(67);
    expect(fromEnv.stderr).toContain("option 'repo1-host-type=tls' (environment variable PGBACKREST_REPO1_HOST_TYPE) is not available");
    // Nothing was logged as begun: the command never started.
    expect(fromEnv.stdout).toBe("");
  });
});
