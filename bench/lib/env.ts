/**
 * The benchmark's world: one PostgreSQL 15 cluster (page checksums on) filled with pgbench data
 * plus a less compressible table, archiving through both tools into their own repositories, a
 * directory of real WAL segments for the archive-push measurement, and one configuration per tool
 * with equal settings.
 *
 * Data mix. pgbench alone compresses ~9x with lz4 (its filler column is blank), far above real
 * clusters. Half of the size is pgbench (-s SCALE), half `bench_orders`: ids, integers, timestamps
 * and a text of random digits; lz4 compresses that table ~1.5x and the whole cluster ~2.5x. Both
 * halves load at the same time (two cores) from server-side generate_series with random() under a
 * fixed setseed, so the data is the same on every run and generating a few GB takes tens of seconds.
 */
import { chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Cluster, mkdirAsPostgres, PG_GID, PG_UID, SYSTEM_BIN, tempDir } from "../../test/harness/cluster.ts";
import { writeConfig } from "../../test/harness/pgbunker.ts";
import { measure } from "./measure.ts";

export const STANZA = "bench";
/**
 * The tools that back up into a repository of their own. "pgbackrest" is the one on PATH
 * (Debian's 2.45, or what EnvOptions.pgbackrest names); "pgbackrest-2.59.1" is the newest
 * release, built from ../shared/anchors into /opt.
 */
export type BackupTool = "pgbunker" | "pgbackrest" | "pgbackrest-2.59.1";
export const BACKUP_TOOLS: readonly BackupTool[] = ["pgbunker", "pgbackrest", "pgbackrest-2.59.1"];
export const PGBACKREST_2_59 = "/opt/pgbackrest-2.59.1/bin/pgbackrest";

/** pgbench data + primary key index per scale unit (measured on PostgreSQL 15). */
const PGBENCH_BYTES_PER_SCALE = 15.6 * 1024 * 1024;
/** Heap bytes per bench_orders row (measured). */
const ORDERS_BYTES_PER_ROW = 151;
export const WAL_SEGMENT = 16 * 1024 * 1024;

export interface BenchEnv {
  dir: string;
  cluster: Cluster;
  binary: string;
  /** pgBackRest executable of the tool "pgbackrest" ("pgbackrest" on PATH: 2.45). */
  pgbackrest: string;
  tools: BackupTool[];
  /** Config of each tool for the backups (stanza STANZA). */
  conf: Record<BackupTool, string>;
  /** Config of each tool for the archive-push measurement (own repository). */
  pushConf: Record<BackupTool, string>;
  repo: Record<BackupTool, string>;
  pushRepo: Record<BackupTool, string>;
  /** Real WAL segments (written while the data loaded), for archive-push. */
  segments: string[];
  scale: number;
  orderRows: number;
}

export const asPostgres = { uid: PG_UID, gid: PG_GID };
export const toolEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8", HOME: "/var/lib/postgresql" };

/** Read every file under dir once, through the page cache (what is read stays cached). */
export function readThroughCache(dir: string): void {
  Bun.spawnSync(["sh", "-c", 'find "$1" -type f -exec cat {} + > /dev/null', "sh", dir]);
}

/** Size of what a backup copies: every file of the data directory except WAL (bytes). */
export function dataDirBytes(dataDir: string): number {
  return treeBytes(dataDir, (rel) => rel === "pg_wal");
}

/** Sum of file sizes under a directory (apparent size), skipping relative paths `skip` matches. */
export function treeBytes(dir: string, skip: (rel: string) => boolean = () => false, rel = ""): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(join(dir, rel));
  } catch {
    return 0;
  }
  for (const name of names) {
    const r = rel ? `${rel}/${name}` : name;
    if (skip(r)) continue;
    let st;
    try {
      st = lstatSync(join(dir, r));
    } catch {
      continue; // removed meanwhile (PostgreSQL temp files)
    }
    if (st.isDirectory()) total += treeBytes(dir, skip, r);
    else if (st.isFile()) total += st.size;
  }
  return total;
}

/** How much of each half to generate for a target data directory size. */
export function dataPlan(size: number): { scale: number; orderRows: number } {
  return {
    scale: Math.max(1, Math.round((size * 0.5) / PGBENCH_BYTES_PER_SCALE)),
    orderRows: Math.max(1000, Math.round((size * 0.5) / ORDERS_BYTES_PER_ROW)),
  };
}

/** Statements of the bench_orders load, each its own transaction (VACUUM cannot run in one). */
export function ordersSql(rows: number): string[] {
  return [
    "create table bench_orders (id bigint, customer int, placed timestamptz, note text)",
    // setseed in the same statement: the rows are the same on every run
    `insert into bench_orders
       select g, (random() * 1e6)::int, timestamptz '2024-01-01' + g * interval '1 second',
              'order ' || g || ' ' || (array['new','paid','shipped','returned'])[1 + g % 4] || ' '
              || random()::text || random()::text || random()::text || random()::text
       from (select setseed(0.42)) s, generate_series(1, ${rows}) g`,
    "vacuum (freeze, analyze) bench_orders",
  ];
}

/**
 * archive_command: "stage" copies the first N segments aside; "push" runs each tool's
 * archive-push, the tool being measured first (archive-first), so that no tool's backup waits
 * for another tool's push of the WAL it needs.
 */
export function archiveScript(dir: string, segments: number, pushes: Partial<Record<BackupTool, string>>): string {
  const tools = BACKUP_TOOLS.filter((t) => pushes[t]);
  const run = (first: BackupTool) => [first, ...tools.filter((t) => t !== first)].map((t) => `${pushes[t]} "$1"`).join(" && ");
  const cases = tools.map((t) => `      ${t}) ${run(t)} ;;`).join("\n");
  return `#!/bin/sh
# archive_command of the benchmark cluster: $1 = %p, $2 = %f
set -e
case "$(cat ${dir}/archive-mode)" in
  stage)
    case "$2" in ????????????????????????) ;; *) exit 0 ;; esac
    if [ "$(ls ${dir}/segments | wc -l)" -lt ${segments} ]; then
      cp "$1" "${dir}/segments/$2.tmp" && mv "${dir}/segments/$2.tmp" "${dir}/segments/$2"
    fi ;;
  push)
    case "$(cat ${dir}/archive-first 2>/dev/null)" in
${cases}
      *) ${run(tools[0]!)} ;;
    esac ;;
esac
`;
}

/** Which tool's archive-push runs first from now on (the one about to be measured). */
export function archiveFirst(env: BenchEnv, tool: string): void {
  writeFileSync(join(env.dir, "archive-first"), `${tool}\n`);
}

export function toolCommand(env: Pick<BenchEnv, "binary" | "pgbackrest">, tool: BackupTool, conf: string, args: string[]): string[] {
  const exe = tool === "pgbunker" ? env.binary : tool === "pgbackrest" ? env.pgbackrest : PGBACKREST_2_59;
  return [exe, `--config=${conf}`, `--stanza=${STANZA}`, ...args];
}

async function runAsPg(cmd: string[], what: string): Promise<string> {
  try {
    return (await measure(cmd, { as: asPostgres, env: toolEnv })).output;
  } catch (e) {
    throw new Error(`${what} failed: ${(e as Error).message}`);
  }
}

export function pgTool(cluster: Cluster, name: string, args: string[]): string[] {
  return ["env", `PGHOST=${cluster.socketDir}`, `PGPORT=${cluster.port}`, "PGUSER=postgres", "PGDATABASE=postgres", join(SYSTEM_BIN, name), ...args];
}

async function waitArchived(cluster: Cluster, timeoutMs = 600_000): Promise<void> {
  const seg = await cluster.scalar("select pg_walfile_name(pg_switch_wal())");
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await cluster.query("select last_archived_wal, last_failed_wal from pg_stat_archiver");
    if ((r[0]!.last_archived_wal ?? "") >= seg) return;
    if (Date.now() > deadline) throw new Error(`WAL ${seg} not archived in time (failed: ${r[0]!.last_failed_wal}); log:\n${cluster.tailLog()}`);
    await Bun.sleep(200);
  }
}

export interface EnvOptions {
  dir?: string;
  size: number;
  segments: number;
  binary: string;
  compare: boolean;
  log: (msg: string) => void;
  /** pgBackRest executable of the tool "pgbackrest" (default "pgbackrest" on PATH). */
  pgbackrest?: string;
  /** Tools compared with pgbunker when compare is on (default: pgbackrest alone). */
  versus?: BackupTool[];
  /**
   * Repository options of a tool's backup or archive-push configuration, in place of a posix
   * repo1-path in the work directory (bench/s3.ts: a prefix in an S3 bucket).
   */
  repoOptions?: (tool: BackupTool, purpose: "backup" | "push") => Record<string, string | number | boolean>;
}

export async function createEnv(o: EnvOptions): Promise<BenchEnv> {
  const dir = o.dir ? mkdirAsPostgres(o.dir) : tempDir("pgbunker-benchrun-");
  if (readdirSync(dir).length) throw new Error(`work directory '${dir}' is not empty`);
  const versus = (o.versus ?? ["pgbackrest"]).filter((t) => t !== "pgbunker");
  const tools: BackupTool[] = o.compare ? ["pgbunker", ...versus] : ["pgbunker"];
  for (const d of ["segments", "spool", ...tools.flatMap((t) => [`log-${t}`, `lock-${t}`, `lock-push-${t}`])]) mkdirAsPostgres(join(dir, d));
  const conf = {} as Record<BackupTool, string>;
  const pushConf = {} as Record<BackupTool, string>;
  const repo = {} as Record<BackupTool, string>;
  const pushRepo = {} as Record<BackupTool, string>;
  for (const t of BACKUP_TOOLS) {
    conf[t] = join(dir, `${t}.conf`);
    pushConf[t] = join(dir, `${t}-push.conf`);
    repo[t] = join(dir, `repo-${t}`);
    pushRepo[t] = join(dir, `push-${t}`);
  }
  const env: BenchEnv = { dir, cluster: undefined as unknown as Cluster, binary: o.binary, pgbackrest: o.pgbackrest ?? "pgbackrest", tools, conf, pushConf, repo, pushRepo, segments: [], ...dataPlan(o.size) };

  // pgBackRest (and pgbunker) refuse an archive_command that does not name them.
  const script = join(dir, "archive-push-pgbunker-pgbackrest.sh");
  const pushes = Object.fromEntries(tools.map((t) => [t, toolCommand(env, t, conf[t], ["archive-push"]).join(" ")]));
  writeFileSync(script, archiveScript(dir, o.segments, pushes), { mode: 0o755 });
  writeFileSync(join(dir, "archive-mode"), "stage\n");
  chownSync(join(dir, "archive-mode"), PG_UID, PG_GID);

  o.log(`cluster in ${dir}: pgbench scale ${env.scale} + ${env.orderRows} bench_orders rows`);
  const cluster = await Cluster.create({
    baseDir: dir,
    conf: {
      archive_mode: "on",
      archive_command: `'${script} %p %f'`,
      max_wal_size: "8GB",
      checkpoint_timeout: "1h",
      shared_buffers: "256MB",
      max_wal_senders: 4,
      // Nothing may change the data between the measured runs but the runs themselves.
      autovacuum: "off",
    },
  });
  env.cluster = cluster;
  try {
    await fill(env, cluster, o);
  } catch (e) {
    await cluster.destroy();
    if (!o.dir) Bun.spawnSync(["rm", "-rf", dir]);
    throw e;
  }
  return env;
}

async function fill(env: BenchEnv, cluster: Cluster, o: EnvOptions): Promise<void> {
  const { dir, tools, conf, pushConf, repo, pushRepo } = env;
  cluster.start();

  // 1. load both halves at once; the first N WAL segments are staged for archive-push
  const t0 = performance.now();
  const psqlOrders = pgTool(cluster, "psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", ...ordersSql(env.orderRows).flatMap((s) => ["-c", s])]);
  await Promise.all([
    runAsPg(pgTool(cluster, "pgbench", ["-i", "-q", "-s", String(env.scale)]), "pgbench -i"),
    runAsPg(psqlOrders, "bench_orders load"),
  ]);
  await cluster.query("checkpoint");
  await waitArchived(cluster);
  o.log(`data loaded in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  env.segments = readdirSync(join(dir, "segments")).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort().map((n) => join(dir, "segments", n));

  // 2. repositories and stanzas; from now on every WAL segment goes to both tools' repositories
  for (const t of tools) {
    const common = {
      "log-path": join(dir, `log-${t}`),
      "spool-path": join(dir, "spool"),
      "log-level-console": "warn",
      "log-level-file": "info",
      "start-fast": true,
      "compress-type": "lz4",
      "repo1-retention-full": 99,
      "archive-timeout": 300,
    };
    const stanza = { "pg1-path": cluster.dataDir, "pg1-port": cluster.port, "pg1-socket-path": cluster.socketDir };
    const repoOf = (purpose: "backup" | "push") => o.repoOptions?.(t, purpose) ?? { "repo1-path": purpose === "backup" ? repo[t] : pushRepo[t] };
    writeConfig(conf[t], { global: { ...common, ...repoOf("backup"), "lock-path": join(dir, `lock-${t}`) }, [STANZA]: stanza });
    writeConfig(pushConf[t], { global: { ...common, ...repoOf("push"), "lock-path": join(dir, `lock-push-${t}`) }, [STANZA]: stanza });
    await runAsPg(toolCommand(env, t, conf[t], ["stanza-create"]), `${t} stanza-create`);
    await runAsPg(toolCommand(env, t, pushConf[t], ["stanza-create"]), `${t} stanza-create (push repository)`);
  }
  writeFileSync(join(dir, "archive-mode"), "push\n");
  await waitArchived(cluster);
}

/** The postmaster's pid (for the server's CPU share). */
export function postmasterPid(cluster: Cluster): number {
  return Number(readFileSync(join(cluster.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
}

/** An empty directory owned by postgres (restore targets, pg_basebackup output). */
export function freshDir(path: string): string {
  if (existsSync(path)) Bun.spawnSync(["rm", "-rf", path]);
  mkdirSync(path, { mode: 0o700 });
  chownSync(path, PG_UID, PG_GID);
  return path;
}
