/**
 * Full backup and restore into object stores, pgbunker against pgBackRest 2.59.1 on the same data
 * (run as root: `bun bench/object-store.ts [scale] [runs]`).
 *
 * One pgbench cluster (scale 10 by default, ~160 MB). Each tool backs up into its own prefix of
 * the same container/bucket and restores from it into an empty directory, with the same options
 * (lz4, process-max 2, 4MiB upload chunks). Engines: Azurite over HTTPS (a real Azure Blob
 * server, in node) and the test harness's GCS JSON-API server (not Google's service). Both
 * engines run on this machine and share its 2 cores with the tools, so the numbers compare the
 * tools, not the clouds. Prints a markdown table: best wall time of the runs, and the ratio.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Azurite } from "../test/harness/azurite.ts";
import { Cluster, mkdirAsPostgres, runAsPostgres, tempDir } from "../test/harness/cluster.ts";
import { gcsRepoOptions, GcsServerProcess } from "../test/harness/gcs-server.ts";
import { BINARY, ensureBuilt, writeConfig } from "../test/harness/pgbunker.ts";

const PGBACKREST_2_59 = "/opt/pgbackrest-2.59.1/bin/pgbackrest";
const scale = Number(process.argv[2] ?? 10);
const runs = Number(process.argv[3] ?? 2);
ensureBuilt();
const base = tempDir("pgbunker-bench-");
const az = await Azurite.start();
const gcs = await GcsServerProcess.start();
const cluster = await Cluster.create({ baseDir: mkdirAsPostgres(join(base, "db")), conf: { archive_mode: "on", archive_command: "'/bin/true'" } });

try {
  cluster.start();
  cluster.pgbenchInit(scale);
  await cluster.query("checkpoint");
  await az.createContainer("bench");
  await gcs.createBucket("bench");
  const common = { "log-path": mkdirAsPostgres(join(base, "log")), "lock-path": mkdirAsPostgres(join(base, "lock")), "log-level-console": "info", "archive-check": "n", "expire-auto": "n", "start-fast": "y", "compress-type": "lz4", "process-max": 2, "repo1-storage-upload-chunk-size": "4MiB" };
  const stores = { azure: (p: string) => ({ ...az.repoOptions(1, "bench"), "repo1-path": p }), gcs: (p: string) => ({ ...gcsRepoOptions(gcs, 1, "bench"), "repo1-path": p }) };
  const time = (bin: string, conf: string, args: string[]): { ms: number; out: string } => {
    const t0 = performance.now();
    const r = runAsPostgres([bin, `--config=${conf}`, "--stanza=demo", ...args]);
    if (r.code !== 0) throw new Error(`${bin} ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
    return { ms: performance.now() - t0, out: r.stdout };
  };
  const rows: string[] = [];
  for (const [store, opts] of Object.entries(stores)) {
    const result: Record<string, { backup: number; restore: number }> = {};
    for (const [tool, bin] of [["pgbunker", BINARY], ["pgBackRest 2.59.1", PGBACKREST_2_59]] as const) {
      const conf = writeConfig(join(base, `${store}-${tool.length}.conf`), {
        global: { ...common, ...opts(`/${tool.split(" ")[0]}`) },
        demo: { "pg1-path": cluster.dataDir, "pg1-socket-path": cluster.socketDir, "pg1-port": cluster.port },
      });
      time(bin, conf, ["stanza-create"]);
      let backup = Number.POSITIVE_INFINITY;
      let restore = Number.POSITIVE_INFINITY;
      for (let i = 0; i < runs; i++) {
        backup = Math.min(backup, time(bin, conf, ["--type=full", "backup"]).ms);
        const target = mkdirAsPostgres(join(base, `restore-${store}-${tool.length}-${i}`));
        restore = Math.min(restore, time(bin, conf, [`--pg1-path=${target}`, "--type=none", "restore"]).ms);
        rmSync(target, { recursive: true, force: true });
      }
      result[tool] = { backup, restore };
    }
    const a = result.pgbunker!;
    const b = result["pgBackRest 2.59.1"]!;
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    rows.push(`| ${store} | backup | ${s(a.backup)} | ${s(b.backup)} | ${(a.backup / b.backup).toFixed(2)} |`);
    rows.push(`| ${store} | restore | ${s(a.restore)} | ${s(b.restore)} | ${(a.restore / b.restore).toFixed(2)} |`);
    console.error(rows.slice(-2).join("\n"));
  }
  console.log(`pgbench scale ${scale}, full backup and restore, lz4, process-max 2, best of ${runs} runs, ${new Date().toISOString().slice(0, 10)}\n`);
  console.log("| store | operation | pgbunker | pgBackRest 2.59.1 | ratio (pgbunker / pgBackRest) |");
  console.log("|---|---|---|---|---|");
  for (const row of rows) console.log(row);
} finally {
  await cluster.destroy();
  await az.stop();
  await gcs.stop();
  rmSync(base, { recursive: true, force: true });
}
