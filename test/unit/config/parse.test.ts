import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfigText } from "../../../src/config/ini-config.ts";
import { parseConfig } from "../../../src/config/parse.ts";
import type { OptionName } from "../../../src/config/options.ts";
import { helpText } from "../../../src/config/help.ts";
import type { PgbError } from "../../../src/common/error.ts";
import { thrown } from "../../harness/failure.ts";
import { scratchDirs } from "../../harness/scratch.ts";

const scratch = scratchDirs("pgb-conf-");
const conf = (text: string) => parseConfigText(text, "test.conf");

describe("config: sources and precedence", () => {
  const sections = conf(`
[global]
repo1-path=/var/lib/backup
process-max=2
compress-level=3
log-level-console=info
start-fast=n

[global:backup]
process-max=3

[demo]
pg1-path=/data/demo
process-max=4

[demo:backup]
start-fast=y
`);

  test("command line > env > [stanza:cmd] > [stanza] > [global:cmd] > [global] > default", () => {
    const cfg = parseConfig({ argv: ["--stanza=demo", "backup"], configSections: sections, env: {} });
    expect(cfg.num("process-max")).toBe(4); // [demo] beats [global:backup]
    expect(cfg.bool("start-fast")).toBe(true); // [demo:backup]
    expect(cfg.str("repo1-path")).toBe("/var/lib/backup");
    expect(cfg.source("repo1-path")).toBe("config");
    expect(cfg.str("compress-type")).toBe("lz4"); // default
    expect(cfg.source("compress-type")).toBe("default");

    const env = parseConfig({ argv: ["--stanza=demo", "backup"], configSections: sections, env: { PGBUNKER_PROCESS_MAX: "6", PGBUNKER_START_FAST: "n" } });
    expect(env.num("process-max")).toBe(6);
    expect(env.bool("start-fast")).toBe(false);

    const cli = parseConfig({ argv: ["--stanza=demo", "--process-max=8", "--no-start-fast", "backup"], configSections: sections, env: { PGBUNKER_PROCESS_MAX: "6" } });
    expect(cli.num("process-max")).toBe(8);
    expect(cli.bool("start-fast")).toBe(false);
  });

  test("[global:COMMAND] applies only to that command", () => {
    const other = conf("[global]\nprocess-max=2\n[global:backup]\nprocess-max=3\n");
    expect(parseConfig({ argv: ["--stanza=x", "--pg1-path=/p", "backup"], configSections: other }).num("process-max")).toBe(3);
    expect(parseConfig({ argv: ["--stanza=x", "--pg1-path=/p", "restore"], configSections: other }).num("process-max")).toBe(2);
  });

  test("--reset-OPTION ignores the config file value", () => {
    const cfg = parseConfig({ argv: ["--stanza=demo", "--reset-process-max", "backup"], configSections: sections });
    expect(cfg.num("process-max")).toBe(1);
  });

  test("indexed options: repoN-/pgN-, unindexed alias means index 1", () => {
    const c = conf("[global]\nrepo1-path=/r1\nrepo2-path=/r2\nrepo2-retention-full=3\n[demo]\npg1-path=/d1\npg2-path=/d2\npg2-port=5433\n");
    const cfg = parseConfig({ argv: ["--stanza=demo", "--repo=2", "backup"], configSections: c });
    expect(cfg.indexes("repo")).toEqual([1, 2]);
    expect(cfg.indexes("pg")).toEqual([1, 2]);
    expect(cfg.repoIndex).toBe(2);
    expect(cfg.str(cfg.repoKey("repo-path"))).toBe("/r2");
    expect(cfg.num("repo2-retention-full")).toBe(3);
    expect(cfg.num("pg1-port")).toBe(5432); // default per index
    expect(cfg.num("pg2-port")).toBe(5433);
    const alias = parseConfig({ argv: ["--stanza=demo", "--repo-path=/x", "--pg-path=/y", "backup"], configSections: new Map() });
    expect(alias.str("repo1-path")).toBe("/x");
    expect(alias.str("pg1-path")).toBe("/y");
  });

  test("a pgBackRest config file parses unchanged (spaces, comments, lists, deprecated names)", () => {
    const c = conf(`
# pgBackRest style config
[global]
repo1-path = /var/lib/pgbackrest
repo1-retention-full=2
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=zWaf6XtpjIVZC5444yXB+cgFDFl7MxGlgkZSaoPvTGirhPygu4jOKOXf9LO4vjfO
log-level-file=detail
start-fast=y
exclude=junk/
exclude=tmp/

[global:archive-push]
compress-level=3

[main]
db-path=/var/lib/postgresql/15/main
pg1-socket-path=/var/run/postgresql
recovery-option=primary_conninfo=host=db
recovery-option=recovery_min_apply_delay=5min
`);
    const cfg = parseConfig({ argv: ["--stanza=main", "backup"], configSections: c });
    expect(cfg.str("repo1-path")).toBe("/var/lib/pgbackrest");
    expect(cfg.str("pg1-path")).toBe("/var/lib/postgresql/15/main");
    expect(cfg.list("exclude")).toEqual(["junk/", "tmp/"]);
    expect(cfg.str("repo1-cipher-pass")).toStartWith("zWaf6");
    expect(cfg.describe()).toContain("--repo1-cipher-pass=<redacted>");
    expect(cfg.describe()).not.toContain("zWaf6");
    const r = parseConfig({ argv: ["--stanza=main", "restore"], configSections: c });
    expect(r.hash("recovery-option")).toEqual({ primary_conninfo: "host=db", recovery_min_apply_delay: "5min" });
  });

  test("config files from --config and --config-include-path, --no-config", () => {
    const dir = scratch();
    writeFileSync(join(dir, "main.conf"), "[global]\nprocess-max=2\n");
    mkdirSync(join(dir, "conf.d"));
    writeFileSync(join(dir, "conf.d/b.conf"), "[global]\ncompress-level=7\n");
    writeFileSync(join(dir, "conf.d/ignored.txt"), "[global]\ncompress-level=1\n");
    const cfg = parseConfig({ argv: [`--config=${dir}/main.conf`, `--config-include-path=${dir}/conf.d`, "--stanza=s", "--pg1-path=/p", "backup"] });
    expect(cfg.num("process-max")).toBe(2);
    expect(cfg.num("compress-level")).toBe(7);
    writeFileSync(join(dir, "pgbunker.conf"), "[global]\nprocess-max=5\n");
    expect(parseConfig({ argv: [`--config-path=${dir}`, "--stanza=s", "--pg1-path=/p", "backup"] }).num("process-max")).toBe(5);
    expect(parseConfig({ argv: [`--config-path=${dir}`, "--no-config", "--stanza=s", "--pg1-path=/p", "backup"] }).num("process-max")).toBe(1);
    const e = thrown(() => parseConfig({ argv: [`--config=${dir}/missing.conf`, "info"] }));
    expect(e.kind).toBe("FileMissingError");
  });
});

describe("config: errors", () => {
  const none = new Map();
  const cases: [string[], string, RegExp][] = [
    [["--bogus", "info"], "OptionInvalidError", /invalid option '--bogus'/],
    [["bogus"], "CommandInvalidError", /invalid command 'bogus'/],
    [["--set=x", "--stanza=s", "--pg1-path=/p", "backup"], "OptionInvalidError", /option 'set' not valid for command 'backup'/],
    [["--repo1-cipher-pass=x", "info"], "OptionInvalidError", /not allowed on the command-line/],
    [["--process-max=abc", "--stanza=s", "--pg1-path=/p", "backup"], "OptionInvalidValueError", /'abc' is not valid for 'process-max'/],
    [["--process-max=0", "--stanza=s", "--pg1-path=/p", "backup"], "OptionInvalidValueError", /out of range/],
    [["--io-timeout=0.01", "info"], "OptionInvalidValueError", /out of range/],
    [["--buffer-size=3MiB", "info"], "OptionInvalidValueError", /not allowed/],
    [["--output=xml", "info"], "OptionInvalidValueError", /not allowed/],
    [["--log-level-console=loud", "info"], "OptionInvalidValueError", /not allowed/],
    [["--stanza=a", "--stanza=b", "info"], "OptionInvalidError", /cannot be set multiple times/],
    [["--no-log-timestamp", "--log-timestamp", "info"], "OptionInvalidError", /cannot be set and negated/],
    [["--no-process-max", "info"], "OptionInvalidError", /cannot be negated|not valid/],
    [["backup"], "OptionRequiredError", /backup command requires option: stanza/],
    [["--stanza=s", "backup"], "OptionRequiredError", /requires option: pg1-path/],
    [["--repo-path=relative", "info"], "OptionInvalidValueError", /'relative' is not valid/],
    [["--repo300-path=/x", "info"], "OptionInvalidError", /invalid option/],
    [["--target=x", "--stanza=s", "--pg1-path=/p", "restore"], "OptionInvalidError", /not valid without option 'type'/],
    [["--type=immediate", "--target-timeline=2", "--stanza=s", "--pg1-path=/p", "restore"], "OptionInvalidError", /'target-timeline' not valid without option 'type' in \('default', 'lsn'/],
    [["--type=none", "--recovery-option=a=b", "--stanza=s", "--pg1-path=/p", "restore"], "OptionInvalidError", /'recovery-option' not valid without option 'type'/],
    [["--type=bogus", "--stanza=s", "--pg1-path=/p", "restore"], "OptionInvalidValueError", /not allowed/],
  ];
  for (const [argv, kind, msg] of cases) {
    test(`${argv.join(" ")} → ${kind}`, () => {
      const e = thrown(() => parseConfig({ argv, configSections: none }));
      expect(e.kind).toBe(kind as PgbError["kind"]);
      expect(e.message).toMatch(msg);
    });
  }

  test("exit codes follow pgBackRest's numbering", () => {
    expect(thrown(() => parseConfig({ argv: ["--bogus", "info"], configSections: none })).code).toBe(31);
    expect(thrown(() => parseConfig({ argv: ["--io-timeout=x", "info"], configSections: none })).code).toBe(32);
    expect(thrown(() => parseConfig({ argv: ["backup"], configSections: none })).code).toBe(37);
    expect(thrown(() => parseConfig({ argv: ["nope"], configSections: none })).code).toBe(48);
  });

  test("config file: bad boolean, duplicate key, garbage line", () => {
    expect(thrown(() => parseConfig({ argv: ["info"], configSections: conf("[global]\nlog-timestamp=yes\n") })).message).toMatch(/must be 'y' or 'n'/);
    expect(thrown(() => parseConfig({ argv: ["info"], configSections: conf("[global]\nbuffer-size=1MiB\nbuffer-size=2MiB\n") })).message).toMatch(/cannot be set multiple times/);
    expect(() => conf("[global]\nthis is not an option\n")).toThrow(/expected key=value/);
    expect(() => conf("process-max=1\n")).toThrow(/outside any section/);
  });

  test("targets with type: accepted when the type needs one", () => {
    const cfg = parseConfig({ argv: ["--stanza=s", "--pg1-path=/p", "--type=time", "--target=2024-01-01 00:00:00", "--target-action=promote", "restore"], configSections: none });
    expect(cfg.str("target")).toBe("2024-01-01 00:00:00");
    expect(cfg.str("target-action")).toBe("promote");
  });

  test("sizes and times", () => {
    const cfg = parseConfig({ argv: ["--archive-get-queue-max=1GB", "--archive-timeout=1.5", "--stanza=s", "--pg1-path=/p", "archive-get"], configSections: none });
    expect(cfg.num("archive-get-queue-max")).toBe(1024 ** 3);
    expect(cfg.num("archive-timeout")).toBe(1.5);
  });
});

describe("help", () => {
  test("main, command and option help come from the table", () => {
    expect(helpText("1.0", [])).toContain("archive-push");
    const backup = helpText("1.0", ["backup"]);
    expect(backup).toContain("--repo1-retention-full");
    expect(backup).toContain("--process-max");
    expect(backup).not.toContain("--target-action");
    expect(helpText("1.0", ["restore", "target-action"])).toContain("allowed: pause, promote, shutdown");
    expect(() => helpText("1.0", ["nope"])).toThrow(/invalid command/);
    expect(() => helpText("1.0", ["backup", "target"])).toThrow(/not valid/);
  });
});

describe("typed access and value-dependent options", () => {
  const none = conf("");
  const backup = (...argv: string[]) => parseConfig({ argv: ["--stanza=s", "--pg1-path=/p", ...argv, "backup"], configSections: none, env: {} });

  test("option names stay literal types (an entry built from a plain string[] would widen them all to string)", () => {
    const literal: string extends OptionName ? "widened" : "literal" = "literal";
    expect(literal).toBe("literal");
  });

  test("get returns the table's default, typed, for every defaulted option; also where no defaults were applied (remote)", () => {
    const cfg = backup();
    const processMax: number = cfg.get("process-max");
    const type: "none" | "bz2" | "gz" | "lz4" | "zst" = cfg.get("compress-type");
    expect([processMax, type, cfg.get("buffer-size"), cfg.get("repo1-path")]).toEqual([1, "lz4", 1024 * 1024, "/var/lib/pgbackrest"]);
    const remote = parseConfig({ argv: ["--stanza=s", "--remote-type=repo", "remote"], configSections: none, env: {} });
    expect(remote.get("buffer-size")).toBe(1024 * 1024);
  });

  test("compress-level defaults per compress-type and is range-checked for that type at parse time", () => {
    expect([backup().get("compress-level"), backup("--compress-type=gz").get("compress-level"), backup("--compress-type=zst").get("compress-level"), backup("--compress-type=bz2").get("compress-level")]).toEqual([1, 6, 3, 9]);
    expect(backup("--compress-type=zst", "--compress-level=19").get("compress-level")).toBe(19);
    const e = thrown(() => backup("--compress-type=gz", "--compress-level=12"));
    expect(e.kind).toBe("OptionInvalidValueError");
    expect(e.message).toBe("'12' is out of range for 'compress-level' option when 'compress-type' option is 'gz'");
    expect(e.hints.join("\n")).toContain("from 0 to 9");
    expect(thrown(() => backup("--compress-type=lz4", "--compress-level=-7")).kind).toBe("OptionInvalidValueError");
  });

  test("repoN-storage-upload-chunk-size is range-checked by repoN-type, as pgBackRest 2.59.1 does: s3 5MiB..1GiB, azure and gcs 4MiB..1GiB", () => {
    const S3 = ["--repo1-s3-bucket=b", "--repo1-s3-endpoint=e", "--repo1-s3-region=r", "--repo1-s3-key=k", "--repo1-s3-key-secret=s"];
    const GCS = ["--repo2-gcs-bucket=b"];
    const chunk = (...argv: string[]) => parseConfig({ argv: ["--stanza=s", ...argv, "info"], configSections: none, env: { PGBUNKER_REPO1_S3_KEY: "k", PGBUNKER_REPO1_S3_KEY_SECRET: "s", PGBUNKER_REPO2_GCS_KEY: "/k.json" } });
    const s3 = (size: string) => chunk("--repo1-type=s3", ...S3.slice(0, 3), `--repo1-storage-upload-chunk-size=${size}`);
    expect(s3("5MiB").get("repo1-storage-upload-chunk-size")).toBe(5 * 1024 * 1024);
    expect(s3("1GiB").get("repo1-storage-upload-chunk-size")).toBe(1024 ** 3);
    const small = thrown(() => s3("4MiB"));
    expect(small.kind).toBe("OptionInvalidValueError");
    expect(small.message).toBe("'4194304' is out of range for 'repo1-storage-upload-chunk-size' option when 'repo1-type' option is 's3'");
    expect(thrown(() => s3("2GiB")).kind).toBe("OptionInvalidValueError");
    // Each repository by its own type: repo2 (gcs) takes 4MiB, which repo1 (s3) may not.
    const both = chunk("--repo1-type=s3", ...S3.slice(0, 3), "--repo2-type=gcs", ...GCS, "--repo2-storage-upload-chunk-size=4MiB");
    expect(both.get("repo2-storage-upload-chunk-size")).toBe(4 * 1024 * 1024);
    expect(thrown(() => chunk("--repo2-type=gcs", ...GCS, "--repo2-storage-upload-chunk-size=3MiB")).kind).toBe("OptionInvalidValueError");
  });

  test("dependencies live in the table: --target needs a --type that takes one", () => {
    const restore = (...argv: string[]) => parseConfig({ argv: ["--stanza=s", "--pg1-path=/p", ...argv, "restore"], configSections: none, env: {} });
    expect(restore("--type=name", "--target=point").str("target")).toBe("point");
    expect(thrown(() => restore("--target=point")).message).toContain("option 'target' not valid without option 'type' in ('lsn', 'name', 'time', 'xid')");
  });
});
