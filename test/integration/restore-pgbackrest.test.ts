/**
 * pgbunker restores what pgBackRest 2.45 backed up: full → diff → incr of a cluster with a
 * tablespace and three databases, and a bundled, encrypted full in a second repository. The
 * restored files equal pgBackRest's own restore of the same set, the clusters start with the data
 * of the backup time (WAL through pgbunker archive-get), pass pg_checksums and pg_amcheck; delta
 * restores, selective restore, ownership and bad input are checked on the same backups.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, readdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Manifest } from "../../src/repo/manifest.ts";
import { InfoIni } from "../../src/repo/ini.ts";
import { Cluster, mkdirAsPostgres, PG_GID, PG_UID, runAsPostgres, tempDir } from "../harness/cluster.ts";
import type { StanzaEnv } from "../harness/stanza.ts";
import { bunkerAsRoot, makeStanza, removeStanza, STANZA, startRestored, tree, treeLines } from "./restore-lib.ts";

/** The stanza, with shortcuts named after the tool they run. */
let env: StanzaEnv;
const lab = {
  get base() { return env.base; },
  get cluster() { return env.cluster; },
  get config() { return env.conf; },
  get repo() { return env.repo; },
  bunker: (args: string[]) => env.run(args),
  bunkerOk: (args: string[]) => env.runOk(args),
  backrest: (args: string[]) => env.backrestOk(args),
};
const repo2 = tempDir("pgb-restore-repo2-");
let labels: string[];
let data: Awaited<ReturnType<typeof checksums>>;
const started: Cluster[] = [];
const CIPHER_PASS = "x7Gq2-restore-test-passphrase";


const checksums = async (c: Cluster) => ({
  accounts: await c.tableChecksum("pgbench_accounts"),
  branches: await c.tableChecksum("pgbench_branches"),
  ts: await c.tableChecksum("t_ts"),
  db2: await c.tableChecksum("t2", "db2"),
});

beforeAll(async () => {
  env = await makeStanza({ archiver: "pgbackrest", global: { "log-level-console": "warn", "repo2-path": repo2, "repo2-bundle": true, "repo2-cipher-type": "aes-256-cbc", "repo2-cipher-pass": CIPHER_PASS } });
  const c = lab.cluster;
  mkdirAsPostgres(join(lab.base, "ts1"));
  // A directory link and a file link inside the data directory, as DBAs make them.
  const ext = join(lab.base, "ext");
  expect(runAsPostgres(["sh", "-c", `mkdir ${ext} && echo hello > ${ext}/afile && echo '# extra' > ${lab.base}/extra.conf && ln -s ${ext} ${c.dataDir}/ext_link_dir && ln -s ${lab.base}/extra.conf ${c.dataDir}/ext_link.conf`]).code).toBe(0);
  await c.query(`create tablespace ts1 location '${join(lab.base, "ts1")}'`);
  await c.query("create database db2");
  await c.query("create database db3");
  c.pgbenchInit(1);
  await c.query("create table t_ts (id int primary key, v text) tablespace ts1; insert into t_ts select g, md5(g::text) from generate_series(1, 2000) g");
  await c.query("create table t2 as select g from generate_series(1, 5000) g", "db2");
  await c.query("create table t3 as select g from generate_series(1, 5000) g", "db3");
  lab.backrest(["stanza-create"]);
  lab.backrest(["--repo=1", "--type=full", "backup"]);
  await c.query("update pgbench_accounts set abalance = abalance + 7 where aid % 10 = 0");
  lab.backrest(["--repo=1", "--type=diff", "backup"]);
  await c.query("update pgbench_branches set bbalance = bbalance + 1; insert into t_ts values (0, 'zero'); delete from pgbench_accounts where aid % 97 = 0");
  await c.query("insert into t2 select g from generate_series(5001, 6000) g", "db2");
  lab.backrest(["--repo=1", "--type=incr", "backup"]);
  lab.backrest(["--repo=2", "--type=full", "backup"]);
  data = await checksums(c);
  labels = readdirSync(join(lab.repo, "backup", STANZA)).filter((n) => /^\d{8}-\d{6}F/.test(n)).sort();
  expect(labels.map((l) => l.slice(-1))).toEqual(["F", "D", "I"]);
}, 120_000);

afterAll(async () => {
  for (const c of started) if (c.running()) c.stop("immediate");
  await removeStanza(env, [repo2]);
});

/** A copy of the repository whose latest manifest gives the files an owner this host lacks. */
let badRepoPath: string | undefined;
function badRepo(): string {
  if (badRepoPath) return badRepoPath;
  const bad = join(lab.base, "repo-bad");
  env.copyRepo("repo-bad");
  const mf = join(bad, "backup", STANZA, labels[2]!, "backup.manifest");
  const ini = InfoIni.parse(readFileSync(mf, "utf8"), mf);
  ini.setValue("target:file:default", "user", "ghost-user");
  for (const f of [mf, `${mf}.copy`]) writeFileSync(f, ini.render());
  return (badRepoPath = bad);
}

const noTemp = (dir: string) => [...tree(dir).keys()].filter((n) => n.includes(".pgbunker.tmp") || n === "backup.manifest");

describe("restore of pgBackRest 2.45 backups", () => {
  test("latest (full → diff → incr): the files pgBackRest restores, then the cluster starts with the incr's data", async () => {
    const r1 = join(lab.base, "r1");
    const run = lab.bunker([`--pg1-path=${r1}`, `--tablespace-map-all=${join(lab.base, "r1ts")}`, "--archive-mode=off", "--log-level-console=info", "restore"]);
    expect(run.code).toBe(0);
    const out = run.stdout;
    expect(out).toContain(`restore backup set ${labels[2]}`);
    expect(out).toContain(`map tablespace 'pg_tblspc/16384' to '${join(lab.base, "r1ts", "ts1")}'`);
    expect(run.stderr).toContain("WARN: file link 'ext_link.conf' will be restored as a file at the same location");
    expect(run.stderr).toContain("WARN: contents of directory link 'ext_link_dir' will be restored in a directory at the same location");
    lab.backrest([`--pg1-path=${join(lab.base, "p1")}`, `--tablespace-map-all=${join(lab.base, "p1ts")}`, "restore"]);

    const differs = (rel: string) => rel === "postgresql.auto.conf" || rel === "pg_tblspc/16384";
    expect(treeLines(tree(r1), differs)).toEqual(treeLines(tree(join(lab.base, "p1")), differs));
    expect(treeLines(tree(join(lab.base, "r1ts")))).toEqual(treeLines(tree(join(lab.base, "p1ts"))));
    expect(noTemp(r1)).toEqual([]);
    expect(tree(r1).get("ext_link_dir")!.type).toBe("dir");
    expect(readFileSync(join(r1, "ext_link_dir/afile"), "utf8")).toBe("hello\n");
    expect(tree(r1).get("ext_link.conf")!.type).toBe("file");
    expect(existsSync(join(r1, "recovery.signal"))).toBe(true);
    expect(existsSync(join(r1, "tablespace_map"))).toBe(false);
    const auto = readFileSync(join(r1, "postgresql.auto.conf"), "utf8");
    expect(auto).toMatch(/\n\n# Recovery settings generated by pgbunker restore on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\narchive_mode = 'off'\nrestore_command = '\S+\/dist\/pgbunker --config=\S+ --pg1-path=\S+\/r1 --stanza=demo archive-get %f "%p"'\n$/);

    const c = await startRestored(r1);
    started.push(c);
    expect(await checksums(c)).toEqual(data);
    const amcheck = c.tool("pg_amcheck", ["--all", "--install-missing"]);
    expect(amcheck.stderr + amcheck.stdout).toBe("");
    expect(amcheck.code).toBe(0);
    c.stop();
    const sums = c.tool("pg_checksums", ["--check", "-D", r1]);
    expect(sums.stdout).toContain("Bad checksums:  0");
    expect(sums.code).toBe(0);
  });

  test("--delta: removes what the backup lacks, rewrites only changed files; --force --delta trusts size and time", async () => {
    const d = join(lab.base, "d1");
    const args = [`--pg1-path=${d}`, `--tablespace-map=ts1=${join(lab.base, "d1ts")}`, `--set=${labels[1]}`];
    lab.bunkerOk([...args, "restore"]);
    const fresh = tree(d);
    const log = join(lab.base, "log", `${STANZA}-restore.log`);

    // Damage: delete, change in place (same size), grow, shrink, add files, a directory and a link.
    const accounts = (await lab.cluster.scalar("select pg_relation_filepath('pgbench_accounts')")) as string;
    const branches = (await lab.cluster.scalar("select pg_relation_filepath('pgbench_branches')")) as string;
    const asPg = (cmd: string[]) => expect(runAsPostgres(cmd).code).toBe(0);
    // Moved out of the data directory rather than removed: the inode of a removed file may be
    // reused for the restored copy, and the check below tells rewritten files by their inode.
    asPg(["mv", join(d, accounts), join(lab.base, "removed-accounts")]);
    asPg(["dd", "if=/dev/urandom", `of=${join(d, branches)}`, "bs=100", "count=1", "seek=1", "conv=notrunc", "status=none"]);
    asPg(["sh", "-c", `echo grown >> ${join(d, "base/1/1259")}`]);
    asPg(["truncate", "-s", "100", join(d, "base/1/1249")]);
    asPg(["sh", "-c", `echo x > ${join(d, "base/1/99999")} && mkdir -p ${join(d, "base/1/junkdir")} && echo y > ${join(d, "base/1/junkdir/f")} && ln -s /tmp ${join(d, "pg_wal/junklink")} && echo z > ${join(d, "pg_wal/000000010000000000000099")}`]);
    const logBefore = statSync(log).size;

    lab.bunkerOk([...args, "--delta", "restore"]);
    const after = tree(d);
    const recoverySettings = (rel: string) => rel === "postgresql.auto.conf";
    expect(treeLines(after, recoverySettings)).toEqual(treeLines(fresh, recoverySettings));
    // pg_control, the recovery settings and the signal file are always written, and removed first:
    // their new copy may get the old inode back, so only their content (above) says anything.
    const alwaysWritten = new Set(["global/pg_control", "postgresql.auto.conf", "recovery.signal"]);
    const rewritten = [...after].filter(([rel, e]) => e.type === "file" && !alwaysWritten.has(rel) && fresh.get(rel)!.ino !== e.ino).map(([rel]) => rel).sort();
    expect(rewritten).toEqual([accounts, branches, "base/1/1249"].sort());
    const logText = readFileSync(log).subarray(logBefore).toString().split("\n");
    // Kept after a checksum match: every non-empty manifest file (tablespace ones too) but the four damaged or always written.
    const m = Manifest.parse(readFileSync(join(lab.repo, "backup", STANZA, labels[1]!, "backup.manifest"), "utf8"));
    const nonEmpty = m.fileList().filter((f) => f.size > 0 && f.name !== "pg_data/tablespace_map").length;
    // postgresql.auto.conf matches too: the recovery settings appended to it are cut, then written again.
    expect(logText.filter((l) => l.includes(" - exists and matches backup")).length).toBe(nonEmpty - 4);
    expect(logText.some((l) => l.includes(`remove invalid file '${join(d, "base/1/99999")}'`))).toBe(true);
    expect(logText.some((l) => l.includes(`remove invalid link '${join(d, "pg_wal/junklink")}'`))).toBe(true);

    // Same size and modification time: --force --delta keeps it (as documented), --delta does not.
    const target = join(d, branches);
    const st = statSync(target);
    asPg(["dd", "if=/dev/urandom", `of=${target}`, "bs=100", "count=1", "seek=3", "conv=notrunc", "status=none"]);
    utimesSync(target, st.atime, st.mtime);
    lab.bunkerOk([...args, "--delta", "--force", "restore"]);
    expect(tree(d).get(branches)!.sha1).not.toBe(fresh.get(branches)!.sha1);

    // --delta (by checksum) repairs it; --type=preserve keeps the recovery settings and signal files there.
    asPg(["sh", "-c", `echo "# mine" >> ${join(d, "postgresql.auto.conf")} && mv ${join(d, "recovery.signal")} ${join(d, "standby.signal")}`]);
    const mine = readFileSync(join(d, "postgresql.auto.conf"), "utf8");
    lab.bunkerOk([...args, "--delta", "--type=preserve", "restore"]);
    const signals = (rel: string) => recoverySettings(rel) || rel.endsWith(".signal");
    expect(treeLines(tree(d), signals)).toEqual(treeLines(fresh, signals));
    expect(readFileSync(join(d, "postgresql.auto.conf"), "utf8")).toBe(mine);
    expect([existsSync(join(d, "standby.signal")), existsSync(join(d, "recovery.signal"))]).toEqual([true, false]);
  });

  test("--db-include: other user databases are sparse zeroed files; the cluster starts and they can be dropped", async () => {
    const s = join(lab.base, "s1");
    lab.bunkerOk([`--pg1-path=${s}`, `--tablespace-map-all=${join(lab.base, "s1ts")}`, "--db-include=db2", "--archive-mode=off", "restore"]);
    const db3 = (await lab.cluster.scalar("select oid from pg_database where datname = 'db3'")) as string;
    const zeroed = tree(join(s, "base", db3));
    expect(zeroed.get("PG_VERSION")!.size).toBe(3);
    const big = [...zeroed].filter(([n, e]) => n !== "PG_VERSION" && e.size > 0);
    expect(big.length).toBeGreaterThan(100);
    for (const [n] of big) expect(readFileSync(join(s, "base", db3, n)).every((b) => b === 0)).toBe(true);
    expect(statSync(join(s, "base", db3, big[0]![0])).blocks).toBe(0);

    const c = await startRestored(s);
    started.push(c);
    expect(await c.tableChecksum("t2", "db2")).toBe(data.db2);
    expect(await c.tableChecksum("pgbench_accounts")).toBe(data.accounts);
    await expect(c.query("select count(*) from t3", "db3")).rejects.toThrow();
    await c.query("drop database db3");
    c.stop();
  });

  test("bundled, encrypted repository (repo2): restored and started", async () => {
    const b = join(lab.base, "b1");
    lab.bunkerOk(["--repo=2", `--pg1-path=${b}`, `--tablespace-map-all=${join(lab.base, "b1ts")}`, "--archive-mode=off", "restore"]);
    const bundles = readdirSync(join(repo2, "backup", STANZA)).filter((l) => l.endsWith("F"));
    expect(existsSync(join(repo2, "backup", STANZA, bundles[0]!, "bundle", "1"))).toBe(true);
    const c = await startRestored(b);
    started.push(c);
    expect(await checksums(c)).toEqual(data);
    c.stop();
  });

  test("bad input: unknown set, running cluster, non-empty directory, corrupt repository file", async () => {
    const unknown = lab.bunker([`--pg1-path=${join(lab.base, "x1")}`, "--set=20200101-000000F", "restore"]);
    expect(unknown.code).toBe(75);
    expect(unknown.stderr).toContain("backup set 20200101-000000F is not valid");
    expect(existsSync(join(lab.base, "x1"))).toBe(false);

    const running = lab.bunker(["--delta", "restore"]);
    expect(running.code).toBe(38);
    expect(running.stderr).toContain("unable to restore while PostgreSQL is running");
    expect(running.stderr).toContain(`presence of 'postmaster.pid' in '${lab.cluster.dataDir}'`);

    const busy = mkdirAsPostgres(join(lab.base, "busy"));
    writeFileSync(join(busy, "keep.txt"), "mine\n");
    const nonEmpty = lab.bunker([`--pg1-path=${busy}`, `--tablespace-map-all=${join(lab.base, "busyts")}`, "restore"]);
    expect(nonEmpty.code).toBe(40);
    expect(nonEmpty.stderr).toContain(`unable to restore to path '${busy}' because it contains files`);
    expect(readdirSync(busy)).toEqual(["keep.txt"]);
    // --delta does not empty a directory that is not a data directory either.
    expect(lab.bunker([`--pg1-path=${busy}`, `--tablespace-map-all=${join(lab.base, "busyts")}`, "--delta", "restore"]).code).toBe(40);
    expect(readdirSync(busy)).toEqual(["keep.txt"]);

    // A repository file replaced by another valid lz4 file: size/SHA-1 check names it, nothing half-written.
    // (Its manifest also names an owner this host lacks: as non-root that is a warning.)
    const bad = badRepo();
    const m = Manifest.parse(readFileSync(join(bad, "backup", STANZA, labels[2]!, "backup.manifest"), "utf8"));
    const victim = m.fileList().filter((f) => f.reference === labels[0] && f.name.startsWith("pg_data/base/")).sort((a, b) => b.size - a.size)[0]!;
    const other = m.fileList().find((f) => f.reference === labels[0] && f.size > 0 && f.size < victim.size && f.name.startsWith("pg_data/base/"))!;
    const repoFile = (name: string) => join(bad, "backup", STANZA, labels[0]!, `${name}.lz4`);
    writeFileSync(repoFile(victim.name), readFileSync(repoFile(other.name)));
    const out = join(lab.base, "x2");
    const corrupt = lab.bunker([`--repo1-path=${bad}`, `--pg1-path=${out}`, `--tablespace-map-all=${join(lab.base, "x2ts")}`, "restore"]);
    expect(corrupt.code).toBe(26);
    expect(corrupt.stderr).toContain("WARN: unknown user 'ghost-user' in backup manifest mapped to current user");
    expect(corrupt.stderr).toContain(`unable to restore '${victim.name}' from '${repoFile(victim.name)}'`);
    expect(corrupt.stderr).toMatch(/has size \d+ but \d+ was expected|has checksum [0-9a-f]{40} but [0-9a-f]{40} was expected/);
    expect(existsSync(join(out, victim.name.replace(/^pg_data\//, "")))).toBe(false);
    expect(existsSync(join(out, "global/pg_control"))).toBe(false);
    // Only verified files are in place; pg_control (if it came before the failure) waits under its temp name.
    expect(noTemp(out).filter((n) => n !== "backup.manifest" && n !== "global/pg_control.pgbunker.tmp")).toEqual([]);

    // The interrupted restore is recognised as a data directory: --force rewrites it from the good repository.
    // Nothing is trusted without --delta: every file is written again (told by the log, not by
    // inodes: the removed files' inodes may come back for the new copies).
    const log = join(lab.base, "log", `${STANZA}-restore.log`);
    const logBefore = statSync(log).size;
    lab.bunkerOk([`--pg1-path=${out}`, `--tablespace-map-all=${join(lab.base, "x2ts")}`, "--force", "--process-max=2", "--log-level-console=warn", "--type=immediate", "--target-action=promote", "restore"]);
    expect(existsSync(join(out, "global/pg_control"))).toBe(true);
    expect(noTemp(out)).toEqual([]);
    const logText = readFileSync(log).subarray(logBefore).toString().split("\n");
    expect(logText.filter((l) => l.includes(" - exists and matches backup"))).toEqual([]);
    const restoredFiles = logText.filter((l) => / restore file .* \(\d/.test(l));
    expect(restoredFiles.length).toBe(m.fileList().filter((f) => f.name !== "pg_data/tablespace_map").length);
    // restore_command: this executable's archive-get with the command-line options archive-get understands.
    expect(readFileSync(join(out, "postgresql.auto.conf"), "utf8").split("\n").slice(-5).join("\n")).toBe(
      `restore_command = '${join(import.meta.dir, "../../dist/pgbunker")} --config=${lab.config} --pg1-path=${out} --stanza=${STANZA} archive-get %f "%p"'\n` +
        "recovery_target = 'immediate'\nrecovery_target_action = 'promote'\nrecovery_target_timeline = 'current'\n",
    );
  });

  test("as root: owners and modes from the manifest; a user missing on this host is a clear error", () => {
    const o = join(lab.base, "o1");
    const links = join(lab.base, "o1links");
    const root = bunkerAsRoot(env, [`--pg1-path=${o}`, `--tablespace-map-all=${join(lab.base, "o1ts", "deep")}`, "--link-all", `--link-map=ext_link_dir=${links}/dir`, `--link-map=ext_link.conf=${links}/x.conf`, "restore"]);
    expect(root.stderr).toBe("");
    expect(root.code).toBe(0);
    // --link-all with --link-map: the links point to the new places, which hold the contents.
    expect(tree(o).get("ext_link_dir")!.link).toBe(`${links}/dir`);
    expect(tree(o).get("ext_link.conf")!.link).toBe(`${links}/x.conf`);
    expect(readFileSync(join(links, "dir/afile"), "utf8")).toBe("hello\n");
    expect(readFileSync(join(links, "x.conf"), "utf8")).toBe("# extra\n");
    for (const p of [o, join(o, "PG_VERSION"), join(o, "base/1"), join(lab.base, "o1ts"), join(lab.base, "o1ts/deep/ts1"), links, join(o, "ext_link_dir"), join(links, "x.conf")]) {
      const st = lstatSync(p);
      expect({ p, uid: st.uid, gid: st.gid }).toEqual({ p, uid: PG_UID, gid: PG_GID });
    }
    expect(statSync(join(o, "PG_VERSION")).mode & 0o777).toBe(0o600);
    expect(statSync(join(o, "base")).mode & 0o777).toBe(0o700);

    // A backup whose files belong to a user this host does not have: refused before anything is written.
    const r = bunkerAsRoot(env, [`--repo1-path=${badRepo()}`, `--pg1-path=${join(lab.base, "o2")}`, `--tablespace-map-all=${join(lab.base, "o2ts")}`, "restore"]);
    expect(r.code).toBe(89);
    expect(r.stderr).toContain("user 'ghost-user' of the backup manifest does not exist on this host");
    expect(existsSync(join(lab.base, "o2"))).toBe(false);
  });

  test("tablespace restored in place, where the backup found it", async () => {
    const c = lab.cluster;
    c.stop();
    renameSync(c.dataDir, `${c.dataDir}.orig`);
    renameSync(join(lab.base, "ts1"), join(lab.base, "ts1.orig"));
    mkdirAsPostgres(join(lab.base, "ts1"));
    lab.bunkerOk(["--archive-mode=off", "restore"]);
    expect(readdirSync(join(lab.base, "ts1"))).toEqual(["PG_15_202209061"]);
    expect(tree(c.dataDir).get("pg_tblspc/16384")!.link).toBe(join(lab.base, "ts1"));
    // The same cluster object (same port) on the restored directory; archiving off, as for the others.
    c.writeConf({ archive_mode: "off" });
    await c.startAndWaitPromoted();
    expect(await checksums(c)).toEqual(data);
    c.stop();
  });
});

