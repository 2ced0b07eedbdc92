/**
 * A/B regression check: the same full backup and restore with two pgbunker executables (say the
 * last release and the current tree), taking turns on one cluster, so a refactoring can show it
 * changed nothing measurable. CPU seconds are the steadier figure on a shared machine.
 *
 *   bun bench/ab.ts --base=/path/to/old/dist/pgbunker [--scale=60] [--rounds=3]
 *
 * Runs as root (the tools run as postgres). Prints a markdown table for bench/RESULTS.md.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Cluster, mkdirAsPostgres, tempDir } from "../test/harness/cluster.ts";
import { ensureBuilt, writeConfig } from "../test/harness/pgbunker.ts";
import { asPostgres, pgTool, toolEnv } from "./lib/env.ts";
import { measure, type Cost } from "./lib/measure.ts";
import { median } from "./lib/report.ts";

const STANZA = "ab";

function arg(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? hit.slice(name.length + 3) : fallback;
}

async function main(): Promise<void> {
  const base = arg("base", "");
  if (!base) throw new Error("--base=PATH of the executable to compare against is required");
  const scale = Number(arg("scale", "60"));
  const rounds = Number(arg("rounds", "3"));
  const binaries = { base, head: ensureBuilt() };
  const dir = tempDir("pgbunker-ab-");
  const cluster = await Cluster.create({ baseDir: dir });
  try {
    cluster.start();
    await measure(pgTool(cluster, "pgbench", ["-i", "-q", "-s", String(scale)]), { as: asPostgres, env: toolEnv });
    const conf: Record<string, string> = {};
    for (const name of Object.keys(binaries)) {
      conf[name] = join(dir, `${name}.conf`);
      writeConfig(conf[name]!, {
        global: { "repo1-path": mkdirAsPostgres(join(dir, `repo-${name}`)), "repo1-retention-full": 99, "lock-path": mkdirAsPostgres(join(dir, `lock-${name}`)), "log-level-console": "warn", "compress-type": "lz4", "process-max": 2 },
        [STANZA]: cluster.pgOptions(1),
      });
    }
    const run = (name: keyof typeof binaries, args: string[]) => measure([binaries[name], `--config=${conf[name]}`, `--stanza=${STANZA}`, ...args], { as: asPostgres, env: toolEnv });
    for (const name of Object.keys(binaries) as (keyof typeof binaries)[]) await run(name, ["stanza-create"]);
    const costs: Record<string, { backup: Cost[]; restore: Cost[] }> = { base: { backup: [], restore: [] }, head: { backup: [], restore: [] } };
    for (let r = 0; r < rounds; r++)
      for (const name of (r % 2 ? ["head", "base"] : ["base", "head"]) as (keyof typeof binaries)[]) {
        costs[name]!.backup.push(await run(name, ["--type=full", "--archive-check=n", "--start-fast", "backup"]));
        const target = mkdirAsPostgres(join(dir, `restore-${name}-${r}`));
        costs[name]!.restore.push(await run(name, [`--pg1-path=${target}`, "--type=none", "restore"]));
        rmSync(target, { recursive: true, force: true });
      }
    const row = (what: "backup" | "restore") => {
      const m = (name: string, f: (c: Cost) => number) => median(costs[name]![what].map(f));
      const wall = (n: string) => m(n, (c) => c.wall);
      const cpu = (n: string) => m(n, (c) => c.user + c.sys);
      const rss = (n: string) => m(n, (c) => c.rssPeak) / 1024 ** 2;
      return `| full ${what} | ${wall("base").toFixed(2)} s | ${wall("head").toFixed(2)} s | ${(wall("head") / wall("base")).toFixed(2)} | ${cpu("base").toFixed(2)} s | ${cpu("head").toFixed(2)} s | ${(cpu("head") / cpu("base")).toFixed(2)} | ${rss("base").toFixed(0)} / ${rss("head").toFixed(0)} MiB |`;
    };
    console.log(`pgbench scale ${scale}, lz4, process-max 2, ${rounds} rounds taking turns, medians`);
    console.log("| | wall base | wall head | head/base | CPU base | CPU head | head/base | peak RSS base / head |");
    console.log("|---|---|---|---|---|---|---|---|");
    console.log(row("backup"));
    console.log(row("restore"));
  } finally {
    await cluster.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
