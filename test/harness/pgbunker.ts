/**
 * Run the built executable (dist/pgbunker) the way users do, and pgbackrest beside it.
 * `ensureBuilt()` rebuilds when any source is newer than the executable, so a test run always
 * exercises the current code through the real compiled binary.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ROOT, runAsPostgres, runAsPostgresAsync, writeAsPostgres, type RunResult } from "./cluster.ts";

export const BINARY = join(ROOT, "dist/pgbunker");

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

let built = false;

export function ensureBuilt(): string {
  if (built) return BINARY;
  const srcTime = Math.max(newestMtime(join(ROOT, "src")), newestMtime(join(ROOT, "native")), statSync(join(ROOT, "build.ts")).mtimeMs);
  if (!existsSync(BINARY) || statSync(BINARY).mtimeMs < srcTime) {
    const r = Bun.spawnSync([process.execPath, join(ROOT, "build.ts")], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`build failed:\n${r.stdout}\n${r.stderr}`);
  }
  built = true;
  return BINARY;
}

export interface PgbRunOptions {
  /** Run as root instead of postgres. */
  asRoot?: boolean;
  env?: Record<string, string>;
  cwd?: string;
  stdin?: string;
}

/** Run pgbunker with arguments; never throws on a non-zero exit. */
export function pgbunker(args: string[], opts: PgbRunOptions = {}): RunResult {
  ensureBuilt();
  if (opts.asRoot) {
    const r = Bun.spawnSync([BINARY, ...args], { cwd: opts.cwd ?? "/tmp", env: { PATH: process.env.PATH ?? "", ...opts.env }, stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin) });
    return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  }
  return runAsPostgres([BINARY, ...args], { cwd: opts.cwd, env: opts.env, stdin: opts.stdin });
}

/** pgbunker() (as postgres) without blocking the event loop, for tests that drive clusters in parallel. */
export function pgbunkerAsync(args: string[], opts: Omit<PgbRunOptions, "asRoot"> = {}): Promise<RunResult> {
  ensureBuilt();
  return runAsPostgresAsync([BINARY, ...args], opts);
}

/** The label a backup's output announces (`new backup label = ...`). */
export function backupLabel(out: string): string {
  const m = /new backup label = (\S+)/.exec(out);
  if (!m) throw new Error(`no backup label in the output:\n${out}`);
  return m[1]!;
}

/** Run and require exit 0 (returns stdout). */
export function pgbunkerOk(args: string[], opts: PgbRunOptions = {}): string {
  const r = pgbunker(args, opts);
  if (r.code !== 0) throw new Error(`pgbunker ${args.join(" ")} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r.stdout;
}

/**
 * pgBackRest 2.59.1 (built from ../shared/anchors by build-pgbackrest.sh): it knows PostgreSQL
 * 10-19, where the Debian 2.45 on PATH stops at 15.
 */
export const PGBACKREST_259 = "/opt/pgbackrest-2.59.1/bin/pgbackrest";

/** The two pgBackRest releases the tests check against, by version. */
export const PGBACKREST_BIN = { "2.45": "pgbackrest", "2.59": PGBACKREST_259 } as const;
export type PgbackrestVersion = keyof typeof PGBACKREST_BIN;

export interface PgbackrestOptions {
  env?: Record<string, string>;
  /** Which pgBackRest: the 2.45 on PATH (default) or PGBACKREST_259. */
  bin?: string;
}

export function pgbackrest(args: string[], opts: PgbackrestOptions = {}): RunResult {
  return runAsPostgres([opts.bin ?? "pgbackrest", ...args], { env: opts.env });
}

export function pgbackrestAsync(args: string[], opts: PgbackrestOptions = {}): Promise<RunResult> {
  return runAsPostgresAsync([opts.bin ?? "pgbackrest", ...args], { env: opts.env });
}

export function pgbackrestOk(args: string[]): string {
  const r = pgbackrest(args);
  if (r.code !== 0) throw new Error(`pgbackrest ${args.join(" ")} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r.stdout;
}

/**
 * A config file usable by both pgbunker and pgbackrest (same layout, same option names):
 * [global] with repo/log/lock paths, [STANZA] with the cluster.
 */
export function writeConfig(path: string, sections: Record<string, Record<string, string | number | boolean>>): string {
  const lines: string[] = [];
  for (const [name, kv] of Object.entries(sections)) {
    lines.push(`[${name}]`);
    for (const [k, v] of Object.entries(kv)) lines.push(`${k}=${v === true ? "y" : v === false ? "n" : v}`);
    lines.push("");
  }
  writeAsPostgres(path, lines.join("\n"));
  return path;
}
