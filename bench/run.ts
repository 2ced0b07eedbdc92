/**
 * pgbunker benchmark: pgbunker against pgBackRest 2.45 and 2.59.1 and pg_basebackup (plain, -z,
 * server-lz4, client-lz4) on one generated cluster, in one run; restores beside the disk's floor.
 *
 *   npm run bench                         # as root; default: 3GiB cluster, 3 repetitions, report → bench/RESULTS.md
 *   npm run bench -- --size=8GB           # larger, for the record
 *   bun bench/run.ts --help
 *
 * A cluster dominated by one big table (does one large file scale with process-max?) is its own
 * script, bench/big-table.ts: its data set and runs share nothing with the scenarios here.
 *
 * Runs as root: PostgreSQL and every tool run as user postgres (setpriv), and root reads /proc
 * of those processes for their memory. See bench/lib/scenarios.ts for what is measured and
 * bench/lib/measure.ts for how.
 */
import { readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { ROOT, SYSTEM_BIN } from "../test/harness/cluster.ts";
import { ensureBuilt } from "../test/harness/pgbunker.ts";
import { createEnv, dataDirBytes, PGBACKREST_2_59, type BackupTool, type BenchEnv } from "./lib/env.ts";
import { loadAverage } from "./lib/measure.ts";
import { parseOptions, USAGE, type BenchOptions } from "./lib/options.ts";
import { profileFullBackup } from "./lib/profile.ts";
import { median, renderReport, spliceReport } from "./lib/report.ts";
import { ensureFull, runFull, runIncr, runPush, runRestore, type BenchRun } from "./lib/scenarios.ts";

function sh(cmd: string[]): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  return (r.stdout.toString() + r.stderr.toString()).trim();
}

function machine(): string[] {
  const commit = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]);
  const dirty = sh(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "src", "native"]) ? " (with uncommitted changes)" : "";
  return [
    `CPU: ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores; RAM ${(totalmem() / 1024 ** 3).toFixed(0)} GiB; Linux ${sh(["uname", "-r"])}`,
    `file system of the work directory: ${sh(["sh", "-c", "df -T /tmp | tail -1 | awk '{print $2\" on \"$1}'"])}`,
    `pgbunker ${commit}${dirty} (Bun ${Bun.version}); "pgbackrest" = ${sh(["pgbackrest", "version"])}; "pgbackrest-2.59.1" = ${existsSync(PGBACKREST_2_59) ? sh([PGBACKREST_2_59, "version"]) : "not installed"}; ${sh([join(SYSTEM_BIN, "postgres"), "--version"])}`,
    `date: ${new Date().toISOString().replace(/\.\d+Z$/, "Z")}`,
  ];
}

export async function main(argv: string[]): Promise<number> {
  let opts: BenchOptions;
  try {
    const p = parseOptions(argv);
    if (p === "help") {
      console.log(USAGE);
      return 0;
    }
    opts = p;
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    console.error("bench/run.ts runs as root (PostgreSQL and the tools run as user postgres through setpriv)");
    return 2;
  }
  const log = (m: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);
  const binary = opts.binary ?? ensureBuilt();
  const started = performance.now();
  let env: BenchEnv | undefined;
  try {
    // pgBackRest 2.59.1 is built from ../shared/anchors (build-pgbackrest.sh); without it, 2.45 alone.
    const newest = existsSync(PGBACKREST_2_59);
    const versus: BackupTool[] = newest ? ["pgbackrest", "pgbackrest-2.59.1"] : ["pgbackrest"];
    env = await createEnv({ dir: opts.dir, size: opts.size, segments: opts.segments, binary, compare: opts.compare, versus, log });
    const run: BenchRun = { env, opts, samples: [], scenarios: [], notes: [], dataBytes: dataDirBytes(env.cluster.dataDir), log };
    if (opts.compare && !newest) run.notes.push(`pgBackRest 2.59.1 is not installed at ${PGBACKREST_2_59} (../shared/anchors/build-pgbackrest.sh builds it): compared with 2.45 only.`);
    log(`data directory: ${(run.dataBytes / 1024 ** 3).toFixed(2)} GiB without WAL; ${env.segments.length} WAL segments staged`);
    const groups = new Set(opts.only);
    if (groups.has("full")) await runFull(run);
    if (groups.has("incr") || groups.has("restore")) await ensureFull(run);
    if (groups.has("incr")) await runIncr(run);
    if (groups.has("restore")) await runRestore(run);
    if (groups.has("push")) await runPush(run);
    if (opts.profile) await profileFullBackup(run, join(ROOT, "bench"));

    const loads = run.samples.map((s) => s.load);
    run.notes.push(
      `Shared machine: the 1-minute load average at the start of the runs was ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} (median ${median(loads).toFixed(1)}) on ${cpus().length} cores; the tools took turns within every repetition and the medians are compared.`,
      "The cluster's files are in the page cache for every run (they are read again and again): the backups measure CPU and write cost, not the disk's read speed.",
      "pgbunker, pgbackrest (2.45) and pgbackrest-2.59.1 use the same configuration, each its own repository: start-fast, page checksums verified, default buffer-size and compress-level, archive-check on (archive_command pushes every segment with every tool, one after the other, the measured tool first), log-level-file=info. pg_basebackup (-c fast, WAL streamed) checks no pages and writes no per-file checksums: it does less work.",
    );
    const cluster = [
      `pgbench scale ${env.scale} + ${env.orderRows.toLocaleString("en")} rows of bench_orders (random digits text); data directory ${(run.dataBytes / 1024 ** 3).toFixed(2)} GiB without WAL, page checksums on`,
      `pgbench transactions before each incremental backup: 2 clients × ${opts.pgbenchTx}`,
    ];
    const command = (argv.length ? `npm run bench -- ${argv.join(" ")}` : "npm run bench") + "   # as root";
    const generated = renderReport({ scenarios: run.scenarios, samples: run.samples, command, machine: machine(), cluster, notes: run.notes });
    const out = opts.out.startsWith("/") ? opts.out : join(ROOT, opts.out);
    writeFileSync(out, spliceReport(existsSync(out) ? readFileSync(out, "utf8") : "# pgbunker benchmark results\n", generated));
    log(`report written to ${out} (${((performance.now() - started) / 1000).toFixed(0)}s in all; load average now ${loadAverage().toFixed(1)})`);
    return 0;
  } finally {
    if (env && opts.keep) {
      env.cluster.stop();
      log(`work directory kept (cluster stopped): ${env.dir}`);
    } else if (env) {
      await env.cluster.destroy().catch(() => {});
      rmSync(env.dir, { recursive: true, force: true });
    }
  }
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
