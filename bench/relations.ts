/**
 * Many small relations (issue 19): pgbunker against pgBackRest 2.59.1 on a cluster of N one-row
 * tables, each with a primary-key index (2 files per relation: heap, 1 page; index, 2 pages).
 *
 *   bun bench/relations.ts --tables=20000 [--dir=/var/tmp/pgbunker-relations] [--pgbackrest=PATH]
 *
 * Runs as root (the cluster and both tools run as user postgres through setpriv). The cluster is
 * built once per N in DIR/pg-N and kept: a later run with the same N reuses it (creating a million
 * relations takes a long time). Tables are created by several connections at once, many CREATE
 * TABLE per transaction.
 *
 * Measured for each tool, in turns, with bench/lib/measure.ts (wall, CPU, peak RSS of the process
 * tree; pgbunker's workers are threads of its one process, so its figures include them): full
 * backup (bundled, lz4, process-max 2), info, verify, restore into an empty directory, delta
 * restore over that restored directory, expire. Backups use archive-check=n on both tools: the
 * cluster does not archive (archiving N relations' creation WAL through two tools would dominate
 * the build), so the backups are not consistent without WAL — this measures the file handling,
 * and verify reports the missing WAL (measured all the same).
 */
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Cluster, mkdirAsPostgres } from "../test/harness/cluster.ts";
import { ensureBuilt, writeConfig } from "../test/harness/pgbunker.ts";
import { asPostgres, freshDir, pgTool, toolEnv } from "./lib/env.ts";
import { loadAverage, measure } from "./lib/measure.ts";

const STANZA = "rel";
type Tool = "pgbunker" | "pgbackrest";

interface Opts {
  tables: number;
  dir: string;
  pgbackrest: string;
  connections: number;
  perTransaction: number;
}

function parse(argv: string[]): Opts {
  const o: Opts = { tables: 20_000, dir: "/var/tmp/pgbunker-relations", pgbackrest: "/opt/pgbackrest-2.59.1/bin/pgbackrest", connections: 4, perTransaction: 500 };
  for (const a of argv) {
    const m = /^--([a-z-]+)=(.*)$/.exec(a);
    if (!m) throw new Error(`expected --name=value, found '${a}'`);
    const [, k, v] = m as unknown as [string, string, string];
    if (k === "tables") o.tables = Number(v);
    else if (k === "dir") o.dir = v;
    else if (k === "pgbackrest") o.pgbackrest = v;
    else if (k === "connections") o.connections = Number(v);
    else throw new Error(`unknown option --${k} (expected --tables, --dir, --pgbackrest, --connections)`);
  }
  if (!Number.isInteger(o.tables) || o.tables < 1) throw new Error(`--tables: expected a positive integer, found ${o.tables}`);
  return o;
}

const log = (m: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);

/** SQL creating tables [from, to): one row each, primary key index. */
function createSql(from: number, to: number, perTx: number): string {
  const out: string[] = [];
  for (let s = from; s < to; s += perTx) {
    out.push("begin;");
    for (let i = s; i < Math.min(to, s + perTx); i++) out.push(`create table t${i} (id int primary key); insert into t${i} values (${i});`);
    out.push("commit;");
  }
  return out.join("\n");
}

/** The kept cluster for N tables: created and filled on first use, started. */
async function cluster(o: Opts): Promise<Cluster> {
  const base = mkdirAsPostgres(join(o.dir, `pg-${o.tables}`));
  const data = join(base, "pg");
  const conf = {
    shared_buffers: "256MB",
    max_locks_per_transaction: Math.max(64, o.perTransaction * 3),
    autovacuum: "off",
    max_wal_size: "8GB",
    checkpoint_timeout: "1h",
  };
  if (existsSync(join(data, "PG_VERSION")) && existsSync(join(base, "complete"))) {
    const c = await Cluster.attach(data);
    c.writeConf({ port: c.port });
    c.start();
    return c;
  }
  if (existsSync(data)) Bun.spawnSync(["rm", "-rf", data]);
  const c = await Cluster.create({ baseDir: base, conf });
  c.start();
  const t0 = performance.now();
  const per = Math.ceil(o.tables / o.connections);
  const jobs: Promise<unknown>[] = [];
  for (let k = 0; k < o.connections; k++) {
    const from = k * per;
    const to = Math.min(o.tables, from + per);
    if (from >= to) continue;
    const file = join(base, `create-${k}.sql`);
    writeFileSync(file, createSql(from, to, o.perTransaction));
    jobs.push(measure(pgTool(c, "psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", file]), { as: asPostgres, env: toolEnv }));
  }
  await Promise.all(jobs);
  const created = (performance.now() - t0) / 1000;
  writeFileSync(join(base, "complete"), `${o.tables} tables created in ${created.toFixed(1)} s with ${o.connections} connections, ${o.perTransaction} per transaction\n`);
  log(`created ${o.tables} tables in ${created.toFixed(1)} s (${o.connections} connections, ${o.perTransaction} per transaction)`);
  return c;
}

function countFiles(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? countFiles(join(dir, e.name)) : 1;
  return n;
}

interface Row {
  tool: Tool;
  step: string;
  wall: number;
  cpu: number;
  rssMiB: number;
}

export async function main(argv: string[]): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error("bench/relations.ts runs as root (PostgreSQL and the tools run as user postgres through setpriv)");
    return 2;
  }
  const o = parse(argv);
  const binary = ensureBuilt();
  const c = await cluster(o);
  const rows: Row[] = [];
  try {
    const baseFiles = countFiles(join(c.dataDir, "base"));
    log(`cluster ${c.dataDir}: ${o.tables} tables, ${baseFiles} files in base/; load ${loadAverage().toFixed(2)}`);
    const work = mkdirAsPostgres(join(o.dir, `run-${o.tables}`));
    for (const tool of ["pgbunker", "pgbackrest"] as Tool[]) {
      const repo = join(work, `repo-${tool}`);
      const restore = join(work, `restore-${tool}`);
      Bun.spawnSync(["rm", "-rf", repo, restore]);
      for (const d of [`log-${tool}`, `lock-${tool}`]) mkdirAsPostgres(join(work, d));
      const conf = join(work, `${tool}.conf`);
      writeConfig(conf, {
        global: {
          "repo1-path": repo,
          "log-path": join(work, `log-${tool}`),
          "lock-path": join(work, `lock-${tool}`),
          "log-level-console": "warn",
          "log-level-file": "info",
          "start-fast": true,
          "compress-type": "lz4",
          "repo1-bundle": true,
          "repo1-retention-full": 1,
          "process-max": 2,
          "archive-check": false,
        },
        [STANZA]: { "pg1-path": c.dataDir, "pg1-port": c.port, "pg1-socket-path": c.socketDir },
      });
      const exe = tool === "pgbunker" ? binary : o.pgbackrest;
      const run = async (step: string, args: string[], okCodes: number[] = []) => {
        const r = await measure([exe, `--config=${conf}`, `--stanza=${STANZA}`, ...args], { as: asPostgres, env: toolEnv, okCodes });
        rows.push({ tool, step, wall: r.wall, cpu: r.user + r.sys, rssMiB: r.rssPeak / 1024 ** 2 });
        log(`${tool} ${step}: ${r.wall.toFixed(2)} s wall, ${(r.user + r.sys).toFixed(2)} s CPU, ${(r.rssPeak / 1024 ** 2).toFixed(0)} MiB`);
      };
      await run("stanza-create", ["stanza-create"]);
      await run("backup full", ["backup", "--type=full"]);
      await run("backup full (2nd)", ["backup", "--type=full"]);
      await run("info", ["info"]);
      // No WAL is archived (see the header): verify reports the missing WAL (exit 103 in pgbunker
      // and pgBackRest) after checking every file.
      await run("verify", ["verify"], [103]);
      freshDir(restore);
      await run("restore", ["restore", `--pg1-path=${restore}`]);
      await run("restore delta", ["restore", "--delta", `--pg1-path=${restore}`]);
      await run("expire", ["expire", "--repo1-retention-full=1"]);
    }
    console.log(`\n${o.tables} tables, ${baseFiles} files in base/, load average now ${loadAverage().toFixed(2)}\n`);
    console.log("| step | pgbunker wall s | CPU s | peak RSS MiB | pgBackRest 2.59.1 wall s | CPU s | peak RSS MiB |");
    console.log("|---|---|---|---|---|---|---|");
    for (const step of [...new Set(rows.map((r) => r.step))]) {
      const a = rows.find((r) => r.tool === "pgbunker" && r.step === step)!;
      const b = rows.find((r) => r.tool === "pgbackrest" && r.step === step)!;
      console.log(`| ${step} | ${a.wall.toFixed(2)} | ${a.cpu.toFixed(2)} | ${a.rssMiB.toFixed(0)} | ${b.wall.toFixed(2)} | ${b.cpu.toFixed(2)} | ${b.rssMiB.toFixed(0)} |`);
    }
  } finally {
    c.stop();
  }
  return 0;
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
