/**
 * Many small relations (issue 19): pgbunker against pgBackRest 2.59.1 on a cluster of N one-row
 * tables, each with a primary-key index (2 files per relation: heap, 1 page; index, 2 pages).
 *
 *   bun bench/relations.ts --tables=20000 [--dir=/var/tmp/pgbunker-bench] [--pgbackrest=PATH]
 *       [--connections=4] [--checkpoint-first=y|n] [--sync-first=y|n] [--rebuild=y]
 *       [--tools=pgbunker,pgbackrest] [--binary=PATH] [--restore-only=y] [--incr-only=y [--change=1000]]
 *
 * --tools picks which tools run (an after-change run need not repeat pgBackRest); --binary runs a
 * kept pgbunker executable instead of this tree's dist/pgbunker (a before/after pair on one cluster).
 * --restore-only=y reuses the repository an earlier run left in DIR/run-N (no stanza-create, backup,
 * info or verify) and runs restore into an empty directory, then restore --delta over it (every
 * file in place matches: the delta checks and the clean's walk are what is measured).
 * --incr-only=y (pgbunker) also reuses DIR/run-N: it inserts a row into --change tables, takes an
 * incremental backup (and counts the files it stored: only the changed ones should be), restores it
 * with --delta over the earlier restore, runs info and verify, expires to one full backup, and has
 * pgBackRest (--pgbackrest) run info and verify on the repository pgbunker wrote.
 *
 * Runs as root (the cluster and both tools run as user postgres through setpriv). The cluster is
 * built once per N in DIR/relations-N and kept: a later run with the same N reuses it (creating a
 * million relations takes a long time; --rebuild=y makes it anew, to measure a first backup again). Tables are created by several connections at once, many CREATE
 * TABLE per transaction.
 *
 * Measured with bench/lib/measure.ts: wall, CPU, and two peak RSS figures: the largest single
 * process (wait4's high-water mark, what /usr/bin/time -v calls "Maximum resident set size") and
 * the largest sampled sum over the process tree (every 50 ms). pgbunker is one process (its workers
 * are threads), so the two agree; pgBackRest runs process-max local processes beside its main one,
 * so its sum is the figure to compare. Steps: pgbunker first (its first full backup is the one
 * right after the tables were made, unless --checkpoint-first=y ran a CHECKPOINT before it), full
 * backup twice (bundled, lz4, process-max 2), info, verify, restore into an empty directory; then
 * pgBackRest the same without info/verify. Each backup's checkpoint line from the server log
 * (buffers written, time) is printed beside it. Backups use archive-check=n on both tools: the
 * cluster does not archive (archiving N relations' creation WAL through two tools would dominate
 * the build), so the backups are not consistent without WAL — this measures the file handling,
 * and verify reports the missing WAL (measured all the same).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
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
  checkpointFirst: boolean;
  syncFirst: boolean;
  rebuild: boolean;
  tools: Tool[];
  binary?: string;
  restoreOnly: boolean;
  incrOnly: boolean;
  change: number;
}

function parse(argv: string[]): Opts {
  const o: Opts = { tables: 20_000, dir: "/var/tmp/pgbunker-bench", pgbackrest: "/opt/pgbackrest-2.59.1/bin/pgbackrest", connections: 4, perTransaction: 500, checkpointFirst: false, syncFirst: false, rebuild: false, tools: ["pgbunker", "pgbackrest"], restoreOnly: false, incrOnly: false, change: 1000 };
  for (const a of argv) {
    const m = /^--([a-z-]+)=(.*)$/.exec(a);
    if (!m) throw new Error(`expected --name=value, found '${a}'`);
    const [, k, v] = m as unknown as [string, string, string];
    if (k === "tables") o.tables = Number(v);
    else if (k === "dir") o.dir = v;
    else if (k === "pgbackrest") o.pgbackrest = v;
    else if (k === "connections") o.connections = Number(v);
    else if (k === "checkpoint-first") o.checkpointFirst = v === "y";
    else if (k === "sync-first") o.syncFirst = v === "y";
    else if (k === "rebuild") o.rebuild = v === "y";
    else if (k === "tools") o.tools = v.split(",").map((t) => {
      if (t !== "pgbunker" && t !== "pgbackrest") throw new Error(`--tools: expected pgbunker and/or pgbackrest, found '${t}'`);
      return t;
    });
    else if (k === "binary") o.binary = v;
    else if (k === "restore-only") o.restoreOnly = v === "y";
    else if (k === "incr-only") o.incrOnly = v === "y";
    else if (k === "change") o.change = Number(v);
    else throw new Error(`unknown option --${k} (expected --tables, --dir, --pgbackrest, --connections, --checkpoint-first, --sync-first, --rebuild, --tools, --binary, --restore-only, --incr-only, --change)`);
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

/** The kept cluster for N tables: created and filled on first use, started; `fresh` when just made. */
async function cluster(o: Opts): Promise<{ c: Cluster; fresh: boolean }> {
  mkdirAsPostgres(o.dir);
  const base = mkdirAsPostgres(join(o.dir, `relations-${o.tables}`));
  const data = join(base, "pg");
  const conf = {
    shared_buffers: "256MB",
    max_locks_per_transaction: Math.max(64, o.perTransaction * 3),
    autovacuum: "off",
    log_checkpoints: "on",
    max_wal_size: "8GB",
    checkpoint_timeout: "1h",
  };
  if (!o.rebuild && existsSync(join(data, "PG_VERSION")) && existsSync(join(base, "complete"))) {
    const c = await Cluster.attach(data);
    c.writeConf({ port: c.port });
    c.start();
    log(`reusing ${data}: ${readFileSync(join(base, "complete"), "utf8").trim()}`);
    return { c, fresh: false };
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
  return { c, fresh: true };
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
  /** Largest single process's peak RSS, MiB. */
  maxMiB: number;
  /** Largest sampled sum over the process tree, MiB. */
  sumMiB: number;
  note: string;
}

/** The server log's checkpoint lines written since byte `from`, as "wrote N buffers ... total=X s". */
function checkpointsSince(logFile: string, from: number): string {
  const text = readFileSync(logFile, "utf8").slice(from);
  return [...text.matchAll(/checkpoint complete: (wrote \d+ buffers)[^;]*;[^;]*; write=([\d.]+) s, sync=([\d.]+) s, total=([\d.]+) s/g)]
    .map((m) => `checkpoint ${m[1]}, write ${m[2]} s, sync ${m[3]} s, total ${m[4]} s`)
    .join("; ");
}

/** The kernel's dirty page-cache bytes (MiB) now: what a journal commit or sync may have to write first. */
const dirtyMiB = () => Number(/^Dirty:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0) / 1024;

const fileSize = (f: string) => (existsSync(f) ? readFileSync(f).length : 0);

/** The newest backup label in a repository's stanza directory. */
function latestLabel(repo: string): string {
  return readdirSync(join(repo, "backup", STANZA)).filter((n) => /^\d{8}-\d{6}F/.test(n)).sort().pop()!;
}

/** Files a backup stored itself (no reference) and all its files, from its manifest's [target:file] lines. */
function storedFiles(manifest: string): { stored: number; total: number } {
  let stored = 0, total = 0, inFiles = false;
  for (const line of readFileSync(manifest, "utf8").split("\n")) {
    if (line.startsWith("[")) inFiles = line === "[target:file]";
    else if (inFiles && line.includes("={")) {
      total++;
      if (!line.includes('"reference":')) stored++;
    }
  }
  return { stored, total };
}

export async function main(argv: string[]): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error("bench/relations.ts runs as root (PostgreSQL and the tools run as user postgres through setpriv)");
    return 2;
  }
  const o = parse(argv);
  const binary = o.binary ?? ensureBuilt();
  const { c, fresh } = await cluster(o);
  const rows: Row[] = [];
  try {
    const baseFiles = countFiles(join(c.dataDir, "base"));
    log(`cluster ${c.dataDir}: ${o.tables} tables, ${baseFiles} files in base/, ${fresh ? "just created" : "reused"}; load ${loadAverage().toFixed(2)}`);
    if (o.checkpointFirst) {
      const from = fileSize(c.logFile);
      const r = await measure(pgTool(c, "psql", ["-X", "-q", "-c", "checkpoint"]), { as: asPostgres, env: toolEnv });
      log(`CHECKPOINT before the first backup: ${r.wall.toFixed(2)} s (${checkpointsSince(c.logFile, from)})`);
    }
    if (o.syncFirst) {
      const before = dirtyMiB();
      const r = await measure(["sync"]);
      log(`sync before the first backup: ${r.wall.toFixed(2)} s, dirty page cache ${before.toFixed(0)} → ${dirtyMiB().toFixed(0)} MiB`);
    }
    const work = mkdirAsPostgres(join(o.dir, `run-${o.tables}`));
    for (const tool of o.tools) {
      const repo = join(work, `repo-${tool}`);
      const restore = join(work, `restore-${tool}`);
      const reuse = o.restoreOnly || o.incrOnly;
      if (reuse && !existsSync(join(repo, "backup", STANZA, "backup.info"))) throw new Error(`--restore-only/--incr-only: no repository at ${repo} (run once without them)`);
      if (!o.incrOnly) Bun.spawnSync(["rm", "-rf", ...(reuse ? [] : [repo]), restore]);
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
          "repo1-retention-full": 2,
          "process-max": 2,
          "archive-check": false,
        },
        [STANZA]: { "pg1-path": c.dataDir, "pg1-port": c.port, "pg1-socket-path": c.socketDir },
      });
      const exe = tool === "pgbunker" ? binary : o.pgbackrest;
      const run = async (step: string, args: string[], okCodes: number[] = []) => {
        const from = fileSize(c.logFile);
        const dirty = dirtyMiB();
        const r = await measure([exe, `--config=${conf}`, `--stanza=${STANZA}`, ...args], { as: asPostgres, env: toolEnv, okCodes });
        const note = args[0] === "backup" ? `${checkpointsSince(c.logFile, from)}; dirty page cache before ${dirty.toFixed(0)} MiB` : "";
        const row = { tool, step, wall: r.wall, cpu: r.user + r.sys, maxMiB: (r.rssMaxProcess ?? 0) / 1024 ** 2, sumMiB: (r.rssTreeSum ?? 0) / 1024 ** 2, note };
        rows.push(row);
        log(`${tool} ${step}: ${r.wall.toFixed(2)} s wall, ${row.cpu.toFixed(2)} s CPU, max process ${row.maxMiB.toFixed(0)} MiB, tree sum ${row.sumMiB.toFixed(0)} MiB ${note}`);
      };
      if (o.incrOnly) {
        if (tool !== "pgbunker") continue;
        const t0 = performance.now();
        const step = Math.max(1, Math.floor(o.tables / o.change));
        const sql: string[] = ["begin;"];
        for (let i = 0; i < o.tables && sql.length <= o.change; i += step) sql.push(`insert into t${i} values (${o.tables + i});`);
        sql.push("commit;");
        const file = join(work, "change.sql");
        writeFileSync(file, sql.join("\n"));
        await measure(pgTool(c, "psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", file]), { as: asPostgres, env: toolEnv });
        log(`inserted a row into ${sql.length - 2} tables in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        await run("backup incr", ["backup", "--type=incr"]);
        const incr = latestLabel(repo);
        const stored = storedFiles(join(repo, "backup", STANZA, incr, "backup.manifest"));
        log(`incr ${incr}: ${stored.stored} of ${stored.total} files stored by it (the rest referenced)`);
        rows.push({ tool, step: "incr: files stored / total", wall: 0, cpu: 0, maxMiB: 0, sumMiB: 0, note: `${stored.stored} / ${stored.total} (${sql.length - 2} tables changed)` });
        await run("restore --delta (incr over the full's restore)", ["restore", "--delta", `--pg1-path=${restore}`]);
        await run("info", ["info"]);
        await run("verify", ["verify"], [103]);
        await run("expire (retention-full=1)", ["expire", "--repo1-retention-full=1"]);
        const cross = async (step: string, args: string[], okCodes: number[] = []) => {
          const r = await measure([o.pgbackrest, `--config=${conf}`, `--stanza=${STANZA}`, ...args], { as: asPostgres, env: toolEnv, okCodes });
          const row = { tool: "pgbackrest" as Tool, step, wall: r.wall, cpu: r.user + r.sys, maxMiB: (r.rssMaxProcess ?? 0) / 1024 ** 2, sumMiB: (r.rssTreeSum ?? 0) / 1024 ** 2, note: "on pgbunker's repository" };
          rows.push(row);
          log(`pgbackrest ${step} on pgbunker's repository: exit ${r.code ?? "?"}, ${r.wall.toFixed(2)} s wall, tree sum ${row.sumMiB.toFixed(0)} MiB`);
          return r;
        };
        const info = await cross("info", ["info"]);
        log(info.output.split("\n").filter((l) => /backup:|full|incr|status/.test(l)).join(" | "));
        await cross("verify", ["verify"], [0, 103]);
        continue;
      }
      if (o.restoreOnly) {
        freshDir(restore);
        await run("restore", ["restore", `--pg1-path=${restore}`]);
        await run("restore --delta (all match)", ["restore", "--delta", `--pg1-path=${restore}`]);
        continue;
      }
      await run("stanza-create", ["stanza-create"]);
      await run(tool === "pgbunker" && fresh && !o.checkpointFirst ? "backup full (first after creation)" : "backup full (first)", ["backup", "--type=full"]);
      await run("backup full (2nd)", ["backup", "--type=full"]);
      if (tool === "pgbunker") {
        await run("info", ["info"]);
        // No WAL is archived (see the header): verify reports the missing WAL (exit 103) after
        // checking every file.
        await run("verify", ["verify"], [103]);
      }
      freshDir(restore);
      await run("restore", ["restore", `--pg1-path=${restore}`]);
    }
    console.log(`\n${o.tables} tables, ${baseFiles} files in base/, load average now ${loadAverage().toFixed(2)}\n`);
    console.log("| tool | step | wall s | CPU s | max process MiB | tree sum MiB | server checkpoint |");
    console.log("|---|---|---|---|---|---|---|");
    for (const r of rows) console.log(`| ${r.tool} | ${r.step} | ${r.wall.toFixed(2)} | ${r.cpu.toFixed(2)} | ${r.maxMiB.toFixed(0)} | ${r.sumMiB.toFixed(0)} | ${r.note} |`);
  } finally {
    c.stop();
  }
  return 0;
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
