/**
 * Block incremental (repo-block, issue 14): what an incr after a short pgbench run adds to the
 * repository, and how long it takes, for pgbunker block incr, pgBackRest 2.59.1 block incr and
 * pgbunker file-level incr, on the same changes.
 *
 *   sudo bun bench/block-incr.ts [--scale=20] [--seconds=10] [--dir=/var/tmp/pgbunker-bench]
 *       [--pgbackrest=/opt/pgbackrest-2.59.1/bin/pgbackrest] [--block-size-map=SIZE=BLOCK,...]
 *
 * Runs as root (the cluster and the tools run as user postgres through setpriv). Steps: a fresh
 * cluster (page checksums, pgbench -i -s SCALE); a full backup by each of the three (all lz4,
 * bundled, process-max 2, start-fast); pgbench for SECONDS (2 clients, fixed random seed); then an
 * incr by each, pgBackRest first (so pgbunker's incrs never see fewer changes: each backup's start
 * checkpoint flushes what pgbench left dirty, later ones find the same files). The cluster does not
 * archive and the backups use archive-check=n: this measures what is stored, not WAL.
 * "repo bytes" is every byte of the backup's directory (stored files, bundles, both manifests).
 * --block-size-map is passed to both block tools as repo1-block-size-map (pgBackRest's syntax),
 * to try other block sizes.
 */
import { join } from "node:path";
import { Cluster, mkdirAsPostgres } from "../test/harness/cluster.ts";
import { ensureBuilt, writeConfig } from "../test/harness/pgbunker.ts";
import { asPostgres, pgTool, toolEnv, treeBytes } from "./lib/env.ts";
import { loadAverage, measure } from "./lib/measure.ts";

const STANZA = "blk";
type Tool = "pgbackrest block" | "pgbunker block" | "pgbunker file";
const TOOLS: Tool[] = ["pgbackrest block", "pgbunker block", "pgbunker file"];

interface Opts {
  scale: number;
  seconds: number;
  dir: string;
  pgbackrest: string;
  blockSizeMap?: string;
}

function parse(argv: string[]): Opts {
  const o: Opts = { scale: 20, seconds: 10, dir: "/var/tmp/pgbunker-bench", pgbackrest: "/opt/pgbackrest-2.59.1/bin/pgbackrest" };
  for (const a of argv) {
    const m = /^--([a-z-]+)=(.*)$/.exec(a);
    if (!m) throw new Error(`expected --name=value, found '${a}'`);
    const [, k, v] = m as unknown as [string, string, string];
    if (k === "scale") o.scale = Number(v);
    else if (k === "seconds") o.seconds = Number(v);
    else if (k === "dir") o.dir = v;
    else if (k === "pgbackrest") o.pgbackrest = v;
    else if (k === "block-size-map") o.blockSizeMap = v;
    else throw new Error(`unknown option --${k} (expected --scale, --seconds, --dir, --pgbackrest, --block-size-map)`);
  }
  if (!(o.scale >= 1) || !(o.seconds >= 1)) throw new Error("--scale and --seconds: expected positive numbers");
  return o;
}

const log = (m: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);
const slug = (t: Tool) => t.replace(" ", "-");

interface Row {
  tool: Tool;
  type: "full" | "incr";
  wall: number;
  cpu: number;
  bytes: number;
}

export async function main(argv: string[]): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error("bench/block-incr.ts runs as root (PostgreSQL and the tools run as user postgres through setpriv)");
    return 2;
  }
  const o = parse(argv);
  const binary = ensureBuilt();
  mkdirAsPostgres(o.dir);
  const work = join(o.dir, "block-incr");
  Bun.spawnSync(["rm", "-rf", work]);
  mkdirAsPostgres(work);
  const c = await Cluster.create({ baseDir: work, conf: { shared_buffers: "128MB", autovacuum: "off", max_wal_size: "4GB", checkpoint_timeout: "1h" } });
  c.start();
  const rows: Row[] = [];
  try {
    const t0 = performance.now();
    await measure(pgTool(c, "pgbench", ["-i", "-q", "-s", String(o.scale)]), { as: asPostgres, env: toolEnv });
    log(`pgbench -i -s ${o.scale}: ${((performance.now() - t0) / 1000).toFixed(1)} s; load ${loadAverage().toFixed(2)}`);

    const run = new Map<Tool, (type: "full" | "incr") => Promise<void>>();
    for (const tool of TOOLS) {
      const name = slug(tool);
      const repo = join(work, `repo-${name}`);
      for (const d of [`log-${name}`, `lock-${name}`]) mkdirAsPostgres(join(work, d));
      const conf = join(work, `${name}.conf`);
      const block = tool.endsWith("block");
      writeConfig(conf, {
        global: {
          "repo1-path": repo, "log-path": join(work, `log-${name}`), "lock-path": join(work, `lock-${name}`),
          "log-level-console": "warn", "log-level-file": "info", "start-fast": true, "compress-type": "lz4",
          "repo1-bundle": true, "repo1-retention-full": 2, "process-max": 2, "archive-check": false,
          ...(block ? { "repo1-block": true } : {}),
          ...(block && o.blockSizeMap ? { "repo1-block-size-map": o.blockSizeMap } : {}),
        },
        [STANZA]: { "pg1-path": c.dataDir, "pg1-port": c.port, "pg1-socket-path": c.socketDir },
      });
      const exe = tool.startsWith("pgbunker") ? binary : o.pgbackrest;
      const cmd = (args: string[]) => [exe, `--config=${conf}`, `--stanza=${STANZA}`, ...args];
      await measure(cmd(["stanza-create"]), { as: asPostgres, env: toolEnv });
      run.set(tool, async (type) => {
        const before = treeBytes(join(repo, "backup", STANZA));
        const r = await measure(cmd(["backup", `--type=${type}`]), { as: asPostgres, env: toolEnv });
        const row = { tool, type, wall: r.wall, cpu: r.user + r.sys, bytes: treeBytes(join(repo, "backup", STANZA)) - before };
        rows.push(row);
        log(`${tool} ${type}: ${row.wall.toFixed(2)} s wall, ${row.cpu.toFixed(2)} s CPU, ${row.bytes.toLocaleString("en-US")} repo bytes; load ${loadAverage().toFixed(2)}`);
      });
    }
    for (const tool of TOOLS) await run.get(tool)!("full");
    const p = await measure(pgTool(c, "pgbench", ["-n", "-c", "2", "-T", String(o.seconds), "--random-seed=14"]), { as: asPostgres, env: toolEnv });
    const tps = /tps = ([\d.]+)/.exec(p.output)?.[1] ?? "?";
    log(`pgbench ${o.seconds} s: ${tps} tps`);
    for (const tool of TOOLS) await run.get(tool)!("incr");

    console.log(`\nscale ${o.scale}, pgbench ${o.seconds} s (${tps} tps), load average now ${loadAverage().toFixed(2)}${o.blockSizeMap ? `, block-size-map ${o.blockSizeMap}` : ""}\n`);
    console.log("| tool | backup | wall s | CPU s | repo bytes |");
    console.log("|---|---|---|---|---|");
    for (const r of rows) console.log(`| ${r.tool} | ${r.type} | ${r.wall.toFixed(2)} | ${r.cpu.toFixed(2)} | ${r.bytes.toLocaleString("en-US")} |`);
    const incr = (t: Tool) => rows.find((r) => r.tool === t && r.type === "incr")!;
    const mine = incr("pgbunker block"), theirs = incr("pgbackrest block"), file = incr("pgbunker file");
    console.log(`\npgbunker block incr bytes: ${((mine.bytes / theirs.bytes) * 100).toFixed(1)} % of pgBackRest's, ${((mine.bytes / file.bytes) * 100).toFixed(1)} % of pgbunker file-level; wall ${((mine.wall / theirs.wall) * 100).toFixed(0)} % of pgBackRest's`);
  } finally {
    c.stop();
  }
  return 0;
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
