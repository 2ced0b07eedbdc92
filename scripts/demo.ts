/**
 * The demo (README's first command): pgbunker's main job on a throwaway cluster.
 *
 *   a PostgreSQL 15 cluster with pgbench data, archiving WAL through pgbunker archive-push
 *   → full backup → changes (pgbench) → incremental backup → a named restore point
 *   → restore into a new directory (recovery to that point through pgbunker archive-get)
 *   → the restored cluster started and its data compared with the original
 *   → a short summary: sizes, times, MB/s, result.
 *
 * Everything it made (clusters, repository, logs) is removed at the end, also on failure.
 * DEMO_SCALE (default 10) sets the pgbench scale; DEMO_PROCESS_MAX (default 2) the workers.
 */
import { readdirSync, lstatSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Cluster, tempDir } from "../test/harness/cluster.ts";
import { BINARY, pgbunker, writeConfig } from "../test/harness/pgbunker.ts";

const SCALE = Number(process.env.DEMO_SCALE ?? 10);
const PROCESS_MAX = Number(process.env.DEMO_PROCESS_MAX ?? 2);
const STANZA = "demo";
const TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"];

const MiB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const rate = (bytes: number, ms: number) => `${(bytes / MiB / Math.max(ms / 1000, 0.001)).toFixed(1)} MiB/s`;

function step(text: string): void {
  process.stdout.write(`→ ${text}\n`);
}

/** Bytes of the regular files under a directory (links not followed). */
function treeBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += treeBytes(p);
    else if (e.isFile()) total += lstatSync(p).size;
  }
  return total;
}

/** Run pgbunker (as postgres) and return how long it took; stop the demo if it fails. */
function timed(args: string[]): { ms: number; out: string } {
  const t = performance.now();
  const r = pgbunker(args);
  const ms = performance.now() - t;
  if (r.code !== 0) throw new Error(`pgbunker ${args.join(" ")} failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
  return { ms, out: r.stdout };
}

async function checksums(c: Cluster): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of TABLES) out[t] = await c.tableChecksum(t);
  return out;
}

async function main(): Promise<boolean> {
  const base = tempDir("pgbunker-demo-");
  const clusters: Cluster[] = [];
  const cleanup = async () => {
    for (const c of clusters) if (c.running()) c.stop("immediate");
    rmSync(base, { recursive: true, force: true });
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const)
    process.on(sig, () => {
      void cleanup().then(() => process.exit(130));
    });

  try {
    const conf = join(base, "pgbunker.conf");
    const repo = join(base, "repo");
    step(`PostgreSQL 15 cluster with pgbench data (scale ${SCALE}), WAL archived by pgbunker`);
    const origin = await Cluster.create({
      baseDir: base,
      name: "origin",
      conf: { archive_mode: "on", archive_command: `'${BINARY} --config=${conf} --stanza=${STANZA} archive-push %p'` },
    });
    clusters.push(origin);
    writeConfig(conf, {
      global: {
        "repo1-path": repo,
        "log-path": join(base, "log"),
        "lock-path": join(base, "lock"),
        "spool-path": join(base, "spool"),
        "log-level-console": "warn",
        "start-fast": true,
        "process-max": PROCESS_MAX,
        "repo1-retention-full": 2,
      },
      [STANZA]: { "pg1-path": origin.dataDir, "pg1-port": origin.port, "pg1-socket-path": origin.socketDir },
    });
    const cfg = [`--config=${conf}`, `--stanza=${STANZA}`];
    origin.start();
    timed([...cfg, "stanza-create"]);
    origin.pgbenchInit(SCALE);
    const dbBytes = Number(await origin.scalar("select sum(pg_database_size(oid)) from pg_database"));

    step("full backup");
    const full = timed([...cfg, "--type=full", "backup"]);
    const repoAfterFull = treeBytes(repo);

    step("changes: 5 s of pgbench");
    origin.mustTool("pgbench", ["-c", "2", "-T", "5", "-n", "postgres"]);

    step("incremental backup");
    const incr = timed([...cfg, "--type=incr", "backup"]);
    const repoAfterIncr = treeBytes(repo);

    // The point to recover to: recorded data, then a named restore point, then WAL archived.
    const expected = await checksums(origin);
    const rows = await origin.scalar("select count(*) from pgbench_accounts");
    await origin.query("select pg_create_restore_point('demo')");
    await origin.query("insert into pgbench_history (tid, bid, aid, delta, mtime) values (1, 1, 1, 1, now())"); // after the point: must not come back
    const segment = await origin.scalar("select pg_walfile_name(pg_switch_wal())");
    const deadline = Date.now() + 60_000;
    while ((await origin.scalar(`select coalesce(last_archived_wal >= '${segment}', false) from pg_stat_archiver`)) !== "true") {
      if (Date.now() > deadline) throw new Error("WAL was not archived in time");
      await Bun.sleep(100);
    }

    step("restore into a new directory (recovery to the restore point through archive-get)");
    const target = join(base, "restored");
    const restore = timed([...cfg, `--pg1-path=${target}`, "--type=name", "--target=demo", "--target-action=promote", "--archive-mode=off", "restore"]);
    const restoredBytes = treeBytes(target);

    step("start the restored cluster and compare its data with the original");
    const copy = await Cluster.attach(target);
    clusters.push(copy);
    const t = performance.now();
    await copy.startAndWaitPromoted();
    const recoveryMs = performance.now() - t;
    const found = await checksums(copy);
    const same = TABLES.filter((tb) => found[tb] === expected[tb]);
    const ok = same.length === TABLES.length;

    const lines = [
      "",
      `pgbunker demo: PostgreSQL 15, pgbench scale ${SCALE}, process-max ${PROCESS_MAX}`,
      `  database size        ${mib(dbBytes)}`,
      `  full backup          ${secs(full.ms).padEnd(8)} ${rate(dbBytes, full.ms).padEnd(12)} repository ${mib(repoAfterFull)} (lz4, with WAL)`,
      `  incremental backup   ${secs(incr.ms).padEnd(8)} ${"".padEnd(12)} repository +${mib(repoAfterIncr - repoAfterFull)}`,
      `  restore              ${secs(restore.ms).padEnd(8)} ${rate(restoredBytes, restore.ms).padEnd(12)} ${mib(restoredBytes)} written`,
      `  recovery + start     ${secs(recoveryMs)}`,
      `  data                 ${same.length}/${TABLES.length} pgbench tables identical (${rows} accounts)${ok ? "" : `; differ: ${TABLES.filter((tb) => !same.includes(tb)).join(", ")}`}`,
      `  result               ${ok ? "PASS" : "FAIL"}`,
      "",
    ];
    process.stdout.write(lines.join("\n"));
    return ok;
  } finally {
    step("removing everything the demo made");
    await cleanup();
  }
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  (e) => {
    process.stderr.write(`demo failed: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
