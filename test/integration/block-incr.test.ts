/**
 * Block incremental backups (repoN-block=y, pgBackRest's format): pgBackRest 2.59.1 writes a
 * full → incr → incr chain into repo1 (bundled, block incremental, pgbench between the backups)
 * and pgbunker restores and verifies it, replayed to a named restore point and compared on table
 * data; a delta restore onto a data directory that differs in a few pages gives the same files.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Manifest } from "../../src/repo/manifest.ts";
import { type Cluster, mkdirAsPostgres, runAsPostgres } from "../harness/cluster.ts";
import { PGBACKREST_BIN } from "../harness/pgbunker.ts";
import type { StanzaEnv } from "../harness/stanza.ts";
import { makeStanza, removeStanza, STANZA, tree, treeLines } from "./restore-lib.ts";

const RP = "block_rp";
const PGBR = { bin: PGBACKREST_BIN["2.59"] };
/** pgBackRest's block incremental settings for repo1 (pgbunker reads the manifest, not these). */
const BLOCK_OPTS = ["--repo1-bundle", "--repo1-block"];
let env: StanzaEnv;
const labels: string[] = [];
/** Table data by backup label, and at the restore point. */
const dataAt = new Map<string, string>();

/** Row count and an order-independent digest of every pgbench table and of t. */
async function snapshot(c: Cluster): Promise<string> {
  const parts: string[] = [];
  for (const t of ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history", "t"]) parts.push(`${t}=${await c.tableChecksum(t)}`);
  return parts.join(" ");
}

function pgbench(transactions: number): void {
  env.cluster.mustTool("pgbench", ["-n", "-c", "1", "-t", String(transactions)]);
}

async function backrestBackup(type: string): Promise<string> {
  env.backrestOk([`--type=${type}`, ...BLOCK_OPTS, "backup"], PGBR);
  const info = JSON.parse(env.backrestOk(["info", "--output=json"], PGBR))[0].backup as { label: string }[];
  const label = info.at(-1)!.label;
  labels.push(label);
  dataAt.set(label, await snapshot(env.cluster));
  return label;
}

const manifestOf = (label: string) => Manifest.parse(readFileSync(join(env.repo, "backup", STANZA, label, "backup.manifest"), "utf8"));

beforeAll(async () => {
  // Named pgbackrest.conf: pgBackRest's backup wants its name in archive_command, which runs pgbunker.
  env = await makeStanza({ archiver: "pgbunker", configName: "pgbackrest.conf" });
  const c = env.cluster;
  c.pgbenchInit(2);
  await c.query("create table t (id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1, 3000) g");
  await backrestBackup("full");
  pgbench(300);
  await c.query("update t set v = 'changed' where id % 500 = 0");
  await backrestBackup("incr");
  pgbench(300);
  await c.query("delete from t where id > 2900");
  await backrestBackup("incr");
  pgbench(50);
  await c.query(`select pg_create_restore_point('${RP}')`);
  dataAt.set(RP, await snapshot(c));
  pgbench(50);
  await env.archiveNow();
}, 240_000);

afterAll(async () => {
  await removeStanza(env);
});

describe("pgBackRest 2.59.1's block incremental chain", () => {
  test("the chain really is block incremental: the incrs store blocks of files their priors hold", () => {
    const incr = manifestOf(labels[2]!);
    const block = incr.fileList().filter((f) => f.blockIncr !== undefined && f.blockIncr.mapSize > 0);
    expect(block.length).toBeGreaterThan(0);
    // A changed relation is stored again in this backup (with a map that also points into older ones).
    expect(block.some((f) => f.reference === undefined)).toBe(true);
    expect(block.some((f) => f.reference !== undefined)).toBe(true);
  });

  test("pgbunker restores each backup (end of backup) with the data it held", async () => {
    for (const label of labels) {
      const c = await env.restoreAndStart("pgbunker", label);
      expect({ label, data: await snapshot(c) }).toEqual({ label, data: dataAt.get(label)! });
      c.stop("immediate");
    }
  });

  test("pgbunker restores the last incr replayed to the named restore point", async () => {
    const c = await env.restoreAndStart("pgbunker", labels[2]!, ["--type=name", `--target=${RP}`, "--target-action=promote"]);
    expect(await snapshot(c)).toBe(dataAt.get(RP)!);
    c.stop("immediate");
  });

  test("pgbunker's restore is the same tree as pgBackRest's own", () => {
    const ours = mkdirAsPostgres(join(env.base, "ours"));
    const theirs = mkdirAsPostgres(join(env.base, "theirs"));
    env.runOk([`--pg1-path=${ours}`, `--set=${labels[2]}`, "restore"]);
    env.backrestOk([`--pg1-path=${theirs}`, `--set=${labels[2]}`, "restore"], PGBR);
    const skip = (rel: string) => rel === "postgresql.auto.conf" || rel === "backup_label" || rel === "global/pg_control";
    expect(treeLines(tree(ours), skip)).toEqual(treeLines(tree(theirs), skip));
  });

  test("delta restore onto a data directory that differs in a few pages", () => {
    const dir = join(env.base, "ours");
    // Damage one 8 KiB page in each of the largest relation files, and truncate another.
    const files = [...tree(dir)].filter(([rel, e]) => rel.startsWith("base/") && e.type === "file" && e.size > 64 * 1024).sort((a, b) => b[1].size - a[1].size);
    expect(files.length).toBeGreaterThan(2);
    for (const [rel] of files.slice(0, 2))
      expect(runAsPostgres(["dd", "if=/dev/urandom", `of=${join(dir, rel)}`, "bs=8192", "seek=3", "count=1", "conv=notrunc"]).code).toBe(0);
    expect(runAsPostgres(["truncate", "-s", "8192", join(dir, files[2]![0])]).code).toBe(0);
    const before = treeLines(tree(join(env.base, "theirs")));
    env.runOk([`--pg1-path=${dir}`, `--set=${labels[2]}`, "--delta", "restore"]);
    const skip = (rel: string) => rel === "postgresql.auto.conf" || rel === "backup_label" || rel === "global/pg_control";
    expect(treeLines(tree(dir), skip)).toEqual(before.filter((l) => !skip(l.split(" ")[0]!)));
  });

  test("verify: pgbunker finds the chain valid, as pgBackRest does", () => {
    const ours = env.run(["--log-level-console=warn", "verify", "--output=text", "--verbose"]);
    expect({ code: ours.code, err: ours.stderr }).toEqual({ code: 0, err: "" });
    for (const l of labels) expect(ours.stdout).toContain(`backup: ${l}, status: valid`);
    const theirs = env.backrest(["--log-level-console=warn", "verify", "--output=text", "--verbose"], PGBR);
    expect(theirs.code).toBe(0);
    expect(ours.stdout).toBe(theirs.stdout);
  });

  test("verify finds a damaged block in a prior backup that the latest map refers to", () => {
    const bad = env.copyRepo("repo-damaged");
    // The full's bundle holds blocks the incrs refer to; flip bytes inside its largest bundle.
    const bundleDir = join(bad, "backup", STANZA, labels[0]!, "bundle");
    const biggest = readdirSync(bundleDir).map((n) => join(bundleDir, n)).sort((a, b) => readFileSync(b).length - readFileSync(a).length)[0]!;
    const bytes = readFileSync(biggest);
    expect(runAsPostgres(["sh", "-c", `printf 'XXXXXXXX' | dd of=${biggest} bs=1 seek=${Math.floor(bytes.length / 2)} conv=notrunc`]).code).toBe(0);
    const r = env.run([`--repo1-path=${bad}`, "--log-level-console=warn", "verify", "--output=text"]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/invalid/);
  });
});
