/**
 * Block incremental backups (repoN-block=y, pgBackRest's format), both directions on one cluster:
 * pgBackRest 2.59.1 writes a full → incr → incr chain into repo1 and pgbunker one into repo2 (both
 * bundled and block incremental, pgbench between the backups, each pair at the same data). Each
 * tool restores and verifies the other's chain, replayed to a named restore point and compared on
 * table data; a delta restore onto a data directory that differs in a few pages gives the same files.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, readdirSync, readFileSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { readBlockMap } from "../../src/repo/block-map.ts";
import type { Manifest } from "../../src/repo/manifest.ts";
import { type Cluster, mkdirAsPostgres, runAsPostgres, tempDir } from "../harness/cluster.ts";
import type { StanzaEnv } from "../harness/stanza.ts";
import { latestLabel, manifestAt, PGBR, printedLabel, snapshot as tables, storedBytes } from "./block-incr-lib.ts";
import { makeStanza, removeStanza, STANZA, tree, treeLines } from "./restore-lib.ts";

const RP = "block_rp";
let env: StanzaEnv;
/** pgBackRest's chain (repo1) and pgbunker's (repo2). */
const labels: string[] = [];
const ours: string[] = [];
/** Table data by backup label, and at the restore point. */
const dataAt = new Map<string, string>();

/** Row count and an order-independent digest of every pgbench table and of t. */
const snapshot = (c: Cluster) => tables(c, ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history", "t"]);

function pgbench(transactions: number): void {
  env.cluster.mustTool("pgbench", ["-n", "-c", "1", "-t", String(transactions)]);
}

/** The same change point backed up by both tools: pgBackRest into repo1, pgbunker into repo2. */
async function backupBoth(type: string): Promise<void> {
  env.backrestOk(["--repo=1", `--type=${type}`, "backup"], PGBR);
  const label = latestLabel(env, 1);
  labels.push(label);
  const data = await snapshot(env.cluster);
  dataAt.set(label, data);
  const mine = printedLabel(env.runOk(["--repo=2", `--type=${type}`, "--log-level-console=info", "backup"]));
  ours.push(mine);
  dataAt.set(`2:${mine}`, data);
}

const tmpBase = tempDir("pgb-block-");
const manifestOf = (label: string) => manifestAt(env.repo, label);

beforeAll(async () => {
  // Named pgbackrest.conf: pgBackRest's backup wants its name in archive_command, which runs pgbunker.
  env = await makeStanza({
    archiver: "pgbunker", configName: "pgbackrest.conf",
    global: { "repo1-bundle": true, "repo1-block": true, "repo2-path": join(tmpBase, "repo2"), "repo2-bundle": true, "repo2-block": true, "repo2-retention-full": 99 },
  });
  const c = env.cluster;
  c.pgbenchInit(2);
  await c.query("create table t (id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1, 3000) g");
  await backupBoth("full");
  pgbench(300);
  await c.query("update t set v = 'changed' where id % 500 = 0");
  await backupBoth("incr");
  pgbench(300);
  await c.query("delete from t where id > 2900");
  await backupBoth("incr");
  pgbench(50);
  await c.query(`select pg_create_restore_point('${RP}')`);
  dataAt.set(RP, await snapshot(c));
  pgbench(50);
  await env.archiveNow();
}, 240_000);

afterAll(async () => {
  await removeStanza(env, [tmpBase]);
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
      const c = await env.restoreAndStart("pgbunker", label, ["--repo=1", "--type=immediate", "--target-action=promote"]);
      expect({ label, data: await snapshot(c) }).toEqual({ label, data: dataAt.get(label)! });
      c.stop("immediate");
    }
  });

  test("pgbunker restores the last incr replayed to the named restore point", async () => {
    const c = await env.restoreAndStart("pgbunker", labels[2]!, ["--repo=1", "--type=name", `--target=${RP}`, "--target-action=promote"]);
    expect(await snapshot(c)).toBe(dataAt.get(RP)!);
    c.stop("immediate");
  });

  test("pgbunker's restore is the same tree as pgBackRest's own", () => {
    const ours = mkdirAsPostgres(join(env.base, "ours"));
    const theirs = mkdirAsPostgres(join(env.base, "theirs"));
    env.runOk(["--repo=1", `--pg1-path=${ours}`, `--set=${labels[2]}`, "restore"]);
    env.backrestOk(["--repo=1", `--pg1-path=${theirs}`, `--set=${labels[2]}`, "restore"], PGBR);
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
    env.runOk(["--repo=1", `--pg1-path=${dir}`, `--set=${labels[2]}`, "--delta", "restore"]);
    const skip = (rel: string) => rel === "postgresql.auto.conf" || rel === "backup_label" || rel === "global/pg_control";
    expect(treeLines(tree(dir), skip)).toEqual(before.filter((l) => !skip(l.split(" ")[0]!)));
  });

  test("verify: pgbunker finds the chain valid, as pgBackRest does", () => {
    const mine = env.run(["--repo=1", "--log-level-console=warn", "verify", "--output=text", "--verbose"]);
    expect({ code: mine.code, err: mine.stderr }).toEqual({ code: 0, err: "" });
    for (const l of labels) expect(mine.stdout).toContain(`backup: ${l}, status: valid`);
    const theirs = env.backrest(["--repo=1", "--log-level-console=warn", "verify", "--output=text", "--verbose"], PGBR);
    expect(theirs.code).toBe(0);
    expect(mine.stdout).toBe(theirs.stdout);
  });

  test("verify finds a damaged block in a prior backup that the latest map refers to", () => {
    const bad = env.copyRepo("repo-damaged");
    // The full's bundle holds blocks the incrs refer to; flip bytes inside its largest bundle.
    const bundleDir = join(bad, "backup", STANZA, labels[0]!, "bundle");
    const biggest = readdirSync(bundleDir).map((n) => join(bundleDir, n)).sort((a, b) => readFileSync(b).length - readFileSync(a).length)[0]!;
    const bytes = readFileSync(biggest);
    expect(runAsPostgres(["sh", "-c", `printf 'XXXXXXXX' | dd of=${biggest} bs=1 seek=${Math.floor(bytes.length / 2)} conv=notrunc`]).code).toBe(0);
    const r = env.run(["--repo=1", `--repo1-path=${bad}`, "--log-level-console=warn", "verify", "--output=text"]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/invalid/);
  });
});

/**
 * A block of `label`'s stored files that its map takes from the full (repo1, pgBackRest's chain,
 * unencrypted): the file, the numbers of its blocks in that super block and where it is in the full's stored file.
 */
function blockFromFull(label: string): { name: string; blocks: number[]; stored: string; offset: number; size: number } {
  const m = manifestOf(label);
  const fullRef = m.backup.reference.indexOf(labels[0]!);
  expect(fullRef).toBeGreaterThanOrEqual(0);
  for (const f of m.fileList()) {
    if (f.reference !== undefined || !f.blockIncr || f.blockIncr.mapSize === 0) continue;
    // Bundled, or (larger than the bundle limit) in its own .pgbi file.
    const stored = (l: string, bundleId: number | undefined) => join("backup", STANZA, l, ...(bundleId ? ["bundle", String(bundleId)] : [`${f.name}.pgbi`]));
    const bytes = readFileSync(join(env.repo, stored(label, f.bundleId)));
    const end = (f.bundleOffset ?? 0) + f.repoSize!;
    const items = readBlockMap(bytes.subarray(end - f.blockIncr.mapSize, end), f.blockIncr.blockSize, f.blockIncr.checksumSize);
    const i = items.findIndex((it) => it.reference === fullRef);
    if (i < 0) continue;
    const it = items[i]!;
    // Every block of the file in that super block.
    const blocks = items.flatMap((x, k) => (x.reference === fullRef && x.offset === it.offset ? [k] : []));
    return { name: f.name, blocks, stored: stored(labels[0]!, it.bundleId), offset: it.offset, size: it.size };
  }
  throw new Error(`no block of ${label} comes from the full`);
}

/** The report line of the last incr's stored file `name` (bundled or in its own file). */
const incrLine = (out: string, name: string) =>
  out.split("\n").find((l) => l.includes(`${labels[2]}/bundle/`) ? l.includes(`(${name})`) : l.includes(`${labels[2]}/${name}.pgbi`));

describe("verify checks every block a map refers to", () => {
  test("one byte changed inside a super block of the full that the last incr's map uses: reported for the incr, naming backup, file and block", () => {
    const target = blockFromFull(labels[2]!);
    const bad = env.copyRepo("repo-block-byte");
    const path = join(bad, target.stored);
    const at = target.offset + Math.floor(target.size / 2);
    const fd = openSync(path, "r+");
    const one = Buffer.alloc(1);
    readSync(fd, one, 0, 1, at);
    one[0] = one[0]! ^ 0x01;
    writeSync(fd, one, 0, 1, at);
    closeSync(fd);
    const r = env.run(["--repo=1", `--repo1-path=${bad}`, "--log-level-console=warn", "verify", "--output=text"]);
    expect(r.code).not.toBe(0);
    // The full's own stored bytes fail their SHA-1; the incr's do not, only the block check finds it.
    expect(r.stdout).toContain(`backup: ${labels[0]}, status: invalid`);
    expect(r.stdout).toContain(`backup: ${labels[2]}, status: invalid`);
    const line = incrLine(r.stdout, target.name);
    expect(line).toMatch(/^\s+checksum invalid: /);
    const named = new RegExp(`block (\\d+) of ${target.name}`).exec(line!);
    expect(target.blocks).toContain(Number(named![1]));
    expect(line).toContain(`backup ${labels[0]}`);
  });

  test("the full's stored file gone: every backup whose maps use it is reported missing blocks", () => {
    const target = blockFromFull(labels[2]!);
    const bad = env.copyRepo("repo-block-gone");
    expect(runAsPostgres(["rm", join(bad, target.stored)]).code).toBe(0);
    const r = env.run(["--repo=1", `--repo1-path=${bad}`, "--log-level-console=warn", "verify", "--output=text"]);
    expect(r.code).not.toBe(0);
    const line = incrLine(r.stdout, target.name);
    expect(line).toMatch(/^\s+missing: /);
    expect(line).toContain(`backup ${labels[0]}`);
  });
});

describe("pgbunker's block incremental chain", () => {
  const manifest2 = (label: string) => manifestAt(join(tmpBase, "repo2"), label);

  test("is block incremental as pgBackRest's is: maps in the incrs refer to blocks of earlier backups", () => {
    const m = manifest2(ours[2]!);
    expect(m.backup.blockIncr).toBe(true);
    expect(m.backup.bundleRaw).toBe(true);
    const block = m.fileList().filter((f) => f.blockIncr !== undefined && f.blockIncr.mapSize > 0);
    expect(block.some((f) => f.reference === undefined)).toBe(true);
    // The same files are stored by blocks, with the same block and checksum sizes, as in pgBackRest's chain.
    const theirs = manifestOf(labels[0]!);
    const sizes = (mm: Manifest) => mm.fileList().filter((f) => f.blockIncr).map((f) => `${f.name} ${f.blockIncr!.blockSize} ${f.blockIncr!.checksumSize}`);
    expect(sizes(manifest2(ours[0]!))).toEqual(sizes(theirs));
  });

  test("pgBackRest 2.59.1 lists and verifies it", () => {
    const info = JSON.parse(env.backrestOk(["--repo=2", "info", "--output=json"], PGBR))[0];
    expect(info.backup.map((b: { label: string }) => b.label)).toEqual(ours);
    expect(info.status.code).toBe(0);
    const theirs = env.backrest(["--repo=2", "--log-level-console=warn", "verify", "--output=text", "--verbose"], PGBR);
    expect({ code: theirs.code, out: theirs.stdout }).toEqual({ code: 0, out: expect.stringContaining("status: ok") });
    for (const l of ours) expect(theirs.stdout).toContain(`backup: ${l}, status: valid`);
    const mine = env.run(["--repo=2", "--log-level-console=warn", "verify", "--output=text", "--verbose"]);
    expect(mine.stdout).toBe(theirs.stdout);
  });

  test("pgBackRest 2.59.1 restores each backup with its data, and the last incr to the restore point", async () => {
    for (const label of ours) {
      const c = await env.restoreAndStart("pgbackrest-2.59", label, ["--repo=2", "--type=immediate", "--target-action=promote"]);
      expect({ label, data: await snapshot(c) }).toEqual({ label, data: dataAt.get(`2:${label}`)! });
      c.stop("immediate");
    }
    const c = await env.restoreAndStart("pgbackrest-2.59", ours[2]!, ["--repo=2", "--type=name", `--target=${RP}`, "--target-action=promote"]);
    expect(await snapshot(c)).toBe(dataAt.get(RP)!);
    c.stop("immediate");
  });

  test("repo-block without repo-bundle is refused before anything is written", () => {
    const before = readdirSync(join(tmpBase, "repo2", "backup", STANZA)).sort();
    const r = env.run(["--repo=2", "--no-repo2-bundle", "--type=incr", "backup"]);
    expect(r.code).toBe(31);
    expect(r.stderr + r.stdout).toContain("option 'repo2-block' not valid without option 'repo2-bundle'");
    expect(readdirSync(join(tmpBase, "repo2", "backup", STANZA)).sort()).toEqual(before);
  });

  test("pgbunker restores its own chain to the restore point", async () => {
    const c = await env.restoreAndStart("pgbunker", ours[2]!, ["--repo=2", "--type=name", `--target=${RP}`, "--target-action=promote"]);
    expect(await snapshot(c)).toBe(dataAt.get(RP)!);
    c.stop("immediate");
  });
});

describe("info sizes of a block incremental chain", () => {
  type Sizes = { label: string; info: Record<string, unknown> };
  const sizes = (json: string): Sizes[] => JSON.parse(json)[0].backup.map((b: Sizes) => ({ label: b.label, info: b.info }));

  for (const [repo, which] of [[1, "pgBackRest 2.59.1's"], [2, "pgbunker's"]] as const) {
    test(`${which} chain: pgbunker info --output=json shows pgBackRest's sizes, and each repo delta is the bytes that backup stored`, () => {
      const theirs = sizes(env.backrestOk([`--repo=${repo}`, "info", "--output=json"], PGBR));
      const mine = sizes(env.runOk([`--repo=${repo}`, "info", "--output=json"]));
      expect(mine).toEqual(theirs);
      const repoPath = repo === 1 ? env.repo : join(tmpBase, "repo2");
      for (const b of mine) {
        const r = b.info.repository as Record<string, number>;
        // Block incremental: the set's size is replaced by map sizes; the maps are part of the delta.
        expect(Object.keys(r).sort()).toEqual(["delta", "delta-map", "size-map"]);
        expect(r["delta-map"]!).toBeGreaterThan(0);
        expect(r["delta-map"]!).toBeLessThan(r.delta!);
        expect({ label: b.label, delta: r.delta }).toEqual({ label: b.label, delta: storedBytes(repoPath, b.label) });
      }
    });

    // Sizes are printed in 2.45's short form (info.test.ts), which rounds unlike 2.59.1's ("1MB" for its "1.1MB"): compare the lines' shape.
    test(`${which} chain: info text shows each backup's repo line as pgBackRest does (no set size)`, () => {
      const lines = (out: string) => out.split("\n").filter((l) => /^\s+(repo\d+:|database size:)/.test(l)).map((l) => l.replace(/\d+(\.\d)?[KMG]?B/g, "N"));
      const theirs = lines(env.backrestOk([`--repo=${repo}`, "info"], PGBR));
      expect(theirs).toContain(`            repo${repo}: backup size: N`);
      expect(theirs.length).toBe(6);
      expect(lines(env.runOk([`--repo=${repo}`, "info"]))).toEqual(theirs);
    });
  }
});
