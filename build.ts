/**
 * Build pgbunker: compile the native helper (native/pgbunker.c → native/libpgbunker.so), then
 * `bun build --compile` src/main.ts (+ the worker entry) into one executable, dist/pgbunker, with
 * the helper embedded.
 *
 *   bun build.ts            build everything
 *   bun build.ts --native   only the native helper (tests run from source need it)
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";

const root = dirname(new URL(import.meta.url).pathname);
const nativeSrc = [join(root, "native/pgbunker.c"), join(root, "native/pgbunker.h")];
const nativeLib = join(root, "native/libpgbunker.so");

function run(cmd: string[]): void {
  const r = Bun.spawnSync(cmd, { cwd: root, stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) {
    console.error(`build failed: ${cmd.join(" ")} exited with ${r.exitCode}`);
    process.exit(1);
  }
}

/** Compile the helper when missing or older than its sources. */
export function buildNative(force = false): string {
  const stale = !existsSync(nativeLib) || nativeSrc.some((s) => statSync(s).mtimeMs > statSync(nativeLib).mtimeMs);
  if (force || stale) run(["cc", "-O3", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", "-o", nativeLib, nativeSrc[0]!]);
  return nativeLib;
}

export function buildExecutable(): string {
  const dist = join(root, "dist");
  mkdirSync(dist, { recursive: true });
  // Every build writes source maps of its chunks under new hashed names. Left to pile up (hundreds
  // after a day of builds) they slowed the executable's start by ~3 ms in that directory (18.5 →
  // 21.9 ms for `pgbunker help archive-push`), which archive-push pays per WAL segment.
  for (const f of readdirSync(dist)) if (f.endsWith(".map")) rmSync(join(dist, f));
  const out = join(dist, "pgbunker");
  run([
    // --splitting: modules behind a dynamic import (each command, the SQL client, SSH) become
    // chunks of their own, parsed only when a command loads them. --bytecode: the chunks are
    // compiled to JavaScriptCore bytecode at build time, so nothing is parsed at start. archive-push
    // and archive-get pay startup once per WAL segment (bench/RESULTS.md). --format=esm: main.ts
    // keeps its top-level await, and the workers of a remote backup resolve ssh2 (a CommonJS
    // bytecode build could not: reverted in 2f5885d). --compile-jit-policy=100: JavaScriptCore
    // compiles code only after 100x its usual number of runs, so a per-segment command does not
    // spend its short life (and threads) compiling startup code; main.ts and worker.ts restore the
    // normal policy for everything else (Bun.unsafe.setJITPolicy). No .env or bunfig.toml is read
    // from the working directory (PostgreSQL's data directory for archive_command).
    process.execPath, "build", "--compile", "--splitting", "--bytecode", "--format=esm", "--minify-syntax", "--sourcemap=inline",
    "--compile-jit-policy=100", "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
    join(root, "src/main.ts"), join(root, "src/worker.ts"),
    "--outfile", out,
  ]);
  return out;
}

if (import.meta.main) {
  buildNative(true);
  if (!process.argv.includes("--native")) {
    const out = buildExecutable();
    const v = Bun.spawnSync([out, "version"]);
    console.log(`built ${out}: ${v.stdout.toString().trim()}`);
  }
}
