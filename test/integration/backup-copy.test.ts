/**
 * backup-copy: backup sets and their WAL copied from repo1 into other repositories, stored as the
 * target is configured (another compression, encryption with new passphrases), checked file by
 * file, resumable after kill -9, and valid for pgBackRest 2.45 and 2.59.1 (verify, restore: the
 * restored table's checksum equals the original's). Bad input: a set that does not exist, a
 * target that is not configured or has no repository, a target stanza of another cluster, a
 * rate-limit of 0 or garbage. rate-limit holds a copy to its rate (a lower bound only).
 *
 * History: F (full, bundled) · rows b · I (incr of F) · rows c, archived · N (full, uncompressed, for the rate test)
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BackupInfo, loadBackupInfo, saveBackupInfo } from "../../src/repo/backup-info.ts";
import { loadArchiveInfo, saveArchiveInfo } from "../../src/repo/archive-info.ts";
import { posix } from "../../src/storage/posix/posix.ts";
import { Storage } from "../../src/storage/storage.ts";
import { mkdirAsPostgres, spawnAsPostgres, tempDir } from "../harness/cluster.ts";
import { BINARY, PGBACKREST_BIN, pgbackrest, pgbunker } from "../harness/pgbunker.ts";
import type { StanzaEnv } from "../harness/stanza.ts";
import { makeStanza, removeStanza, STANZA, startRestored } from "./restore-lib.ts";

let env: StanzaEnv;
let extra: string;
const at = {} as { full: string; incr: string; plain: string; sumIncr: string; sumEnd: string };
const PASS = "copy-target-passphrase";

const newLabel = (out: string) => /new backup label = (\S+)/.exec(out)![1]!;
const repoDir = (n: string) => join(extra, n);
/** Options naming repoN at a fresh directory (created for postgres unless told not to). */
function repoOpts(n: number, name: string, more: string[] = [], create = true): string[] {
  if (create && !existsSync(repoDir(name))) mkdirAsPostgres(repoDir(name));
  return [`--repo${n}-path=${repoDir(name)}`, ...more];
}
/**
 * The stanza's config plus [global] lines (an encrypted target's passphrase: the restore_command
 * a restore writes reads it from there during recovery).
 */
function confWith(name: string, lines: Record<string, string>): string {
  const path = join(extra, `${name}.conf`);
  const text = readFileSync(env.conf, "utf8").replace("[global]\n", `[global]\n${Object.entries(lines).map(([k, v]) => `${k}=${v}\n`).join("")}`);
  writeFileSync(path, text);
  chmodSync(path, 0o644);
  return path;
}
let conf = () => env.conf;
/** pgbunker with the stanza's config (or conf()); `vars`: environment. */
function bunker(args: string[], vars: Record<string, string> = {}) {
  const r = pgbunker([`--config=${conf()}`, `--stanza=${STANZA}`, ...args], { env: vars });
  return { ...r, out: r.stdout + r.stderr };
}
function copy(n: number, name: string, args: string[] = [], more: string[] = [], create = true, vars: Record<string, string> = {}) {
  return bunker([...repoOpts(n, name, more, create), `--repo-target=${n}`, "--log-level-console=info", ...args, "backup-copy"], vars);
}
function labelsIn(dir: string): string[] {
  const info = readFileSync(join(dir, "backup", STANZA, "backup.info"), "utf8");
  return [...info.matchAll(/^(\d{8}-\d{6}F(?:_\d{8}-\d{6}[DI])?)=/gm)].map((m) => m[1]!);
}
/** pgbackrest with only the target repository as repo1 (its own stanza options from env.conf). */
function backrestOn(version: "2.45" | "2.59", n: number, name: string, more: string[], args: string[], vars: Record<string, string> = {}) {
  const r = pgbackrest([`--config=${conf()}`, `--stanza=${STANZA}`, `--repo${n}-path=${repoDir(name)}`, ...more, `--repo=${n}`, ...args], { bin: PGBACKREST_BIN[version], env: vars });
  return { ...r, out: r.stdout + r.stderr };
}
async function restoredSum(tool: "pgbunker" | "2.45" | "2.59", n: number, name: string, more: string[], set: string, vars: Record<string, string> = {}): Promise<string> {
  const dir = join(env.base, `restore-${name}-${tool}`);
  const args = [`--pg1-path=${dir}`, `--set=${set}`, "--type=immediate", "--target-action=promote", "--archive-mode=off", "restore"];
  const r = tool === "pgbunker" ? bunker([...repoOpts(n, name, more, false), `--repo=${n}`, ...args], vars) : backrestOn(tool, n, name, more, args, vars);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  const c = await startRestored(dir);
  try {
    return await c.tableChecksum("t");
  } finally {
    await c.destroy();
  }
}

beforeAll(async () => {
  extra = tempDir();
  env = await makeStanza({ archiver: "pgbunker" });
  await env.cluster.query("create table t (id int, v text)");
  await env.cluster.query("insert into t select g, md5(g::text) from generate_series(1, 20000) g");
  at.full = newLabel(env.runOk(["--type=full", "--repo1-bundle=y", "--log-level-console=info", "backup"]));
  await env.cluster.query("insert into t select g, 'b' from generate_series(1, 5000) g");
  at.incr = newLabel(env.runOk(["--type=incr", "--log-level-console=info", "backup"]));
  at.sumIncr = await env.cluster.tableChecksum("t");
  await env.cluster.query("insert into t select g, 'c' from generate_series(1, 5000) g");
  await env.archiveNow();
  at.sumEnd = await env.cluster.tableChecksum("t");
});

afterAll(async () => {
  await removeStanza(env, extra ? [extra] : []);
});

describe("backup-copy", () => {
  test("every set into a gz repository: pgBackRest 2.45 and 2.59.1 verify it, 2.59.1 restores it, WAL to the end of the archive comes along", async () => {
    const r = copy(2, "gz", ["--compress-type=gz", "--process-max=2"]);
    expect(r.code, r.out).toBe(0);
    expect(labelsIn(repoDir("gz"))).toEqual([at.full, at.incr]);
    const stored = readdirSync(join(repoDir("gz"), "backup", STANZA, at.incr, "pg_data"));
    expect(stored).toContain("backup_label.gz");
    expect(readdirSync(join(repoDir("gz"), "backup", STANZA, at.full))).toContain("bundle");
    for (const v of ["2.45", "2.59"] as const) {
      const vr = backrestOn(v, 2, "gz", [], ["--log-level-console=info", "verify"]);
      expect(vr.code, vr.out).toBe(0);
      expect(vr.out).not.toMatch(/invalid|missing/i);
    }
    expect(await restoredSum("2.59", 2, "gz", [], at.incr)).toBe(at.sumIncr);
    // The WAL after the newest backup was copied too: recovery to the end of the archive.
    const dir = join(env.base, "restore-gz-end");
    const rr = bunker([...repoOpts(2, "gz", [], false), "--repo=2", `--pg1-path=${dir}`, "--archive-mode=off", "restore"]);
    expect(rr.code, rr.out).toBe(0);
    const c = await startRestored(dir);
    try {
      expect(await c.tableChecksum("t")).toBe(at.sumEnd);
    } finally {
      await c.destroy();
    }
    // Run again: nothing left to copy.
    const again = copy(2, "gz");
    expect(again.code, again.out).toBe(0);
    expect(again.out).toContain("nothing to copy");
  });

  test("one incremental set into an encrypted repository brings its full; pgBackRest 2.45 restores it with the target's passphrase", async () => {
    mkdirAsPostgres(repoDir("enc"));
    const encConf = confWith("enc", { "repo3-path": repoDir("enc"), "repo3-cipher-type": "aes-256-cbc", "repo3-cipher-pass": PASS });
    conf = () => encConf;
    try {
      const r = copy(3, "enc", [`--set=${at.incr}`]);
      expect(r.code, r.out).toBe(0);
      const info = JSON.parse(bunker(["--repo=3", "info", "--output=json"]).stdout) as { backup: { label: string }[] }[];
      expect(info[0]!.backup.map((b) => b.label)).toEqual([at.full, at.incr]);
      const infoRaw = readFileSync(join(repoDir("enc"), "backup", STANZA, "backup.info"));
      expect(infoRaw.subarray(0, 8).toString()).toBe("Salted__");
      expect(await restoredSum("2.45", 3, "enc", [], at.incr)).toBe(at.sumIncr);
    } finally {
      conf = () => env.conf;
    }
  });
  test("kill -9 in the middle of a set: the target never lists it; the rerun keeps what was stored and completes it", async () => {
    const first = copy(4, "killed", [`--set=${at.full}`]);
    expect(first.code, first.out).toBe(0);
    const incrDir = join(repoDir("killed"), "backup", STANZA, at.incr);
    const stored = () => (existsSync(join(incrDir, "pg_data")) ? (readdirSync(join(incrDir, "pg_data"), { recursive: true }) as string[]).filter((f) => /\.lz4$/.test(f)).length : 0);
    // Slowed by rate-limit so that the kill lands mid-set; a partial manifest is saved after every file.
    const p = spawnAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${STANZA}`, ...repoOpts(4, "killed"), "--repo-target=4", `--set=${at.incr}`, "--rate-limit=64KiB", "--manifest-save-threshold=1", "backup-copy"]);
    const deadline = Date.now() + 60_000;
    while (stored() < 3 && Date.now() < deadline) await Bun.sleep(10);
    p.kill(9);
    await p.exited;
    expect(stored()).toBeGreaterThanOrEqual(3);
    expect(existsSync(join(incrDir, "backup.manifest"))).toBe(false);
    expect(labelsIn(repoDir("killed"))).toEqual([at.full]);
    const seen = backrestOn("2.59", 4, "killed", [], ["info", "--output=json"]);
    expect(seen.code, seen.out).toBe(0);
    expect((JSON.parse(seen.stdout) as { backup: { label: string }[] }[])[0]!.backup.map((b) => b.label)).toEqual([at.full]);

    const again = copy(4, "killed");
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(/resuming it/);
    expect(again.out).toMatch(/\d+ file\(s\) already copied by an interrupted run were checked and kept/);
    expect(labelsIn(repoDir("killed"))).toEqual([at.full, at.incr]);
    const v = bunker(["--repo4-path=" + repoDir("killed"), "--repo=4", "verify"]);
    expect(v.code, v.out).toBe(0);
    const vb = backrestOn("2.59", 4, "killed", [], ["verify"]);
    expect(vb.code, vb.out).toBe(0);
    expect(await restoredSum("pgbunker", 4, "killed", [], at.incr)).toBe(at.sumIncr);
  });

  test("bad input: no such set, a target not configured or without a repository, the source itself", () => {
    const noSet = copy(5, "bad", ["--set=20000101-000000F"]);
    expect(noSet.code).toBe(75);
    expect(noSet.out).toContain("backup set 20000101-000000F is not in the source repository");
    expect(noSet.out).toContain(at.full);
    expect(readdirSync(repoDir("bad"))).toEqual([]); // nothing written into the target

    const unconfigured = bunker(["--repo-target=7", "backup-copy"]);
    expect(unconfigured.code).toBe(32);
    expect(unconfigured.out).toContain("--repo-target=7 names repo7, which is not configured");

    const self = bunker(["--repo-target=1", "backup-copy"]);
    expect(self.code).toBe(32);
    expect(self.out).toContain("is the source repository");

    const missing = bunker([`--repo5-path=${join(extra, "no-such-dir")}`, "--repo-target=5", "backup-copy"]);
    expect(missing.code).toBe(73);
    expect(missing.out).toContain("has no repository at");
    expect(existsSync(join(extra, "no-such-dir"))).toBe(false);
  });

  test("a target stanza of another cluster (system id) is refused before anything is copied", async () => {
    const edited = env.copyRepo("other-cluster-edit");
    const storage = new Storage(posix, edited);
    const bi = (await loadBackupInfo(storage, STANZA))!;
    const ai = (await loadArchiveInfo(storage, STANZA))!;
    for (const h of [bi.current, ...bi.history, ai.current, ...ai.history]) h.systemId = 7000000000000000001n;
    await saveBackupInfo(storage, STANZA, bi as BackupInfo);
    await saveArchiveInfo(storage, STANZA, ai);
    const other = env.copyRepo("other-cluster", edited); // owned by postgres again
    const before = labelsIn(other);
    const r = bunker([`--repo6-path=${other}`, "--repo-target=6", "backup-copy"]);
    expect(r.code, r.out).toBe(51);
    expect(r.out).toContain("system-id 7000000000000000001, but the source's is PostgreSQL 15 system-id");
    expect(labelsIn(other)).toEqual(before);
  });

  test("rate-limit: 0 or garbage is refused; a copy at the limit takes at least its bytes / rate", async () => {
    for (const [bad, what] of [["0", "is out of range for 'rate-limit' option"], ["fast", "'fast' is not valid for 'rate-limit' option"]] as const) {
      const r = copy(8, "rate", [`--rate-limit=${bad}`]);
      expect(r.code).toBe(32);
      expect(r.out).toContain(what);
      expect(r.out).toContain("expected a size from 1KiB to 4PiB");
    }
    const plain = newLabel(env.runOk(["--type=full", "--compress-type=none", "--log-level-console=info", "backup"]));
    const dir = join(env.repo, "backup", STANZA, plain);
    const bytes = (readdirSync(dir, { recursive: true }) as string[]).map((f) => statSync(join(dir, f))).filter((st) => st.isFile()).reduce((n, st) => n + st.size, 0);
    const rate = 8 * 1024 * 1024;
    expect(bytes).toBeGreaterThan(2 * rate); // enough for the bound to mean something
    const started = performance.now();
    const r = copy(8, "rate", [`--set=${plain}`, `--rate-limit=${rate}`, "--process-max=2"]);
    const secs = (performance.now() - started) / 1000;
    expect(r.code, r.out).toBe(0);
    // The budget grants at most rate × (elapsed + its half-second burst) + the last chunks (1 MiB
    // buffers, two workers): a lower bound only, never an upper one.
    expect(secs).toBeGreaterThanOrEqual((bytes - 2 * 1024 * 1024) / rate - 0.5);
    console.error(`rate-limit ${rate} B/s: ${bytes} stored bytes copied in ${secs.toFixed(2)} s`);
    expect(labelsIn(repoDir("rate"))).toContain(plain);
  });

  // The same budget holds a backup and a restore (their workers take from it per chunk of stored
  // bytes). Lower bounds only: a run can never beat its rate, whatever else the machine does.
  test("rate-limit holds a backup and a restore to the rate as well; the restored files are the backup's", () => {
    const rate = 8 * 1024 * 1024;
    const slack = (bytes: number) => (bytes - 2 * 1024 * 1024) / rate - 0.5;
    let started = performance.now();
    const label = newLabel(env.runOk(["--type=full", "--compress-type=none", `--rate-limit=${rate}`, "--process-max=2", "--log-level-console=info", "backup"]));
    const backupSecs = (performance.now() - started) / 1000;
    const dir = join(env.repo, "backup", STANZA, label);
    const bytes = (readdirSync(dir, { recursive: true }) as string[]).map((f) => statSync(join(dir, f))).filter((st) => st.isFile()).reduce((n, st) => n + st.size, 0);
    expect(bytes).toBeGreaterThan(2 * rate);
    expect(backupSecs).toBeGreaterThanOrEqual(slack(bytes));

    const target = mkdirAsPostgres(join(env.base, "rate-restore"));
    started = performance.now();
    env.runOk([`--pg1-path=${target}`, `--set=${label}`, "--type=none", `--rate-limit=${rate}`, "--process-max=2", "restore"]);
    const restoreSecs = (performance.now() - started) / 1000;
    expect(restoreSecs).toBeGreaterThanOrEqual(slack(bytes));
    // Every file the manifest gives a checksum is restored with exactly that content.
    const manifest = readFileSync(join(dir, "backup.manifest"), "utf8");
    let checked = 0;
    for (const m of manifest.matchAll(/^pg_data\/(\S+?)=\{"checksum":"([0-9a-f]{40})"/gm)) {
      expect(new Bun.CryptoHasher("sha1").update(readFileSync(join(target, m[1]!))).digest("hex")).toBe(m[2]!);
      checked++;
    }
    expect(checked).toBeGreaterThan(100);
    console.error(`rate-limit ${rate} B/s: backup of ${bytes} bytes ${backupSecs.toFixed(2)} s, restore ${restoreSecs.toFixed(2)} s`);
  });
});
