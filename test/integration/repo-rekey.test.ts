/**
 * repo-rekey (a pgbunker addition): an encrypted repository holding a pgbunker full and a
 * pgBackRest 2.45 incr gets a new passphrase. Only the four info files change (every manifest,
 * backup file and WAL file keeps its bytes); pgBackRest 2.45 and 2.59.1 and pgbunker restore it
 * with the new passphrase and replay its WAL. A SIGKILL before each of the four renames
 * (strace fault injection, so at a known write, not at a lucky moment) leaves a repository that
 * one of the two passphrases opens, and running repo-rekey again finishes the job. Bad input
 * changes nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createDecipheriv } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ERROR_CODES } from "../../src/common/error.ts";
import { bytesToKey } from "../../src/filter/cipher.ts";
import { InfoIni } from "../../src/repo/ini.ts";
import { type Cluster, runAsPostgres, type RunResult, writeAsPostgres } from "../harness/cluster.ts";
import { BINARY, PGBACKREST_BIN, pgbackrest, pgbunker, type PgbackrestVersion, writeConfig } from "../harness/pgbunker.ts";
import type { StanzaEnv } from "../harness/stanza.ts";
import { makeStanza, removeStanza, STANZA, tree, treeLines } from "./restore-lib.ts";

const OLD = "the passphrase the stanza was created with";
const NEW = "a brand new passphrase";
const RP = "rekey_rp";
const INFO_FILES = ["archive/demo/archive.info", "backup/demo/backup.info", "archive/demo/archive.info.copy", "backup/demo/backup.info.copy"];
let env: StanzaEnv;
const labels: string[] = [];
const dataAt = new Map<string, string>();

const snapshot = (c: Cluster) => c.scalar("select count(*) || ':' || md5(string_agg(t::text, ',' order by id)) from t");

/** The bytes of an OpenSSL-salted file decrypted with `pass`, or undefined when it does not decrypt. */
function decrypt(file: string, pass: string): string | undefined {
  const stored = readFileSync(file);
  const { key, iv } = bytesToKey(new TextEncoder().encode(pass), stored.subarray(8, 16));
  try {
    const d = createDecipheriv("aes-256-cbc", key, iv);
    const text = Buffer.concat([d.update(stored.subarray(16)), d.final()]).toString("utf8");
    InfoIni.parse(text, file);
    return text;
  } catch {
    return undefined;
  }
}

/** Which passphrase each info file of a repository decrypts with ("old", "new" or "none"), in write order. */
const keyedWith = (repo: string) => INFO_FILES.map((f) => (decrypt(join(repo, f), OLD) ? "old" : decrypt(join(repo, f), NEW) ? "new" : "none"));

/** A config file for repository `repo` opened with `pass` (pgbunker and pgBackRest read it alike). */
function conf(name: string, repo: string, pass: string | undefined, cipher = "aes-256-cbc"): string {
  return writeConfig(join(env.base, name), {
    global: { "repo1-path": repo, "repo1-cipher-type": cipher, ...(pass === undefined ? {} : { "repo1-cipher-pass": pass }), "lock-path": env.lock, "log-path": env.log, "log-level-console": "info", "repo1-retention-full": 9 },
    [STANZA]: env.cluster.pgOptions(1),
  });
}

const rekeyArgs = (config: string) => [BINARY, `--config=${config}`, `--stanza=${STANZA}`, "repo-rekey"];
/** repo-rekey with the new passphrase in the environment (null: none given). */
const rekey = (config: string, newPass: string | null = NEW): RunResult =>
  runAsPostgres(rekeyArgs(config), { env: newPass === null ? {} : { PGBUNKER_REPO1_CIPHER_PASS_NEW: newPass } });

/**
 * Whether pgbunker's and pgBackRest 2.59.1's info both read the stanza (both info files) with
 * `pass`. pgBackRest's text output: its JSON carries the undecrypted bytes of a failed load raw.
 */
function opens(repo: string, pass: string): boolean {
  const config = conf(pass === OLD ? "opens-old.conf" : "opens-new.conf", repo, pass);
  const args = [`--config=${config}`, `--stanza=${STANZA}`, "--log-level-console=off", "info"];
  const ours = JSON.parse(pgbunker([...args, "--output=json"]).stdout)[0] as { status: { code: number }; backup: { label: string }[]; archive: { min: string | null }[] };
  const oursOk = ours.status.code === 0 && ours.backup.length === 2 && !!ours.archive[0]?.min;
  const theirs = pgbackrest(args, { bin: PGBACKREST_BIN["2.59"] }).stdout;
  const theirsOk = theirs.includes("    status: ok\n") && labels.every((l) => theirs.includes(` backup: ${l}\n`)) && /wal archive min\/max \(15\): [0-9A-F]{24}\//.test(theirs);
  expect({ pass, pgbunker: oursOk }).toEqual({ pass, pgbunker: theirsOk });
  return oursOk;
}

beforeAll(async () => {
  // Named pgbackrest.conf: pgBackRest's backup wants its name in archive_command, which runs pgbunker.
  env = await makeStanza({ global: { "repo1-cipher-type": "aes-256-cbc", "repo1-cipher-pass": OLD }, configName: "pgbackrest.conf" });
  await env.cluster.query("create table t (id int primary key, v text)");
  await env.cluster.query("insert into t select g, md5(g::text) from generate_series(1, 1000) g");
  labels.push(/new backup label = (\S+)/.exec(env.runOk(["--type=full", "--log-level-console=info", "backup"]))![1]!);
  dataAt.set(labels[0]!, await snapshot(env.cluster));
  await env.cluster.query("update t set v = v || '-1' where id % 3 = 0");
  env.backrestOk(["--type=incr", "backup"]);
  labels.push(env.backupLabels().at(-1)!);
  dataAt.set(labels[1]!, await snapshot(env.cluster));
  await env.cluster.query("insert into t select g, 'after' from generate_series(1001, 1500) g");
  await env.cluster.query(`select pg_create_restore_point('${RP}')`);
  dataAt.set(RP, await snapshot(env.cluster));
  await env.cluster.query("delete from t where id > 1200");
  await env.archiveNow();
}, 180_000);

afterAll(async () => {
  await removeStanza(env);
});

describe("bad input changes nothing", () => {
  test("wrong passphrase, missing or unchanged new passphrase, unencrypted repository, several repositories", () => {
    const before = treeLines(tree(env.repo));
    const cases: [string, RunResult, number, string][] = [
      ["wrong old", rekey(conf("wrong.conf", env.repo, "not the passphrase")), ERROR_CODES.CryptoError, "unable to decrypt"],
      ["no new", rekey(conf("ok.conf", env.repo, OLD), null), ERROR_CODES.OptionRequiredError, "repo-rekey command requires option: repo1-cipher-pass-new"],
      ["same", rekey(conf("ok.conf", env.repo, OLD), OLD), ERROR_CODES.OptionInvalidValueError, "repo1-cipher-pass-new is the same as repo1-cipher-pass"],
      ["no old", rekey(conf("no-old.conf", env.repo, undefined)), ERROR_CODES.OptionRequiredError, "repo-rekey command requires option: repo1-cipher-pass"],
      ["type none", rekey(conf("none.conf", env.repo, OLD, "none")), ERROR_CODES.OptionInvalidValueError, "repo1 is not encrypted (repo1-cipher-type=none)"],
    ];
    for (const [what, r, code, message] of cases) {
      expect({ what, code: r.code }).toEqual({ what, code });
      expect(r.stderr).toContain(message);
      expect(r.stderr).toContain("HINT: ");
    }
    expect(cases[0]![1].stderr).toContain("check repo1-cipher-pass: it must be the repository's current passphrase");
    expect(treeLines(tree(env.repo))).toEqual(before);

    // A repository that is not encrypted, taken for an encrypted one.
    const plain = join(env.base, "plain-repo");
    const plainConf = conf("plain.conf", plain, undefined, "none");
    expect(pgbunker([`--config=${plainConf}`, `--stanza=${STANZA}`, "stanza-create"]).code).toBe(0);
    const plainBefore = treeLines(tree(plain));
    const r = rekey(conf("plain-as-enc.conf", plain, OLD));
    expect(r.code).toBe(ERROR_CODES.CryptoError);
    expect(r.stderr).toContain("archive.info' is not encrypted: repo1 is an unencrypted repository");
    expect(treeLines(tree(plain))).toEqual(plainBefore);

    // Two repositories: which one is said.
    const two = writeConfig(join(env.base, "two.conf"), { global: { "repo1-path": env.repo, "repo1-cipher-type": "aes-256-cbc", "repo1-cipher-pass": OLD, "repo2-path": plain, "lock-path": env.lock, "log-path": env.log }, [STANZA]: env.cluster.pgOptions(1) });
    const r2 = rekey(two);
    expect(r2.code).toBe(ERROR_CODES.OptionRequiredError);
    expect(r2.stderr).toContain("repo-rekey command requires option: repo (2 repositories are configured: repo1, repo2)");
    expect(treeLines(tree(env.repo))).toEqual(before);
  });
});

describe("a kill at any write", () => {
  /** strace's counter of the rename syscall the posix driver's atomic writes make. */
  let renameCall = "";

  test("repo-rekey makes four renames, in the order that keeps one passphrase working", () => {
    const repo = env.copyRepo("trace-repo");
    const trace = join(env.base, "rekey.strace");
    const r = runAsPostgres(["strace", "-f", "-qq", "-o", trace, "-e", "trace=rename,renameat,renameat2", ...rekeyArgs(conf("trace.conf", repo, OLD))], { env: { PGBUNKER_REPO1_CIPHER_PASS_NEW: NEW } });
    expect({ code: r.code, err: r.stderr }).toEqual({ code: 0, err: "" });
    const calls = readFileSync(trace, "utf8").split("\n").filter((l) => /rename/.test(l));
    expect(calls.map((l) => /"([^"]+)"[^"]*"([^"]+)"/.exec(l)![2]!.slice(repo.length + 1))).toEqual(INFO_FILES);
    renameCall = /^\d+\s+(\w+)\(/.exec(calls[0]!)![1]!;
    expect(keyedWith(repo)).toEqual(["new", "new", "new", "new"]);
  });

  // Killed before rename k: writes 1..k-1 are done. Which passphrase opens the repository then.
  const expected: Record<number, { old: boolean; new: boolean }> = { 1: { old: true, new: false }, 2: { old: true, new: false }, 3: { old: true, new: true }, 4: { old: false, new: true } };
  for (const k of [1, 2, 3, 4]) {
    test(`killed before write ${k}: ${expected[k]!.old ? "the old" : ""}${expected[k]!.old && expected[k]!.new ? " and " : ""}${expected[k]!.new ? "the new" : ""} passphrase opens it; run again, it is re-keyed`, () => {
      expect(renameCall).not.toBe("");
      const repo = env.copyRepo(`kill-${k}-repo`);
      const config = conf(`kill-${k}.conf`, repo, OLD);
      const killed = runAsPostgres(["strace", "-f", "-qq", "-o", "/dev/null", "-e", `inject=${renameCall}:signal=KILL:when=${k}`, ...rekeyArgs(config)], { env: { PGBUNKER_REPO1_CIPHER_PASS_NEW: NEW } });
      expect(killed.code).not.toBe(0);
      expect(keyedWith(repo)).toEqual(INFO_FILES.map((_, i) => (i < k - 1 ? "new" : "old")));
      expect({ old: opens(repo, OLD), new: opens(repo, NEW) }).toEqual(expected[k]!);

      const again = rekey(config);
      expect({ code: again.code, err: again.stderr }).toEqual({ code: 0, err: "" });
      expect(keyedWith(repo)).toEqual(["new", "new", "new", "new"]);
      expect({ old: opens(repo, OLD), new: opens(repo, NEW) }).toEqual({ old: false, new: true });
    }, 60_000);
  }
});

describe("the re-keyed repository", () => {
  let before: Map<string, string>;

  let confText = "";
  beforeAll(() => {
    confText = readFileSync(env.conf, "utf8");
    const entries = tree(env.repo);
    before = new Map([...entries].map(([p, e]) => [p, e.sha1 ?? ""]));
    const r = rekey(conf("ok.conf", env.repo, OLD));
    expect({ code: r.code, err: r.stderr }).toEqual({ code: 0, err: "" });
    expect(r.stdout).toContain("re-keyed: set repo1-cipher-pass to the new passphrase");
    // As the user is told: the stanza's configuration (archive_command's too) gets the new passphrase.
    writeAsPostgres(env.conf, confText.replace(`repo1-cipher-pass=${OLD}`, `repo1-cipher-pass=${NEW}`));
  });

  test("only the four info files changed; they open with the new passphrase alone, with the same content", () => {
    const after = new Map([...tree(env.repo)].map(([p, e]) => [p, e.sha1 ?? ""]));
    expect([...after.keys()]).toEqual([...before.keys()]);
    const changed = [...after].filter(([p, sha1]) => before.get(p) !== sha1).map(([p]) => p).sort();
    expect(changed).toEqual([...INFO_FILES].sort());
    expect(keyedWith(env.repo)).toEqual(["new", "new", "new", "new"]);
    for (const f of INFO_FILES) expect(decrypt(join(env.repo, f), NEW)).toContain("[cipher]\ncipher-pass=");
  });

  test("run again (the old passphrase long forgotten): nothing to do, nothing written", () => {
    const lines = treeLines(tree(env.repo));
    const noop = rekey(conf("noop.conf", env.repo, "a passphrase it never had"), NEW);
    expect({ code: noop.code, err: noop.stderr }).toEqual({ code: 0, err: "" });
    expect(noop.stdout).toContain("already encrypted with repo1-cipher-pass-new: nothing to do");
    expect(treeLines(tree(env.repo))).toEqual(lines);
  });

  const restorers: ("pgbunker" | `pgbackrest-${PgbackrestVersion}`)[] = ["pgbackrest-2.45", "pgbackrest-2.59", "pgbunker"];
  for (const tool of restorers) {
    test(`${tool} restores both backups with the new passphrase and replays the WAL to the restore point`, async () => {
      for (const label of labels) {
        const c = await env.restoreAndStart(tool, label);
        expect({ label, data: await snapshot(c) }).toEqual({ label, data: dataAt.get(label)! });
        c.stop("immediate");
      }
      const c = await env.restoreAndStart(tool, labels[1]!, ["--type=name", `--target=${RP}`, "--target-action=promote"]);
      expect(await snapshot(c)).toBe(dataAt.get(RP)!);
      c.stop("immediate");
    }, 180_000);
  }
});
