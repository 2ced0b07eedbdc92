/**
 * Run the built executable (dist/pgbunker) the way users do, and pgbackrest beside it.
 * `ensureBuilt()` rebuilds when any source is newer than the executable, so a test run always
 * exercises the current code through the real compiled binary.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ROOT, runAsPostgres, writeAsPostgres, type RunResult } from "./cluster.ts";

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

/** Run and require exit 0 (returns stdout). */
export function pgbunkerOk(args: string[], opts: PgbRunOptions = {}): string {
  const r = pgbunker(args, opts);
  if (r.code !== 0) throw new Error(`pgbunker ${args.join(" ")} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r.stdout;
}

/** The two pgBackRest releases the tests check against: 2.45 (Debian, on PATH) and 2.59.1 (built into /opt). */
export const PGBACKREST_BIN = { "2.45": "pgbackrest", "2.59": "/opt/pgbackrest-2.59.1/bin/pgbackrest" } as const;
export type PgbackrestVersion = keyof typeof PGBACKREST_BIN;

export function pgbackrest(args: string[], opts: { env?: Record<string, string>; version?: PgbackrestVersion } = {}): RunResult {
  return runAsPostgres([PGBACKREST_BIN[opts.version ?? "2.45"], ...args], { env: opts.env });
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
