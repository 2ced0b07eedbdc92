/**
 * Remote vs local full backup throughput on the same data (run as root: `bun bench/remote-backup.ts [scale] [runs]`).
 *
 * One pgbench cluster (scale 20 by default, ~300 MB). The same full backup is taken twice per
 * setting: locally (pgbunker beside the cluster, pg1-path) and from a "backup host" over a real
 * sshd on 127.0.0.1 (pg1-host: checksums and compression run in `pgbunker remote` beside the
 * cluster, compressed bytes cross SSH). Both hosts share this machine's cores, so the remote
 * numbers include the sshd relay and the SSH encryption on both ends competing with the backup.
 * The same backup over TLS (pg1-host-type=tls): `pgbunker server` beside the cluster, no relay.
 * Prints a markdown table (MB/s = data directory bytes / wall time, best of the runs).
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Cluster, mkdirAsPostgres, runAsPostgres, tempDir } from "../test/harness/cluster.ts";
import { BINARY, ensureBuilt, writeConfig } from "../test/harness/pgbunker.ts";
import { Sshd } from "../test/harness/sshd.ts";
import { Certs, TlsServer } from "../test/harness/tls.ts";
import { freePort } from "../test/harness/cluster.ts";

const scale = Number(process.argv[2] ?? 20);
const runs = Number(process.argv[3] ?? 2);
ensureBuilt();
const base = tempDir("pgbunker-bench-");
const sshd = await Sshd.start();
const certs = Certs.make();
const tlsPort = await freePort();
let server: TlsServer | undefined;
const cluster = await Cluster.create({ baseDir: mkdirAsPostgres(join(base, "db")), conf: { archive_mode: "on", archive_command: "'/bin/true'" } });

try {
  cluster.start();
  cluster.pgbenchInit(scale);
  await cluster.query("checkpoint");
  const dbConf = writeConfig(join(base, "db.conf"), {
    global: { ...certs.serverOptions(tlsPort, "backup=demo"), "log-path": mkdirAsPostgres(join(base, "server-log")) },
    demo: { "pg1-path": cluster.dataDir, "pg1-socket-path": cluster.socketDir, "pg1-port": cluster.port },
  });
  server = await TlsServer.start(dbConf, tlsPort, join(base, "server.out"));

  const common = { "log-path": mkdirAsPostgres(join(base, "log")), "lock-path": mkdirAsPostgres(join(base, "lock")), "log-level-console": "info", "archive-check": "n", "expire-auto": "n", "start-fast": "y" };
  const local = writeConfig(join(base, "local.conf"), {
    global: { "repo1-path": join(base, "repo-local"), ...common },
    demo: { "pg1-path": cluster.dataDir, "pg1-socket-path": cluster.socketDir, "pg1-port": cluster.port },
  });
  const remote = writeConfig(join(base, "remote.conf"), {
    global: { "repo1-path": join(base, "repo-remote"), ...common },
    demo: { ...sshd.hostOptions("pg1", BINARY, dbConf), "pg1-path": cluster.dataDir },
  });

  const run = (conf: string, args: string[]): { ms: number; out: string } => {
    const t0 = performance.now();
    const r = runAsPostgres([BINARY, `--config=${conf}`, "--stanza=demo", ...args]);
    if (r.code !== 0) {
      console.error(Bun.spawnSync(["ls", "-la", base]).stdout.toString());
      throw new Error(`${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
    }
    return { ms: performance.now() - t0, out: r.stdout };
  };
  const tls = writeConfig(join(base, "tls.conf"), {
    global: { "repo1-path": join(base, "repo-tls"), ...common },
    demo: { ...certs.hostOptions("pg1", tlsPort, certs.client("backup")), "pg1-path": cluster.dataDir },
  });
  for (const conf of [local, remote, tls]) run(conf, ["stanza-create"]);

  const rows: string[] = [];
  // compress-type=none sends lz4-compressed bytes over SSH unless compress-level-network=0.
  for (const [compress, extra] of [["lz4", []], ["none", []], ["none", ["--compress-level-network=0"]]] as const) {
    for (const processMax of [1, 2]) {
      const result: Record<string, { ms: number; bytes: number; repo: number }> = {};
      for (const [name, conf] of [["local", local], ["remote", remote], ["tls", tls]] as const) {
        let best = Number.POSITIVE_INFINITY;
        let bytes = 0;
        let repoBytes = 0;
        for (let i = 0; i < runs; i++) {
          const { ms, out } = run(conf, ["--type=full", `--process-max=${processMax}`, `--compress-type=${compress}`, ...extra, "backup"]);
          best = Math.min(best, ms);
          const label = /new backup label = (\S+)/.exec(out)![1]!;
          const info = JSON.parse(run(conf, ["--log-level-console=warn", "info", "--output=json", `--set=${label}`]).out);
          const b = info[0].backup.at(-1);
          bytes = b.info.size;
          repoBytes = b.info.repository.size;
        }
        result[name] = { ms: best, bytes, repo: repoBytes };
      }
      const mbs = (r: { ms: number; bytes: number }) => (r.bytes / 1048576 / (r.ms / 1000)).toFixed(0);
      const l = result.local!;
      const r = result.remote!;
      const t = result.tls!;
      rows.push(`| ${compress}${extra.length ? " (network uncompressed)" : ""} | ${processMax} | ${(l.bytes / 1048576).toFixed(0)} MiB → ${(l.repo / 1048576).toFixed(0)} MiB | ${(l.ms / 1000).toFixed(2)} s (${mbs(l)} MB/s) | ${(r.ms / 1000).toFixed(2)} s (${mbs(r)} MB/s) | ${(t.ms / 1000).toFixed(2)} s (${mbs(t)} MB/s) | ${((t.ms / r.ms) * 100 - 100).toFixed(0)}% |`);
      console.error(rows.at(-1));
    }
  }
  console.log(`pgbench scale ${scale}, full backup, best of ${runs} runs, ${new Date().toISOString().slice(0, 10)}\n`);
  console.log("| compress | process-max | data → repo | local | pg1-host over ssh | pg1-host over tls | tls vs ssh |");
  console.log("|---|---|---|---|---|---|---|");
  for (const row of rows) console.log(row);
} finally {
  await cluster.destroy();
  await sshd.stop();
  await server?.stop();
  certs.remove();
  rmSync(base, { recursive: true, force: true });
}
