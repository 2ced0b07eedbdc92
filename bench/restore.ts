/**
 * Restore throughput: one pgbunker full backup (lz4) of a pgbench cluster, restored by pgbunker
 * and by pgBackRest 2.45 with the same process-max, into fresh directories. Prints MiB/s of data
 * directory bytes written per second of wall time (the whole command: manifest, files, fsync).
 *
 *   bun bench/restore.ts [SCALE=50] [PROCESS_MAX=1,2]
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { mkdirAsPostgres } from "../test/harness/cluster.ts";
import { StanzaEnv } from "../test/harness/stanza.ts";

const scale = Number(process.argv[2] ?? 50);
const processMax = (process.argv[3] ?? "1,2").split(",").map(Number);

const env = await StanzaEnv.create({ archiver: "pgbunker", global: { "log-level-console": "warn" } });
try {
  env.cluster.pgbenchInit(scale);
  env.runOk(["--type=full", "backup"]);
  const bytes = Number(await env.cluster.scalar("select sum(pg_database_size(oid)) from pg_database"));
  console.log(`pgbench scale ${scale}: ${(bytes / 2 ** 20).toFixed(0)} MiB in the cluster; ${new Date().toISOString()}`);
  for (const pm of processMax) {
    for (const tool of ["pgbunker", "pgbackrest"] as const) {
      const dir = mkdirAsPostgres(join(env.base, `${tool}-${pm}`));
      const args = [`--pg1-path=${dir}`, `--process-max=${pm}`, "restore"];
      const t = performance.now();
      if (tool === "pgbunker") env.runOk(args);
      else env.backrestOk(args);
      const s = (performance.now() - t) / 1000;
      console.log(`${tool.padEnd(10)} process-max=${pm}  ${s.toFixed(2)} s  ${(bytes / 2 ** 20 / s).toFixed(0)} MiB/s`);
      rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  await env.destroy();
}
