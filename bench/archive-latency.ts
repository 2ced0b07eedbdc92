/**
 * Per-segment latency of archive-push and archive-get, pgbunker vs pgBackRest 2.45 and 2.59.1, on
 * the same real WAL segments (pgbench WAL from a PostgreSQL 15 cluster), as PostgreSQL runs them: one
 * process per segment. Also the time an asynchronous push (process-max=2) takes to drain a queue.
 *
 *   bun bench/archive-latency.ts [segments=12] [rounds=1] [--before=PATH] [--push-only]
 *
 * --before=PATH also runs another pgbunker executable (an earlier build: its dist/ copied aside)
 * in the same turns, for a before/after in one run. --push-only skips archive-get and the
 * asynchronous drain.
 *
 * All tools run as the same user with file logging off, one call at a time, taking turns per
 * segment so that machine load affects them alike. Wall time is spawn to exit; CPU time is the
 * child's user+system time. Every fetched segment is compared with the original.
 */
import { chownSync, copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { Cluster, PG_GID, PG_UID, tempDir } from "../test/harness/cluster.ts";
import { BINARY, ensureBuilt } from "../test/harness/pgbunker.ts";

const positional = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const flag = (name: string) => process.argv.slice(2).find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
const SEGMENTS = Number(positional[0] ?? 12);
const ROUNDS = Number(positional[1] ?? 1);
const BEFORE = flag("before")?.split("=")[1];
const PUSH_ONLY = flag("push-only") !== undefined;
const TYPES = ["lz4", "gz", "none"] as const;
// pgBackRest 2.59.1 is the bench's own build (/work/shared/anchors/build-pgbackrest.sh); 2.45 is Debian's.
const TOOLS: Record<string, string[]> = {
  pgbunker: [BINARY],
  ...(BEFORE ? { "pgbunker-before": [BEFORE] } : {}),
  "pgbackrest-2.45": ["pgbackrest"],
  "pgbackrest-2.59.1": ["/opt/pgbackrest-2.59.1/bin/pgbackrest"],
};
type Tool = string;

interface Sample {
  wall: number;
  cpu: number;
}

function run(tool: Tool, conf: string, args: string[], cwd = "/tmp"): Sample {
  const started = performance.now();
  const r = Bun.spawnSync(["runuser", "-u", "postgres", "--", ...TOOLS[tool]!, `--config=${conf}`, "--stanza=bench", ...args], { stdout: "pipe", stderr: "pipe", cwd });
  const wall = performance.now() - started;
  if (r.exitCode !== 0) throw new Error(`${tool} ${args.join(" ")} exited ${r.exitCode}: ${r.stderr.toString()}`);
  const cpu = r.resourceUsage ? Number(r.resourceUsage.cpuTime.user + r.resourceUsage.cpuTime.system) / 1000 : Number.NaN;
  return { wall, cpu };
}

function stats(xs: number[]): { median: number; p90: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, p90: s[Math.min(s.length - 1, Math.floor(s.length * 0.9))]! };
}

const sha1 = (p: string) => new Bun.CryptoHasher("sha1").update(readFileSync(p)).digest("hex");

async function main(): Promise<void> {
  ensureBuilt();
  const base = tempDir("pgbunker-bench-");
  const cluster = await Cluster.create({ baseDir: base });
  try {
    // Real WAL: pgbench's load, full 16 MiB segments.
    cluster.start();
    cluster.mustTool("pgbench", ["-i", "-s", String(Math.max(4, SEGMENTS)), "-q"]);
    await cluster.query("checkpoint");
    cluster.stop();
    const walDir = join(base, "wal");
    mkdirSync(walDir);
    chownSync(walDir, PG_UID, PG_GID);
    const segments = readdirSync(join(cluster.dataDir, "pg_wal")).filter((f) => /^[0-9A-F]{24}$/.test(f)).sort().slice(0, SEGMENTS);
    for (const s of segments) {
      copyFileSync(join(cluster.dataDir, "pg_wal", s), join(walDir, s));
      chownSync(join(walDir, s), PG_UID, PG_GID);
    }

    const results: Record<string, Sample[]> = {};
    const add = (key: string, s: Sample) => (results[key] ??= []).push(s);
    for (let round = 0; round < ROUNDS; round++) {
      for (const type of TYPES) {
        const confs = {} as Record<Tool, string>;
        for (const tool of Object.keys(TOOLS) as Tool[]) {
          const dir = join(base, `${tool}-${type}-${round}`);
          mkdirSync(join(dir, "out"), { recursive: true });
          Bun.spawnSync(["chown", "-R", "postgres:postgres", dir]);
          const conf = join(dir, "bench.conf");
          writeFileSync(
            conf,
            `[global]\nrepo1-path=${dir}/repo\nlock-path=${dir}/lock\nlog-path=${dir}\nlog-level-file=off\nlog-level-console=off\ncompress-type=${type}\n\n[bench]\npg1-path=${cluster.dataDir}\n`,
          );
          chownSync(conf, PG_UID, PG_GID);
          run(tool, conf, ["--no-online", "stanza-create"]);
          confs[tool] = conf;
        }
        for (const seg of segments)
          for (const tool of Object.keys(TOOLS) as Tool[]) add(`${tool} push ${type}`, run(tool, confs[tool]!, ["archive-push", join(walDir, seg)]));
        if (!PUSH_ONLY)
        for (const seg of segments)
          for (const tool of Object.keys(TOOLS) as Tool[]) {
            const out = join(base, `${tool}-${type}-${round}`, "out", seg);
            add(`${tool} get ${type}`, run(tool, confs[tool]!, ["archive-get", seg, out]));
            if (sha1(out) !== sha1(join(walDir, seg))) throw new Error(`${tool} archive-get ${seg} (${type}) is not the original`);
          }
      }
    }

    const tools = Object.keys(TOOLS) as Tool[];
    console.log(`archive-push / archive-get per segment: ${segments.length} pgbench WAL segments x ${ROUNDS} round(s), PostgreSQL 15, one process per segment, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
    const ours = tools.filter((t) => t.startsWith("pgbunker"));
    const ratioCols = ours.flatMap((o) => ["2.45", "2.59.1"].map((v) => `${o} / ${v} wall (CPU)`));
    console.log(`| operation | compress | ${tools.map((t) => `${t} wall median (p90)`).join(" | ")} | ${tools.map((t) => `${t} CPU median`).join(" | ")} | ${ratioCols.join(" | ")} |`);
    console.log(`|---|---|${tools.map(() => "---|---|").join("")}${ratioCols.map(() => "---|").join("")}`);
    const f = (n: number) => n.toFixed(1);
    for (const op of PUSH_ONLY ? ["push"] : ["push", "get"])
      for (const type of TYPES) {
        const walls = new Map(tools.map((t) => [t, stats(results[`${t} ${op} ${type}`]!.map((s) => s.wall))]));
        const cpus = new Map(tools.map((t) => [t, stats(results[`${t} ${op} ${type}`]!.map((s) => s.cpu))]));
        const ratios = ours.flatMap((o) =>
          ["pgbackrest-2.45", "pgbackrest-2.59.1"].map((b) => `${(walls.get(o)!.median / walls.get(b)!.median).toFixed(2)}x (${(cpus.get(o)!.median / cpus.get(b)!.median).toFixed(2)}x)`),
        );
        console.log(`| archive-${op} | ${type} | ${tools.map((t) => `${f(walls.get(t)!.median)} ms (${f(walls.get(t)!.p90)})`).join(" | ")} | ${tools.map((t) => `${f(cpus.get(t)!.median)} ms`).join(" | ")} | ${ratios.join(" | ")} |`);
      }
    if (!PUSH_ONLY) await asyncDrain(base, cluster.dataDir, walDir, segments);
  } finally {
    await cluster.destroy();
    rmSync(base, { recursive: true, force: true });
  }
}

/** archive-async=y, process-max=2: time from the first archive_command call until every segment is pushed. */
async function asyncDrain(base: string, pgPath: string, walDir: string, segments: string[]): Promise<void> {
  console.log(`\nasynchronous archive-push (lz4, process-max=2): ${segments.length} segments ready, first archive_command call until all acknowledged`);
  for (const tool of Object.keys(TOOLS) as Tool[]) {
    const dir = join(base, `${tool}-async`);
    // A data directory of its own (pg_control copied), so both tools scan this pg_wal.
    const pg = join(dir, "pg");
    const wal = join(pg, "pg_wal");
    mkdirSync(join(wal, "archive_status"), { recursive: true });
    mkdirSync(join(pg, "global"));
    copyFileSync(join(pgPath, "global", "pg_control"), join(pg, "global", "pg_control"));
    for (const s of segments) {
      copyFileSync(join(walDir, s), join(wal, s));
      writeFileSync(join(wal, "archive_status", `${s}.ready`), "");
    }
    const conf = join(dir, "bench.conf");
    writeFileSync(
      conf,
      `[global]\nrepo1-path=${dir}/repo\nlock-path=${dir}/lock\nlog-path=${dir}\nspool-path=${dir}/spool\nlog-level-file=off\nlog-level-console=off\ncompress-type=lz4\narchive-async=y\nprocess-max=2\n\n[bench]\npg1-path=${pg}\n`,
    );
    Bun.spawnSync(["chown", "-R", "postgres:postgres", dir]);
    run(tool, conf, ["--no-online", "stanza-create"]);
    const started = performance.now();
    for (const s of segments) run(tool, conf, ["archive-push", `pg_wal/${s}`], pg);
    console.log(`- ${tool}: ${(performance.now() - started).toFixed(0)} ms for ${segments.length} segments`);
  }
}

await main();
