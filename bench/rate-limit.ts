/**
 * rate-limit: the rate a throttled backup-copy really moves at, and what the limiter costs when
 * it does not bind.
 *
 *   bun bench/rate-limit.ts [MiB=160] [rate=32MiB] [rounds=3]
 *
 * A PostgreSQL 15 cluster with MiB of table data is backed up uncompressed; then backup-copy
 * (process-max 2) copies that set into a fresh repository, in turns: without rate-limit, with a
 * limit far above the machine's speed (the limiter active but never waiting), and at `rate`.
 * Bytes moved are the stored bytes the copy wrote (equal to the bytes it read: both sides store
 * alike). Two rates: bytes / wall time of the whole command (start-up and the final sync included,
 * so it errs low), and the one the command logs (bytes granted / time since its first byte).
 * Medians of `rounds`.
 */
import { lstatSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { mkdirAsPostgres, runAsPostgres } from "../test/harness/cluster.ts";
import { BINARY } from "../test/harness/pgbunker.ts";
import { StanzaEnv } from "../test/harness/stanza.ts";
import { parseSize } from "../src/config/value.ts";

const MIB = Number(process.argv[2] ?? 160);
const RATE_TEXT = process.argv[3] ?? "32MiB";
const RATE = parseSize(RATE_TEXT)!;
const ROUNDS = Number(process.argv[4] ?? 3);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** Bytes of the stored files under dir (not info files; links, such as latest, not followed). */
function treeBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += treeBytes(p);
    else if (e.isFile() && !/\.info(\.copy)?$/.test(e.name)) n += lstatSync(p).size;
  }
  return n;
}

const env = await StanzaEnv.create({ stanza: "bench", global: { "compress-type": "none", "log-level-console": "warn" } });
try {
  await env.cluster.query("create table t (id int, v text)");
  // md5 text: about half as compressible as it looks; stored uncompressed here anyway.
  await env.cluster.query(`insert into t select g, repeat(md5(g::text), 4) from generate_series(1, ${Math.round((MIB * 1024 * 1024) / 170)}) g`);
  const label = /new backup label = (\S+)/.exec(env.runOk(["--type=full", "--log-level-console=info", "backup"]))![1]!;
  const sample = (extra: string[]) => {
    const target = join(env.base, "bench-target");
    rmSync(target, { recursive: true, force: true });
    mkdirAsPostgres(target);
    const started = performance.now();
    const r = runAsPostgres([BINARY, `--config=${env.conf}`, "--stanza=bench", `--repo2-path=${target}`, "--repo-target=2", `--set=${label}`, "--process-max=2", "--log-level-console=info", ...extra, "backup-copy"]);
    const secs = (performance.now() - started) / 1000;
    if (r.code !== 0) throw new Error(`backup-copy failed: ${r.stdout}${r.stderr}`);
    // The command's own figure: bytes granted / time since the first grant (no start-up, no final sync).
    const own = /moved at ([\d.]+)MiB\/s/.exec(r.stdout);
    return { secs, bytes: treeBytes(target), own: own ? Number(own[1]) : undefined };
  };
  const kinds = { "no rate-limit": [], "rate-limit=4PiB (never binds)": ["--rate-limit=4PiB"], [`rate-limit=${RATE_TEXT}`]: [`--rate-limit=${RATE_TEXT}`] } as Record<string, string[]>;
  const results = new Map<string, { secs: number; bytes: number; own?: number }[]>();
  for (let i = 0; i < ROUNDS; i++) for (const [k, extra] of Object.entries(kinds)) results.set(k, [...(results.get(k) ?? []), sample(extra)]);
  console.log(`backup-copy of a ${MIB} MiB cluster's uncompressed full backup, process-max 2, medians of ${ROUNDS}\n`);
  console.log("| run | bytes moved | wall s | MiB/s (bytes / wall) | vs limit | MiB/s (the command's: since its first byte) | vs limit |\n|---|---|---|---|---|---|---|");
  for (const [k, rs] of results) {
    const secs = median(rs.map((r) => r.secs));
    const bytes = rs[0]!.bytes;
    const rate = bytes / secs;
    const limited = k === `rate-limit=${RATE_TEXT}`;
    const pct = (r: number) => (limited ? `${(((r - RATE) / RATE) * 100).toFixed(1)} %` : "");
    const own = rs[0]!.own === undefined ? undefined : median(rs.map((r) => r.own!)) * 1048576;
    console.log(`| ${k} | ${(bytes / 1048576).toFixed(1)} MiB | ${secs.toFixed(2)} | ${(rate / 1048576).toFixed(1)} | ${pct(rate)} | ${own === undefined ? "" : (own / 1048576).toFixed(1)} | ${own === undefined ? "" : pct(own)} |`);
  }
} finally {
  await env.destroy();
  rmSync(env.base, { recursive: true, force: true });
}
