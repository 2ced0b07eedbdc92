/**
 * Backup and restore to an SFTP repository, pgbunker against pgBackRest 2.59.1, with one config
 * file (run as root: `bun bench/sftp.ts [scale] [runs]`).
 *
 * One pgbench cluster (scale 20 by default, ~300 MB) and a private sshd on 127.0.0.1 with
 * internal-sftp (test/harness/sshd.ts, legacyClients so pgBackRest's libssh2 can log in). Each
 * tool takes a full lz4 backup at process-max 2 into its own repository path on that server and
 * restores it; the tools take turns; medians. Client, sshd and PostgreSQL share this machine's
 * cores, so the figures include SSH encryption on both ends. Prints a markdown table.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Cluster, mkdirAsPostgres, runAsPostgres, tempDir } from "../test/harness/cluster.ts";
import { BINARY, ensureBuilt, PGBACKREST_259, writeConfig } from "../test/harness/pgbunker.ts";
import { Sshd } from "../test/harness/sshd.ts";

const scale = Number(process.argv[2] ?? 20);
const runs = Number(process.argv[3] ?? 3);
ensureBuilt();
const base = tempDir("pgbunker-bench-sftp-");
const sshd = await Sshd.start({ legacyClients: true });
const cluster = await Cluster.create({ baseDir: mkdirAsPostgres(join(base, "db")), conf: { archive_mode: "on", archive_command: "'/bin/true'" } });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  cluster.start();
  cluster.pgbenchInit(scale);
  await cluster.query("checkpoint");
  const tools = { pgbunker: BINARY, "pgBackRest 2.59.1": PGBACKREST_259 } as const;
  const conf = (name: string) =>
    writeConfig(join(base, `${name}.conf`), {
      global: {
        ...sshd.sftpOptions("repo1", mkdirAsPostgres(join(base, `repo-${name}`)), sshd.rsaKey),
        "log-path": mkdirAsPostgres(join(base, `log-${name}`)), "lock-path": mkdirAsPostgres(join(base, `lock-${name}`)),
        "log-level-console": "warn", "archive-check": "n", "expire-auto": "n", "start-fast": "y", "compress-type": "lz4", "process-max": 2,
      },
      demo: { "pg1-path": cluster.dataDir, "pg1-socket-path": cluster.socketDir, "pg1-port": cluster.port },
    });
  const confs = { pgbunker: conf("pgbunker"), "pgBackRest 2.59.1": conf("pgbackrest") } as const;
  const run = (tool: keyof typeof tools, args: string[]): number => {
    const t0 = performance.now();
    const r = runAsPostgres([tools[tool], `--config=${confs[tool]}`, "--stanza=demo", ...args]);
    if (r.code !== 0) throw new Error(`${tool} ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
    return performance.now() - t0;
  };
  const times: Record<string, { backup: number[]; restore: number[] }> = {};
  for (const tool of Object.keys(tools) as (keyof typeof tools)[]) {
    run(tool, ["stanza-create"]);
    times[tool] = { backup: [], restore: [] };
  }
  for (let i = 0; i < runs; i++) {
    for (const tool of Object.keys(tools) as (keyof typeof tools)[]) {
      times[tool]!.backup.push(run(tool, ["--type=full", "backup"]));
      const dest = mkdirAsPostgres(join(base, `restore-${i}`));
      times[tool]!.restore.push(run(tool, [`--pg1-path=${dest}`, "--type=immediate", "restore"]));
      rmSync(dest, { recursive: true, force: true });
    }
  }
  const size = Number(await cluster.scalar("select sum(pg_database_size(oid)) from pg_database")) / 1048576;
  console.log(`pgbench scale ${scale} (~${size.toFixed(0)} MiB of databases), SFTP repository on 127.0.0.1, full lz4 backup and restore at process-max 2, median of ${runs}, ${new Date().toISOString().slice(0, 10)}\n`);
  console.log("| | pgbunker | pgBackRest 2.59.1 | ratio (pgBackRest time / pgbunker time) |");
  console.log("|---|---|---|---|");
  for (const what of ["backup", "restore"] as const) {
    const ours = median(times.pgbunker![what]);
    const theirs = median(times["pgBackRest 2.59.1"]![what]);
    console.log(`| ${what} | ${(ours / 1000).toFixed(2)} s | ${(theirs / 1000).toFixed(2)} s | ${(theirs / ours).toFixed(2)}x |`);
  }
} finally {
  await cluster.destroy();
  await sshd.stop();
  rmSync(base, { recursive: true, force: true });
}
