/**
 * One full backup (lz4, process-max 2) of a cluster kept by `bench/run.ts --keep --dir=DIR`, under
 * `perf record -e cpu-clock`, summarised as bench/lib/profile.ts does (by component, by thread,
 * top symbols); prints user and system CPU of the backup. For quick before/after checks of CPU
 * per byte without a whole bench run (on a shared machine CPU time is what can be compared).
 *
 *   sudo bun bench/profile-cpu-backup.ts DIR [--tool=pgbunker|pgbackrest-2.59.1] [--binary=PATH] [--reps=N]
 *
 * The cluster is started (pg_ctl, as postgres) if it is not running, and left running.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SYSTEM_BIN } from "../test/harness/cluster.ts";
import { PGBACKREST_2_59 } from "./lib/env.ts";
import { parsePerfReport, sha1Range, summarizeProfile } from "./lib/profile.ts";

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const dir = args.find((a) => !a.startsWith("--"));
if (!dir) {
  console.error("usage: sudo bun bench/profile-cpu-backup.ts DIR [--tool=pgbunker|pgbackrest-2.59.1] [--binary=PATH] [--reps=N]");
  process.exit(2);
}
const tool = flag("tool") ?? "pgbunker";
const binary = flag("binary") ?? join(import.meta.dir, "../dist/pgbunker");
const reps = Number(flag("reps") ?? 1);
const exe = tool === "pgbunker" ? binary : tool === "pgbackrest" ? "/usr/bin/pgbackrest" : PGBACKREST_2_59;
const conf = join(dir, `${tool}.conf`);
const asPg = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"];

if (!existsSync(join(dir, "pg/postmaster.pid"))) {
  const r = Bun.spawnSync([...asPg, join(SYSTEM_BIN, "pg_ctl"), "-D", join(dir, "pg"), "-l", join(dir, "pg.log"), "-w", "start"], { stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) process.exit(1);
}

const tmp = mkdtempSync(join(tmpdir(), "pgbunker-profile-cpu-"));
try {
  // Read the cluster once so the backup finds it cached, as the benchmark's backups do.
  Bun.spawnSync(["sh", "-c", 'find "$1" -type f -exec cat {} + > /dev/null', "sh", join(dir, "pg")]);
  for (let rep = 1; rep <= reps; rep++) {
    const data = join(tmp, `perf-${rep}.data`);
    const t0 = performance.now();
    const r = Bun.spawnSync(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-o", data, "--", "/usr/bin/time", "-f", "%U %S", ...asPg,
      exe, `--config=${conf}`, "--stanza=bench", "--type=full", "--compress-type=lz4", "--process-max=2", "backup"], { stdout: "pipe", stderr: "pipe" });
    const wall = (performance.now() - t0) / 1000;
    const times = r.stderr.toString().trim().split("\n").at(-1)!.split(" ").map(Number);
    if (r.exitCode !== 0) throw new Error(`backup failed: ${r.stderr.toString()}`);
    const rows = parsePerfReport(Bun.spawnSync(["perf", "report", "-i", data, "--stdio", "--no-children", "-n", "--sort=comm,dso,sym"], { stdout: "pipe", stderr: "pipe" }).stdout.toString());
    const name = exe.split("/").pop();
    const sha1 = tool === "pgbunker" ? sha1Range(exe, rows) : undefined;
    const s = summarizeProfile(rows, (dso, addr) => sha1 !== undefined && dso === name && addr >= sha1[0] && addr <= sha1[1]);
    const pct = (n: number) => `${((n * 100) / s.total).toFixed(1).padStart(5)}%`;
    console.log(`## ${tool} rep ${rep}: wall ${wall.toFixed(2)}s (perf included), user ${times[0]}s, sys ${times[1]}s, ${s.total} samples`);
    for (const [k, n] of s.byComponent) console.log(`${pct(n)}  ${k}`);
    console.log("-- threads");
    for (const [k, n] of s.byThread.slice(0, 6)) console.log(`${pct(n)}  ${k}`);
    console.log("-- top symbols");
    for (const row of s.top.slice(0, 20)) console.log(`${pct(row.samples)}  ${row.comm?.padEnd(12)} ${row.dso.padEnd(28)} ${row.sym}`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
