/**
 * Encrypted repositories (repoN-cipher-type=aes-256-cbc) end to end, one small cluster for all:
 * pgbunker creates the stanza in four encrypted repositories (each its own passphrase) and pushes
 * WAL asynchronously into all of them; pgbunker backs up full → diff → incr into repo1 (lz4) and
 * full → incr into repo2 (bundled, zst); pgBackRest 2.45 backs up into repo3 and 2.59.1 into repo4.
 * Every backup is restored by the other side (and by pgbunker), started, replayed to a named
 * restore point through the restorer's own archive-get where asked, and compared on table data
 * with the source. verify and info read every repository; a wrong passphrase is a clear error
 * that writes nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createDecipheriv } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ERROR_CODES } from "../../src/common/error.ts";
import { bytesToKey } from "../../src/filter/cipher.ts";
import { InfoIni } from "../../src/repo/ini.ts";
import type { Manifest } from "../../src/repo/manifest.ts";
import { type Cluster, mustRun, tempDir } from "../harness/cluster.ts";
import { BINARY, PGBACKREST_BIN, pgbackrest, pgbunker, type PgbackrestVersion, writeConfig } from "../harness/pgbunker.ts";
import type { StanzaEnv } from "../harness/stanza.ts";
import { makeStanza, removeStanza, STANZA, tree, treeLines } from "./restore-lib.ts";

const PASS = ["", "pgbunker repo1 passphrase", "pgbunker repo2 passphrase", "pgbackrest 2.45 repo3 passphrase", "pgbackrest 2.59 repo4 passphrase"];
const RP = "cipher_rp";
let env: StanzaEnv;
/** repo2..4 live here (repo1 in the stanza's own temp dir). */
const repos = tempDir("pgb-cipher-repos-");
const repoPath = (i: number) => (i === 1 ? env.repo : join(repos, `repo${i}`));
/** Backup labels by repository, oldest first. */
const labels: Record<number, string[]> = {};
/** Table data at each backup (by label) and at the restore point. */
const dataAt = new Map<string, string>();

/** OpenSSL-salted AES-256-CBC, decrypted with the key derivation pgBackRest uses. */
function decrypt(stored: Buffer, pass: string): Buffer {
  const { key, iv } = bytesToKey(new TextEncoder().encode(pass), stored.subarray(8, 16));
  const d = createDecipheriv("aes-256-cbc", key, iv);
  return Buffer.concat([d.update(stored.subarray(16)), d.final()]);
}

/** backup.info's own passphrase (that of the manifests) in repository i. */
function backupInfoPass(i: number): string {
  const text = decrypt(readFileSync(join(repoPath(i), "backup", STANZA, "backup.info")), PASS[i]!).toString("utf8");
  return InfoIni.parse(text, "backup.info").value("cipher", "cipher-pass") as string;
}

/** Row count and an order-independent digest of every row of both tables. */
async function snapshot(c: Cluster): Promise<string> {
  return c.scalar(
    "select (select count(*) || ':' || md5(string_agg(t::text, ',' order by id)) from t) || ' ' || (select count(*) || ':' || md5(string_agg(u::text, ',' order by k)) from u)",
  );
}

const change = async (n: number) => {
  await env.cluster.query(`insert into t select g, md5(g::text) from generate_series(${n * 1000 + 1}, ${n * 1000 + 1000}) g`);
  await env.cluster.query(`update u set v = v || '-${n}' where k % ${n + 1} = 0`);
};

const newLabel = (out: string) => /new backup label = (\S+)/.exec(out)![1]!;

async function pgbunkerBackup(repo: number, type: string, extra: string[] = []): Promise<string> {
  const label = newLabel(env.runOk([`--repo=${repo}`, `--type=${type}`, "--log-level-console=info", ...extra, "backup"]));
  (labels[repo] ??= []).push(label);
  dataAt.set(`${repo}:${label}`, await snapshot(env.cluster));
  return label;
}

async function pgbackrestBackup(version: PgbackrestVersion, repo: number, type: string, extra: string[] = []): Promise<string> {
  env.backrestOk([`--repo=${repo}`, `--type=${type}`, ...extra, "backup"], { bin: PGBACKREST_BIN[version] });
  const info = JSON.parse(env.backrestOk([`--repo=${repo}`, "info", "--output=json"], { bin: PGBACKREST_BIN[version] }))[0].backup as { label: string }[];
  const label = info.at(-1)!.label;
  (labels[repo] ??= []).push(label);
  dataAt.set(`${repo}:${label}`, await snapshot(env.cluster));
  return label;
}

beforeAll(async () => {
  const global: Record<string, string | boolean> = { "repo2-bundle": true, "process-max": "2" };
  for (let i = 1; i <= 4; i++) Object.assign(global, { [`repo${i}-cipher-type`]: "aes-256-cbc", [`repo${i}-cipher-pass`]: PASS[i]!, [`repo${i}-retention-full`]: "9" });
  for (const i of [2, 3, 4]) global[`repo${i}-path`] = repoPath(i);
  // Named pgbackrest.conf: pgBackRest's backup wants its name in archive_command, which runs pgbunker.
  env = await makeStanza({ archiver: "pgbunker", global, configName: "pgbackrest.conf" });
  // Asynchronous archiving (a spool queue and workers) into all four repositories.
  env.cluster.writeConf({ archive_command: `'${BINARY} --config=${env.conf} --stanza=${STANZA} --archive-async archive-push %p'` });
  await env.cluster.query("select pg_reload_conf()");

  await env.cluster.query("create table t (id int primary key, v text); create table u (k int primary key, v text)");
  await env.cluster.query("insert into u select g, md5(g::text) from generate_series(1, 500) g");
  await change(0);
  await pgbunkerBackup(1, "full");
  await change(1);
  await pgbunkerBackup(1, "diff");
  await change(2);
  await pgbunkerBackup(1, "incr");
  await pgbunkerBackup(2, "full", ["--compress-type=zst"]);
  await change(3);
  await pgbunkerBackup(2, "incr", ["--compress-type=zst"]);
  await pgbackrestBackup("2.45", 3, "full");
  await change(4);
  await pgbackrestBackup("2.45", 3, "incr", ["--compress-type=bz2"]);
  await pgbackrestBackup("2.59", 4, "full", ["--repo4-bundle", "--compress-type=zst"]);
  await change(5);
  await pgbackrestBackup("2.59", 4, "diff", ["--repo4-bundle", "--compress-type=zst"]);
  // After every backup: a named restore point, then more changes that a restore to it must not show.
  await change(6);
  await env.cluster.query(`select pg_create_restore_point('${RP}')`);
  dataAt.set(RP, await snapshot(env.cluster));
  await change(7);
  await env.archiveNow();
}, 240_000);

afterAll(async () => {
  await removeStanza(env, [repos]);
});

type Restorer = "pgbunker" | `pgbackrest-${PgbackrestVersion}`;
const toRestoreRp = ["--type=name", `--target=${RP}`, "--target-action=promote"];
const toBackupEnd = ["--type=immediate", "--target-action=promote"];

async function restoredData(tool: Restorer, repo: number, label: string, target: string[]): Promise<string> {
  const c = await env.restoreAndStart(tool, label, [`--repo=${repo}`, ...target]);
  const got = await snapshot(c);
  c.stop("immediate");
  return got;
}

describe("encrypted repositories written by pgbunker", () => {
  test("the stanza, WAL and backups are encrypted with the passphrases pgBackRest uses", () => {
    for (let i = 1; i <= 4; i++) {
      const repo = repoPath(i);
      const walDir = join(repo, "archive", STANZA, "15-1", "0000000100000000");
      const wal = join("archive", STANZA, "15-1", "0000000100000000", readdirSync(walDir).find((n) => /^[0-9A-F]{24}-[0-9a-f]{40}\.lz4$/.test(n))!);
      for (const f of ["archive/demo/archive.info", "backup/demo/backup.info", wal]) expect({ f, head: readFileSync(join(repo, f)).subarray(0, 8).toString() }).toEqual({ f, head: "Salted__" });
    }
    const full = labels[1]![0]!;
    const manifest = readFileSync(join(env.repo, "backup", STANZA, full, "backup.manifest"));
    expect(manifest.subarray(0, 8).toString()).toBe("Salted__");
    const pgVersion = readFileSync(join(env.repo, "backup", STANZA, full, "pg_data", "PG_VERSION.lz4"));
    expect(pgVersion.subarray(0, 8).toString()).toBe("Salted__");
    const bundle = join(repoPath(2), "backup", STANZA, labels[2]![0]!, "bundle");
    expect(readdirSync(bundle).length).toBeGreaterThan(0);
  });

  test("pgbunker restores its full (end of backup) and its incr replayed to the restore point", async () => {
    expect(await restoredData("pgbunker", 1, labels[1]![0]!, toBackupEnd)).toBe(dataAt.get(`1:${labels[1]![0]}`)!);
    expect(await restoredData("pgbunker", 1, labels[1]![2]!, toRestoreRp)).toBe(dataAt.get(RP)!);
  });

  test("pgbunker restores its bundled zst incr (repo2)", async () => {
    expect(await restoredData("pgbunker", 2, labels[2]![1]!, toBackupEnd)).toBe(dataAt.get(`2:${labels[2]![1]}`)!);
  });

  test("pgBackRest 2.45 restores pgbunker's diff and, through its own archive-get, replays pgbunker's WAL to the restore point", async () => {
    expect(await restoredData("pgbackrest-2.45", 1, labels[1]![1]!, toBackupEnd)).toBe(dataAt.get(`1:${labels[1]![1]}`)!);
    expect(await restoredData("pgbackrest-2.45", 1, labels[1]![2]!, toRestoreRp)).toBe(dataAt.get(RP)!);
  });

  test("pgBackRest 2.59.1 restores pgbunker's bundled zst incr and replays pgbunker's WAL to the restore point", async () => {
    expect(await restoredData("pgbackrest-2.59", 2, labels[2]![1]!, toRestoreRp)).toBe(dataAt.get(RP)!);
  });

  test("verify: pgbunker and pgBackRest both find every encrypted repository valid", () => {
    for (const repo of [1, 2, 3, 4]) {
      const ours = env.run([`--repo=${repo}`, "--log-level-console=warn", "verify", "--output=text", "--verbose"]);
      expect({ repo, code: ours.code, err: ours.stderr }).toEqual({ repo, code: 0, err: "" });
      for (const l of labels[repo]!) expect(ours.stdout).toContain(`backup: ${l}, status: valid`);
      const theirs = env.backrest([`--repo=${repo}`, "--log-level-console=warn", "verify", "--output=text", "--verbose"], { bin: PGBACKREST_BIN["2.59"] });
      expect({ repo, code: theirs.code }).toEqual({ repo, code: 0 });
      expect(ours.stdout).toBe(theirs.stdout);
    }
  });

  test("info: cipher and backups of each repository, as pgBackRest reports them", () => {
    const ours = JSON.parse(env.runOk(["info", "--output=json"]))[0];
    const theirs = JSON.parse(env.backrestOk(["info", "--output=json"], { bin: PGBACKREST_BIN["2.59"] }))[0];
    expect(ours.cipher).toBe("aes-256-cbc");
    expect(ours.repo.map((r: { cipher: string; key: number; status: { code: number } }) => [r.key, r.cipher, r.status.code])).toEqual([1, 2, 3, 4].map((k) => [k, "aes-256-cbc", 0]));
    const byRepo = (doc: { backup: { label: string; database: { "repo-key": number } }[] }) => doc.backup.map((b) => `${b.database["repo-key"]}:${b.label}`).sort();
    expect(byRepo(ours)).toEqual(byRepo(theirs));
    expect(byRepo(ours).length).toBe(9);
    const text = env.runOk(["info"]);
    expect(text).toContain("    cipher: aes-256-cbc\n");
  });
});

describe("encrypted repositories written by pgBackRest", () => {
  test("pgbunker restores 2.45's incr (gz + bz2) and replays to the restore point through pgbunker archive-get", async () => {
    expect(await restoredData("pgbunker", 3, labels[3]![1]!, toBackupEnd)).toBe(dataAt.get(`3:${labels[3]![1]}`)!);
    expect(await restoredData("pgbunker", 3, labels[3]![1]!, toRestoreRp)).toBe(dataAt.get(RP)!);
  });

  test("pgbunker restores 2.59.1's bundled zst diff", async () => {
    expect(await restoredData("pgbunker", 4, labels[4]![1]!, toBackupEnd)).toBe(dataAt.get(`4:${labels[4]![1]}`)!);
  });
});

describe("an interrupted encrypted backup", () => {
  test("killed halfway, the resumed full keeps the copied files' passphrase; restored, it has the data", async () => {
    const copied = (m: Manifest) => m.fileList().filter((f) => f.rck !== undefined).length;
    const killed = await env.killBackupWhen(["--repo=1", "--type=full", "--process-max=1", "--manifest-save-threshold=1"], labels[1]!.at(-1)!, (m) => copied(m) >= 5, (b) => decrypt(b, backupInfoPass(1)));
    const r = env.run(["--repo=1", "--type=full", "--log-level-console=detail", "backup"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`resumable backup ${killed.label} of same type exists`);
    expect((r.stdout.match(/checksum resumed file/g) ?? []).length).toBeGreaterThanOrEqual(5);
    const now = await snapshot(env.cluster);
    expect(await restoredData("pgbunker", 1, killed.label, toBackupEnd)).toBe(now);
  });
});

describe("a wrong or missing passphrase", () => {
  test("every command refuses with a clear error and writes nothing", () => {
    const settings = (cipher: Record<string, string>) => writeConfig(join(env.base, "wrong-pass.conf"), {
      global: { "repo1-path": env.repo, ...cipher, "lock-path": env.lock, "log-path": env.log, "archive-timeout": 5, "repo1-retention-full": 9 },
      [STANZA]: env.cluster.pgOptions(1),
    });
    const run = (args: string[]) => pgbunker([`--config=${join(env.base, "wrong-pass.conf")}`, `--stanza=${STANZA}`, ...args]);
    const before = treeLines(tree(env.repo));
    const segment = readdirSync(join(env.cluster.dataDir, "pg_wal")).find((f) => /^[0-9A-F]{24}$/.test(f))!;
    const wal = join(env.base, "000000010000000000000F01");
    mustRun(["cp", join(env.cluster.dataDir, "pg_wal", segment), wal]);
    const dest = join(env.base, "wrong-restore");

    settings({ "repo1-cipher-type": "aes-256-cbc", "repo1-cipher-pass": "not the passphrase" });
    for (const [args, code] of [
      [["stanza-create"], ERROR_CODES.CryptoError],
      [["--type=full", "backup"], ERROR_CODES.CryptoError],
      [["archive-push", wal], 103],
      [["archive-get", segment, join(env.base, "never")], 103],
      // restore searches the repositories: one it cannot read is skipped with a warning (the
      // CryptoError and its hint), and with none left it is BackupSetInvalidError, as pgBackRest.
      [[`--pg1-path=${dest}`, "restore"], ERROR_CODES.BackupSetInvalidError],
      [["verify"], ERROR_CODES.CryptoError],
      [["expire"], 104],
      [["check"], ERROR_CODES.CryptoError],
    ] as const) {
      const r = run([...args]);
      expect({ args, code: r.code }).toEqual({ args, code });
      // What was found, on which file, and what to do (not "has a stanza-create been performed?").
      expect(r.stderr).toMatch(/unable to load info file '\S+\/(archive|backup)\.info' or '\S+\.info\.copy':\n\s+CryptoError: unable to decrypt: wrong passphrase or corrupt data\n/);
      expect(r.stderr).toContain("HINT: check repo-cipher-pass: it must be the passphrase the stanza was created with (if it is, the file is damaged: run 'pgbunker verify').");
      expect(r.stderr).not.toContain("stanza-create been performed");
    }
    // info reports the repository's error in its status and exits 0, as pgBackRest's does.
    const info = run(["info"]);
    expect(info.code).toBe(0);
    expect(info.stdout).toContain("status: error (other)\n            [CryptoError] unable to load info file");

    // No passphrase at all, or the repository taken for unencrypted: said so before anything is read.
    settings({ "repo1-cipher-type": "aes-256-cbc" });
    const none = run(["--type=full", "backup"]);
    expect(none.code).toBe(ERROR_CODES.OptionRequiredError);
    expect(none.stderr).toContain("backup command requires option: repo1-cipher-pass");
    settings({});
    const plain = run([`--pg1-path=${dest}`, "restore"]);
    expect(plain.code).toBe(ERROR_CODES.BackupSetInvalidError); // the one repository skipped, with its CryptoError as a warning
    expect(plain.stderr).toContain("backup.info' is encrypted (it starts with 'Salted__') but repo-cipher-type is none");
    expect(plain.stderr).toContain("HINT: this repository is encrypted: set repo-cipher-type=aes-256-cbc and repo-cipher-pass");

    expect(treeLines(tree(env.repo))).toEqual(before);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(join(env.base, "never"))).toBe(false);
  });
});

describe("repoN-cipher-pass without repoN-cipher-type", () => {
  test("is ignored, as pgBackRest ignores it: an unencrypted repository is backed up and stays unencrypted", () => {
    const conf = join(env.base, "stray-pass.conf");
    const repo = join(repos, "repo-plain");
    writeConfig(conf, {
      global: { "repo1-path": repo, "repo1-retention-full": 9, "repo1-cipher-pass": "a pass for no cipher", "lock-path": env.lock, "log-path": env.log, "compress-type": "lz4" },
      [STANZA]: env.cluster.pgOptions(1),
    });
    const run = (args: string[]) => pgbunker([`--config=${conf}`, `--stanza=${STANZA}`, ...args]);
    expect(run(["stanza-create"]).code).toBe(0);
    const backup = run(["--type=full", "--no-archive-check", "backup"]);
    expect({ code: backup.code, err: backup.stderr }).toEqual({ code: 0, err: "" });
    expect(readFileSync(join(repo, "backup", STANZA, "backup.info"), "utf8")).toStartWith("[backrest]\n");
    const info = JSON.parse(pgbackrest([`--config=${conf}`, `--stanza=${STANZA}`, "info", "--output=json"]).stdout)[0];
    expect([info.cipher, info.status.code, info.backup.length]).toEqual(["none", 0, 1]);
  });
});
