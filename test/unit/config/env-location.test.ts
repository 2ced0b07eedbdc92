/**
 * Environment variables (PGBUNKER_* and pgBackRest's PGBACKREST_*), where the configuration is
 * read from (pgbunker's home, else pgBackRest's, with its /etc/pgbackrest.conf fallback), and
 * values pgbunker refuses (host-type=tls). Default homes are looked for under a scratch
 * directory standing in for /etc; the real /etc is covered by test/integration/config-location.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfigText } from "../../../src/config/ini-config.ts";
import { configLocation } from "../../../src/config/location.ts";
import { helpText } from "../../../src/config/help.ts";
import { parseConfig } from "../../../src/config/parse.ts";
import { thrown } from "../../harness/failure.ts";
import { scratchDirs } from "../../harness/scratch.ts";

const scratch = scratchDirs("pgb-env-loc-");
const none = new Map();

function put(path: string, text: string): void {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text);
}

describe("environment: PGBACKREST_* as well as PGBUNKER_*", () => {
  const backup = ["--stanza=s", "backup"];

  test("PGBACKREST_ options are read with pgBackRest's rules: indexed names, y/n, lists on ':'", () => {
    const cfg = parseConfig({
      argv: backup,
      configSections: none,
      env: { PGBACKREST_REPO2_PATH: "/r2", PGBACKREST_PG1_PATH: "/pg", PGBACKREST_START_FAST: "y", PGBACKREST_DELTA: "n", PGBACKREST_EXCLUDE: "a/:b/", PGBACKREST_PROCESS_MAX: "3" },
    });
    expect(cfg.str("repo2-path")).toBe("/r2");
    expect(cfg.source("repo2-path")).toBe("env");
    expect(cfg.str("pg1-path")).toBe("/pg");
    expect(cfg.bool("start-fast")).toBe(true);
    expect(cfg.bool("delta")).toBe(false);
    expect(cfg.source("delta")).toBe("env");
    expect(cfg.list("exclude")).toEqual(["a/", "b/"]);
    expect(cfg.num("process-max")).toBe(3);
  });

  test("PGBUNKER_ wins over PGBACKREST_ for the same option, also under another name (REPO_PATH = REPO1_PATH, DB_PATH = PG1_PATH)", () => {
    const cfg = parseConfig({
      argv: backup,
      configSections: none,
      env: { PGBACKREST_PROCESS_MAX: "3", PGBUNKER_PROCESS_MAX: "5", PGBACKREST_REPO1_PATH: "/theirs", PGBUNKER_REPO_PATH: "/ours", PGBACKREST_PG1_PATH: "/pg-theirs", PGBUNKER_DB_PATH: "/pg-ours" },
    });
    expect(cfg.num("process-max")).toBe(5);
    expect(cfg.str("repo1-path")).toBe("/ours");
    expect(cfg.str("pg1-path")).toBe("/pg-ours");
    // The command line beats both; the environment beats the config file.
    const sections = parseConfigText("[global]\nprocess-max=7\ncompress-level=4\n", "t.conf");
    const cli = parseConfig({ argv: ["--process-max=8", ...backup], configSections: sections, env: { PGBACKREST_PROCESS_MAX: "3", PGBACKREST_COMPRESS_LEVEL: "2", PGBACKREST_PG1_PATH: "/pg" } });
    expect(cli.num("process-max")).toBe(8);
    expect(cli.num("compress-level")).toBe(2);
  });

  test("bad values name the variable: empty, boolean not y/n, out of range; options of other commands are skipped", () => {
    const run = (env: Record<string, string>) => thrown(() => parseConfig({ argv: backup, configSections: none, env: { PGBACKREST_PG1_PATH: "/pg", ...env } }));
    const empty = run({ PGBACKREST_PROCESS_MAX: "" });
    expect([empty.kind, empty.code, empty.message]).toEqual(["OptionInvalidValueError", 32, "environment variable PGBACKREST_PROCESS_MAX must have a value"]);
    const bool = run({ PGBACKREST_START_FAST: "yes" });
    expect(bool.message).toBe("environment variable PGBACKREST_START_FAST (boolean option 'start-fast') must be 'y' or 'n'");
    expect(bool.hints).toEqual(["found 'yes'."]);
    expect(run({ PGBUNKER_PROCESS_MAX: "0" }).message).toBe("'0' is out of range for 'process-max' option");
    // target is a restore option: ignored for backup, as pgBackRest does.
    expect(parseConfig({ argv: backup, configSections: none, env: { PGBACKREST_PG1_PATH: "/pg", PGBACKREST_TARGET: "x" } }).has("target")).toBe(false);
  });

  test("secure options come from PGBACKREST_ (never the command line)", () => {
    const cfg = parseConfig({ argv: ["--stanza=s", "info"], configSections: none, env: { PGBACKREST_REPO1_CIPHER_PASS: "secret", PGBACKREST_REPO1_CIPHER_TYPE: "aes-256-cbc" } });
    expect(cfg.str("repo1-cipher-pass")).toBe("secret");
    expect(cfg.describe()).toContain("--repo1-cipher-pass=<redacted>");
  });

  test("PGBACKREST_CONFIG / CONFIG_PATH / CONFIG_INCLUDE_PATH locate the configuration (and must exist when named)", () => {
    const dir = scratch();
    put(join(dir, "main.conf"), "[global]\nprocess-max=2\n");
    put(join(dir, "inc/a.conf"), "[global]\ncompress-level=7\n");
    put(join(dir, "base/pgbackrest.conf"), "[global]\nprocess-max=4\n");
    const byFile = parseConfig({ argv: backup, env: { PGBACKREST_PG1_PATH: "/pg", PGBACKREST_CONFIG: join(dir, "main.conf"), PGBACKREST_CONFIG_INCLUDE_PATH: join(dir, "inc") } });
    expect([byFile.num("process-max"), byFile.num("compress-level")]).toEqual([2, 7]);
    expect(byFile.configFiles).toEqual([join(dir, "main.conf"), join(dir, "inc/a.conf")]);
    const byPath = parseConfig({ argv: backup, env: { PGBACKREST_PG1_PATH: "/pg", PGBACKREST_CONFIG_PATH: join(dir, "base") } });
    expect(byPath.num("process-max")).toBe(4);
    expect(byPath.configFiles).toEqual([join(dir, "base/pgbackrest.conf")]);
    const missing = thrown(() => parseConfig({ argv: backup, env: { PGBACKREST_CONFIG: join(dir, "nope.conf") } }));
    expect([missing.kind, missing.message]).toEqual(["FileMissingError", `unable to open missing config file '${join(dir, "nope.conf")}'`]);
    expect(thrown(() => parseConfig({ argv: backup, env: { PGBACKREST_CONFIG_INCLUDE_PATH: join(dir, "nope") } })).kind).toBe("PathMissingError");
  });
});

describe("config location: pgbunker's home, else pgBackRest's", () => {
  const loc = (given: Partial<Parameters<typeof configLocation>[0]>, etc: string) => configLocation({ configNegated: false, ...given }, etc);

  test("no pgbunker home: /etc/pgbackrest/pgbackrest.conf (then the old /etc/pgbackrest.conf) plus /etc/pgbackrest/conf.d", () => {
    const etc = scratch();
    expect(loc({}, etc)).toEqual({ files: [`${etc}/pgbackrest/pgbackrest.conf`, `${etc}/pgbackrest.conf`], fileRequired: false, includePath: `${etc}/pgbackrest/conf.d`, includeRequired: false });
    // Read through parseConfig: only the old file exists, then the new one (which wins), then conf.d.
    put(`${etc}/pgbackrest.conf`, "[global]\nprocess-max=2\n");
    const argv = ["--stanza=s", "--pg1-path=/p", "backup"];
    expect(parseConfig({ argv, etc }).num("process-max")).toBe(2);
    put(`${etc}/pgbackrest/pgbackrest.conf`, "[global]\nprocess-max=3\n");
    put(`${etc}/pgbackrest/conf.d/z.conf`, "[global]\ncompress-level=9\n");
    const cfg = parseConfig({ argv, etc });
    expect([cfg.num("process-max"), cfg.num("compress-level")]).toEqual([3, 9]);
    expect(cfg.configFiles).toEqual([`${etc}/pgbackrest/pgbackrest.conf`, `${etc}/pgbackrest/conf.d/z.conf`]);
  });

  test("a pgbunker.conf or a conf.d in /etc/pgbunker makes pgbunker's home the default, and pgBackRest's is not read", () => {
    const etc = scratch();
    put(`${etc}/pgbackrest/pgbackrest.conf`, "[global]\nprocess-max=3\n");
    put(`${etc}/pgbunker/conf.d/a.conf`, "[global]\ncompress-level=5\n");
    expect(loc({}, etc)).toEqual({ files: [`${etc}/pgbunker/pgbunker.conf`], fileRequired: false, includePath: `${etc}/pgbunker/conf.d`, includeRequired: false });
    const cfg = parseConfig({ argv: ["--stanza=s", "--pg1-path=/p", "backup"], etc });
    expect([cfg.num("process-max"), cfg.num("compress-level")]).toEqual([1, 5]);
    expect(cfg.configFiles).toEqual([`${etc}/pgbunker/conf.d/a.conf`]);
  });

  test("help of the config options states the defaults and the rules", () => {
    const help = helpText("t", ["check", "config"]);
    expect(help).toContain("default: /etc/pgbunker/pgbunker.conf when it or /etc/pgbunker/conf.d exists, else /etc/pgbackrest/pgbackrest.conf (or the older /etc/pgbackrest.conf)");
    expect(help).toContain("--config alone reads no include directory");
    expect(helpText("t", ["check"])).toMatch(/--config-path +Base directory .*\(default: \/etc\/pgbunker, else \/etc\/pgbackrest\)/);
    expect(helpText("t", ["backup", "pg1-host-type"])).toContain("[default: ssh, allowed: ssh, tls]");
  });

  test("pgBackRest's combinations of --config, --config-path, --config-include-path and --no-config", () => {
    const etc = scratch();
    const theirs = `${etc}/pgbackrest`;
    // --config alone: that file, required; no include directory.
    expect(loc({ config: "/x.conf" }, etc)).toEqual({ files: ["/x.conf"], fileRequired: true, includePath: undefined, includeRequired: false });
    // --config-path: its pgbunker.conf or pgbackrest.conf and conf.d, optional; no old-file fallback.
    expect(loc({ configPath: "/d" }, etc)).toEqual({ files: ["/d/pgbunker.conf", "/d/pgbackrest.conf"], fileRequired: false, includePath: "/d/conf.d", includeRequired: false });
    // --config with --config-path: the file required, DIR/conf.d optional.
    expect(loc({ config: "/x.conf", configPath: "/d" }, etc)).toMatchObject({ files: ["/x.conf"], fileRequired: true, includePath: "/d/conf.d", includeRequired: false });
    // --config-include-path alone: the directory required, the default file optional.
    expect(loc({ includePath: "/i" }, etc)).toEqual({ files: [`${theirs}/pgbackrest.conf`, `${etc}/pgbackrest.conf`], fileRequired: false, includePath: "/i", includeRequired: true });
    // --no-config: nothing, unless an include directory is named or implied by --config-path.
    expect(loc({ configNegated: true }, etc)).toEqual({ files: [], fileRequired: false, includePath: undefined, includeRequired: false });
    expect(loc({ configNegated: true, configPath: "/d" }, etc)).toMatchObject({ files: [], includePath: "/d/conf.d", includeRequired: false });
    expect(loc({ configNegated: true, includePath: "/i" }, etc)).toMatchObject({ files: [], includePath: "/i", includeRequired: true });
  });
});

describe("repoN-host-type / pgN-host-type = tls, wherever it is set", () => {
  test("accepted from the command line, the environment and a config file; the TLS options and server options parse", () => {
    const cli = parseConfig({ argv: ["--stanza=s", "--pg1-path=/p", "--pg1-host=db", "--pg1-host-type=tls", "--pg1-host-cert-file=/c", "backup"], configSections: none });
    expect([cli.str("pg1-host-type"), cli.str("pg1-host-cert-file")]).toEqual(["tls", "/c"]);
    const env = parseConfig({ argv: ["--stanza=s", "info"], configSections: none, env: { PGBACKREST_REPO2_HOST_TYPE: "tls", PGBACKREST_REPO2_HOST_CA_PATH: "/etc/ssl/certs" } });
    expect([env.str("repo2-host-type"), env.str("repo2-host-ca-path")]).toEqual(["tls", "/etc/ssl/certs"]);
    const sections = parseConfigText("[global]\nrepo1-host=backup\nrepo1-host-type=tls\ntls-server-auth=db1=a,b\ntls-server-auth=db2=*\ntls-server-cert-file=/s.crt\ntls-server-key-file=/s.key\ntls-server-ca-file=/ca.crt\n", "/etc/pgbackrest/pgbackrest.conf");
    expect(parseConfig({ argv: ["--stanza=s", "info"], configSections: sections }).str("repo1-host-type")).toBe("tls");
    const server = parseConfig({ argv: ["server"], configSections: sections });
    expect(server.hash("tls-server-auth")).toEqual({ db1: "a,b", db2: "*" });
    expect([server.str("tls-server-address"), server.num("tls-server-port")]).toEqual(["localhost", 8432]);
    const missing = thrown(() => parseConfig({ argv: ["server"], configSections: none }));
    expect([missing.kind, missing.message]).toEqual(["OptionRequiredError", expect.stringContaining("tls-server-")]);
  });
});

describe("job-retry and job-retry-interval", () => {
  test("pgBackRest's defaults (2, archive commands 1; 15 s) and ranges", () => {
    const backup = parseConfig({ argv: ["--stanza=s", "--pg1-path=/p", "backup"], configSections: none });
    expect([backup.num("job-retry"), backup.num("job-retry-interval")]).toEqual([2, 15]);
    expect(parseConfig({ argv: ["--stanza=s", "--pg1-path=/p", "archive-push", "/w"], configSections: none }).num("job-retry")).toBe(1);
    expect(thrown(() => parseConfig({ argv: ["--stanza=s", "--pg1-path=/p", "--job-retry=361", "backup"], configSections: none })).kind).toBe("OptionInvalidValueError");
    expect(thrown(() => parseConfig({ argv: ["--stanza=s", "--pg1-path=/p", "--job-retry-interval=901", "backup"], configSections: none })).kind).toBe("OptionInvalidValueError");
    expect(thrown(() => parseConfig({ argv: ["--stanza=s", "--job-retry=1", "info"], configSections: none })).kind).toBe("OptionInvalidError");
  });
});
