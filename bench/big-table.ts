/**
 * One big table: does a backup and a restore scale with process-max when one table dominates the
 * cluster (its 1 GiB segments worked on in chunks by several workers: backup/chunk.ts,
 * restore/chunk.ts)? Also what the chunked path costs itself: the same runs with chunking off.
 *
 *   bun bench/big-table.ts [GiB=0.9] [rounds=3]     # as root (the cluster runs as postgres)
 *
 * A PostgreSQL 15 cluster with one table of GiB (md5 text, lz4 ~2:1). In turns, per round:
 * full backup lz4 with process-max 1, 2, and 2 not chunked (PGBUNKER_TEST_CHUNK_SIZE raised so no
 * file reaches the threshold); restore of the process-max 2 backup into an empty directory the
 * same three ways (the repository in the page cache). A table under 1 GiB is one segment: the
 * case chunks are for (two segments and two workers split nothing).
 * Wall time of the whole command, medians of `rounds`. Results go to bench/RESULTS.md by hand,
 * with this command line.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { cpus, loadavg } from "node:os";
import { mkdirAsPostgres, runAsPostgres } from "../test/harness/cluster.ts";
import { BINARY } from "../test/harness/pgbunker.ts";
import { StanzaEnv } from "../test/harness/stanza.ts";

const GIB = Number(process.argv[2] ?? 0.9);
const ROUNDS = Number(process.argv[3] ?? 3);
const NO_CHUNKS = { PGBUNKER_TEST_CHUNK_SIZE: String(64 * 1024 ** 3) };
// Chunking is off by default (shared/chunk.ts says why); the chunked runs turn it on at its real size.
const CHUNKED = { PGBUNKER_TEST_CHUNK_SIZE: String(64 * 1024 ** 2) };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const env = await StanzaEnv.create({ stanza: "bench", global: { "compress-type": "lz4", "log-level-console": "warn", "repo1-retention-full": 999 } });
try {
  await env.cluster.query("create table big (id bigint, v text)");
  // ~ 180 bytes a row on disk; md5 hex text compresses about 2:1 with lz4.
  const rows = Math.round((GIB * 1024 ** 3) / 180);
  const step = 2_000_000;
  for (let from = 1; from <= rows; from += step)
    await env.cluster.query(`insert into big select g, md5(g::text) || md5((g * 3)::text) || md5((g * 7)::text) || md5((g * 11)::text) from generate_series(${from}, ${Math.min(rows, from + step - 1)}) g`);
  await env.cluster.query("checkpoint");
  const tableBytes = Number(await env.cluster.scalar("select pg_relation_size('big')"));
  const time = (args: string[], extraEnv: Record<string, string> = {}) => {
    const started = performance.now();
    // CPU seconds (user + system, all threads) from wait4 via /usr/bin/time: on a loaded machine
    // the wall time says little about scaling, the CPU time still shows what the work costs.
    const r = runAsPostgres(["/usr/bin/time", "-f", "CPU %U %S", BINARY, `--config=${env.conf}`, "--stanza=bench", ...args], { env: extraEnv });
    const secs = (performance.now() - started) / 1000;
    if (r.code !== 0) throw new Error(`${args.join(" ")} failed: ${r.stdout}${r.stderr}`);
    const cpu = /CPU ([\d.]+) ([\d.]+)/.exec(r.stderr)!;
    return { secs, cpu: Number(cpu[1]) + Number(cpu[2]), out: r.stdout };
  };
  const results = new Map<string, number[]>();
  const cpuOf = new Map<string, number[]>();
  const add = (k: string, t: { secs: number; cpu: number }) => {
    results.set(k, [...(results.get(k) ?? []), t.secs]);
    cpuOf.set(k, [...(cpuOf.get(k) ?? []), t.cpu]);
  };
  let label = "";
  // process-max 1 never splits a file (shared/chunk.ts filesToSplit): "not chunked" is measured at 2 only.
  const runs = [["process-max 1", 1, CHUNKED], ["process-max 2", 2, CHUNKED], ["process-max 2, not chunked", 2, NO_CHUNKS]] as const;
  for (let i = 0; i < ROUNDS; i++) {
    for (const [name, pm, e] of runs) {
      const b = time(["--type=full", `--process-max=${pm}`, "--log-level-console=info", "backup"], e);
      add(`backup lz4, ${name}`, b);
      if (name === "process-max 2") label = /new backup label = (\S+)/.exec(b.out)![1]!;
    }
    for (const [name, pm, e] of runs) {
      const target = join(env.base, "bench-restore");
      rmSync(target, { recursive: true, force: true });
      mkdirAsPostgres(target);
      add(`restore (of the process-max 2 backup), ${name}`, time([`--pg1-path=${target}`, `--set=${label}`, `--process-max=${pm}`, "--type=immediate", "restore"], e));
    }
    env.runOk(["expire", "--repo1-retention-full=1"]);
  }
  console.log(`one table of ${(tableBytes / 1024 ** 3).toFixed(2)} GiB (${Math.ceil(tableBytes / 1024 ** 3)} segments), ${cpus().length} cores, medians of ${ROUNDS}\n`);
  console.log("| run | wall s (median) | wall, all | CPU s (median) |\n|---|---|---|---|");
  for (const [k, xs] of results) console.log(`| ${k} | ${median(xs).toFixed(2)} | ${xs.map((x) => x.toFixed(2)).join(" ")} | ${median(cpuOf.get(k)!).toFixed(2)} |`);
  for (const kind of ["backup lz4", "restore (of the process-max 2 backup)"]) {
    const one = median(results.get(`${kind}, process-max 1`)!);
    const two = median(results.get(`${kind}, process-max 2`)!);
    console.log(`\n${kind}: process-max 2 vs 1: ${(one / two).toFixed(2)}x`);
  }
  console.log(`load average at the end: ${loadavg()[0]!.toFixed(1)}`);
} finally {
  await env.destroy();
}
