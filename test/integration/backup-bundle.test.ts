/**
 * The repository layouts pgBackRest 2.45 offers besides one file per file.
 *
 * repo-bundle: small files stored back to back in bundle files, as pgBackRest 2.45 stores them.
 * pgBackRest verifies and restores what pgbunker bundles (full and an incr referring to the full's
 * bundles); pgbunker's restore of the same set gives the same files; verify finds a flipped byte
 * inside a bundle; a bundled backup killed halfway resumes its large files and rewrites its bundles.
 *
 * repo-hardlink: a diff/incr also hard-links the prior backups' files it refers to.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Manifest } from "../../src/repo/manifest.ts";
import { mkdirAsPostgres } from "../harness/cluster.ts";
import { backupLabel } from "../harness/pgbunker.ts";
import { StanzaEnv } from "../harness/stanza.ts";
import { tree, treeLines } from "./restore-lib.ts";

let env: StanzaEnv;
/** Small limits, so this small cluster has several bundles and files stored on their own. */
const BUNDLE = ["--repo1-bundle", "--repo1-bundle-limit=64KiB", "--repo1-bundle-size=1MiB"];
const LIMIT = 64 * 1024;


beforeAll(async () => {
  env = await StanzaEnv.create({ global: { "log-level-console": "info" } });
  env.cluster.pgbenchInit(1);
  await env.cluster.query("create table wide as select g, md5(g::text) as v from generate_series(1, 20000) g");
  await env.settle();
}, 120_000);

afterAll(async () => {
  await env?.destroy();
});

describe("bundled backups (repo-bundle)", () => {
  let full = "";
  let incr = "";

  test("full: small files in bundles, large ones on their own, empty ones not stored; pgBackRest verifies it", () => {
    full = backupLabel(env.runOk([...BUNDLE, "--type=full", "--process-max=2", "backup"]));
    const m = env.manifest(full);
    expect(readFileSync(join(env.backupDir(full), "backup.manifest"), "utf8")).toContain("\nbackup-bundle=true\n");
    const files = m.fileList();
    const bundled = files.filter((f) => f.bundleId !== undefined);
    const alone = files.filter((f) => f.bundleId === undefined && f.size > 0);
    const empty = files.filter((f) => f.size === 0);
    expect(bundled.length).toBeGreaterThan(500);
    expect(bundled.every((f) => f.size > 0 && f.size <= LIMIT)).toBe(true);
    // backup_label is written after the copy, on its own, as pgBackRest does.
    expect(alone.filter((f) => f.name !== "pg_data/backup_label").every((f) => f.size > LIMIT)).toBe(true);
    expect(empty.length).toBeGreaterThan(10);
    expect(empty.every((f) => f.checksum === undefined && f.rck === undefined && f.bundleId === undefined)).toBe(true);

    // The bundles on disk are the ones the manifest names, and hold exactly their members' bytes.
    const ids = [...new Set(bundled.map((f) => f.bundleId!))].sort((a, b) => a - b);
    expect(ids.length).toBeGreaterThan(3);
    expect(readdirSync(join(env.backupDir(full), "bundle")).map(Number).sort((a, b) => a - b)).toEqual(ids);
    for (const id of ids) {
      const members = bundled.filter((f) => f.bundleId === id).sort((a, b) => (a.bundleOffset ?? 0) - (b.bundleOffset ?? 0));
      const end = members.at(-1)!;
      expect(readFileSync(join(env.backupDir(full), "bundle", String(id))).byteLength).toBe((end.bundleOffset ?? 0) + (end.repoSize ?? end.size));
    }
    const stored = readdirSync(join(env.backupDir(full), "pg_data"), { recursive: true }).filter((n) => String(n).endsWith(".lz4"));
    expect(stored.length).toBe(alone.length);

    const v = env.backrest(["verify", "--log-level-console=info"]);
    expect(v.stderr).toBe("");
    expect(v.code).toBe(0);
  });

  test("incr after changes refers to the full's bundles; pgBackRest restores it with the cluster's data, pgbunker restores the same files", async () => {
    await env.cluster.query("update pgbench_branches set bbalance = bbalance + 5");
    await env.cluster.query("create table after_full as select g from generate_series(1, 3000) g");
    incr = backupLabel(env.runOk([...BUNDLE, "--type=incr", "backup"]));
    const m = env.manifest(incr);
    const referenced = m.fileList().filter((f) => f.reference === full && f.bundleId !== undefined);
    expect(referenced.length).toBeGreaterThan(300);
    const own = m.fileList().filter((f) => f.reference === undefined && f.bundleId !== undefined);
    expect(own.length).toBeGreaterThan(0);
    expect(env.backrest(["verify"]).code).toBe(0);

    const want = { a: await env.cluster.tableChecksum("after_full"), b: await env.cluster.tableChecksum("pgbench_branches"), w: await env.cluster.tableChecksum("wide") };
    const theirs = await env.restoreAndStart("pgbackrest", incr);
    expect({ a: await theirs.tableChecksum("after_full"), b: await theirs.tableChecksum("pgbench_branches"), w: await theirs.tableChecksum("wide") }).toEqual(want);
    theirs.stop();

    const ours = mkdirAsPostgres(join(env.base, "ours"));
    const p1 = mkdirAsPostgres(join(env.base, "theirs-again"));
    env.runOk([`--pg1-path=${ours}`, `--set=${incr}`, "--process-max=2", "restore"]);
    env.backrestOk([`--pg1-path=${p1}`, `--set=${incr}`, "restore"]);
    const differs = (rel: string) => rel === "postgresql.auto.conf";
    expect(treeLines(tree(ours), differs)).toEqual(treeLines(tree(p1), differs));
  });

  test("verify (pgbunker and pgBackRest) finds a flipped byte inside a bundle", () => {
    const copy = env.copyRepo("repo-flipped");
    const m = env.manifest(full);
    const victim = m.fileList().find((f) => f.bundleId !== undefined && (f.bundleOffset ?? 0) > 0 && (f.repoSize ?? 0) > 100)!;
    const path = join(copy, "backup", env.stanza, full, "bundle", String(victim.bundleId));
    const bytes = readFileSync(path);
    bytes[victim.bundleOffset! + 50]! ^= 0xff;
    writeFileSync(path, bytes);
    const args = [`--repo1-path=${copy}`, "--log-level-console=warn", "verify", "--output=text"];
    const ours = env.run(args);
    const theirs = env.backrest(["--job-retry=0", ...args]);
    expect(ours.code).toBe(103);
    expect(ours.stdout).toContain(`checksum invalid: ${full}/bundle/${victim.bundleId}:${victim.bundleOffset} (${victim.name})`);
    // pgBackRest (exit 0, its verify reports in text) finds the same: every line of its report is in ours.
    expect(theirs.stdout).toContain(`backup: ${full}, status: invalid`);
    const mine = new Set(ours.stdout.split("\n"));
    for (const line of theirs.stdout.split("\n").filter((l) => l !== "")) expect({ line, found: mine.has(line) }).toEqual({ line, found: true });
  });

  test("killed halfway, the next bundled backup resumes the files stored on their own and writes the bundles again", async () => {
    await env.cluster.query("create table big as select g, md5(g::text) || md5((g * 7)::text) as v from generate_series(1, 150000) g");
    await env.cluster.query("checkpoint");
    const alone = (m: Manifest) => m.fileList().filter((f) => f.rck !== undefined && f.bundleId === undefined).length;
    const killed = await env.killBackupWhen([...BUNDLE, "--type=full", "--process-max=1", "--manifest-save-threshold=1"], incr, (m) => alone(m) >= 3);
    expect(alone(killed.partial)).toBeGreaterThanOrEqual(3);
    expect(existsSync(join(env.backupDir(killed.label), "backup.manifest"))).toBe(false);

    const r = env.run([...BUNDLE, "--type=full", "--process-max=2", "--log-level-console=detail", "backup"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`resumable backup ${killed.label} of same type exists`);
    expect(backupLabel(r.stdout)).toBe(killed.label);
    expect((r.stdout.match(/checksum resumed file/g) ?? []).length).toBeGreaterThanOrEqual(3);
    const m = env.manifest(killed.label);
    const ids = new Set(m.fileList().filter((f) => f.bundleId !== undefined).map((f) => String(f.bundleId)));
    expect(new Set(readdirSync(join(env.backupDir(killed.label), "bundle")))).toEqual(ids);
    expect(env.backrest(["verify"]).code).toBe(0);
    const c = await env.restoreAndStart("pgbunker", killed.label);
    expect(await c.tableChecksum("big")).toBe(await env.cluster.tableChecksum("big"));
    c.stop();
  });
});

describe("hard-linked backups (repo-hardlink)", () => {
  test("an incr hard-links every file it refers to into its own directory; pgBackRest verifies and restores it", async () => {
    const full = backupLabel(env.runOk(["--repo1-hardlink", "--type=full", "backup"]));
    expect(readFileSync(join(env.backupDir(full), "backup.manifest"), "utf8")).toContain("\noption-hardlink=true\n");
    await env.cluster.query("create table after_hardlink_full as select g from generate_series(1, 1000) g");
    const out = env.runOk(["--repo1-hardlink", "--type=incr", "backup"]);
    const incr = backupLabel(out);
    const m = env.manifest(incr);
    const referenced = m.fileList().filter((f) => f.reference === full);
    expect(referenced.length).toBeGreaterThan(500);
    expect(out).toContain(`hard-linked ${referenced.length} file(s) of prior backups into ${incr} (repo-hardlink)`);
    // The same inode as the full's copy: a link, not a second copy.
    for (const f of referenced) {
      const a = statSync(join(env.backupDir(full), `${f.name}.lz4`));
      const b = statSync(join(env.backupDir(incr), `${f.name}.lz4`));
      expect(`${f.name} ${b.ino} ${b.nlink}`).toBe(`${f.name} ${a.ino} 2`);
    }
    expect(env.backrest(["verify"]).code).toBe(0);
    const want = await env.cluster.tableChecksum("after_hardlink_full");
    const c = await env.restoreAndStart("pgbackrest", incr);
    expect(await c.tableChecksum("after_hardlink_full")).toBe(want);
    c.stop();
  });

  test("repo-hardlink with repo-bundle is refused before anything is written", () => {
    const before = readdirSync(join(env.repo, "backup", env.stanza)).sort();
    const r = env.run(["--repo1-hardlink", "--repo1-bundle", "--type=full", "backup"]);
    expect(r.code).toBe(31);
    expect(r.stderr).toContain("ERROR: [031]: option 'repo1-hardlink' cannot be used with 'repo1-bundle'");
    expect(readdirSync(join(env.repo, "backup", env.stanza)).sort()).toEqual(before);
  });
});
