/**
 * Per-segment latency of archive-push and archive-get with the repository on this host vs on a
 * repository host over SSH (real sshd on 127.0.0.1), as PostgreSQL runs them: one process per
 * segment, so the remote case pays for an SSH connection and a remote start each time.
 *
 *   bun bench/remote-archive.ts [segments=8]
 */
import { chownSync, copyFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Cluster, mkdirAsPostgres, PG_GID, PG_UID, runAsPostgres, tempDir } from "../test/harness/cluster.ts";
import { BINARY, ensureBuilt, writeConfig } from "../test/harness/pgbunker.ts";
import { Sshd } from "../test/harness/sshd.ts";

const SEGMENTS = Number(process.argv[2] ?? 8);
ensureBuilt();
const base = tempDir("pgbunker-bench-");
const sshd = await Sshd.start();
const cluster = await Cluster.create({ baseDir: mkdirAsPostgres(join(base, "db")) });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  cluster.start();
  cluster.pgbenchInit(Math.max(4, SEGMENTS));
  await cluster.query("checkpoint");
  const walDir = mkdirAsPostgres(join(base, "wal"));
  const segments = readdirSync(join(cluster.dataDir, "pg_wal")).filter((f) => /^[0-9A-F]{24}$/.test(f)).sort().slice(0, SEGMENTS);
  for (const s of segments) {
    copyFileSync(join(cluster.dataDir, "pg_wal", s), join(walDir, s));
    chownSync(join(walDir, s), PG_UID, PG_GID);
  }
  const common = { "log-path": mkdirAsPostgres(join(base, "log")), "lock-path": mkdirAsPostgres(join(base, "lock")), "log-level-file": "off" };
  const stanza = { "pg1-path": cluster.dataDir, "pg1-socket-path": cluster.socketDir, "pg1-port": cluster.port };
  const repoHostConf = writeConfig(join(base, "repo-host.conf"), { global: { "repo1-path": join(base, "repo-remote"), ...common } });
  const confs = {
    local: writeConfig(join(base, "local.conf"), { global: { "repo1-path": join(base, "repo-local"), ...common }, bench: stanza }),
    remote: writeConfig(join(base, "remote.conf"), { global: { ...sshd.hostOptions("repo1", BINARY, repoHostConf), ...common }, bench: stanza }),
  };
  // The stanza is created where the repository is (local, and on the "repository host").
  for (const conf of [confs.local, writeConfig(join(base, "create.conf"), { global: { "repo1-path": join(base, "repo-remote"), ...common }, bench: stanza })]) {
    const r = runAsPostgres([BINARY, `--config=${conf}`, "--stanza=bench", "stanza-create"]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  const out = mkdirAsPostgres(join(base, "out"));
  const time = (conf: string, args: string[]) => {
    const t0 = performance.now();
    const r = runAsPostgres([BINARY, `--config=${conf}`, "--stanza=bench", ...args]);
    if (r.code !== 0) throw new Error(`${args.join(" ")}: ${r.stderr}`);
    return performance.now() - t0;
  };
  const push = { local: [] as number[], remote: [] as number[] };
  const get = { local: [] as number[], remote: [] as number[] };
  for (const s of segments)
    for (const where of ["local", "remote"] as const) {
      push[where].push(time(confs[where], ["archive-push", join(walDir, s)]));
      get[where].push(time(confs[where], ["archive-get", s, join(out, `${where}-${s}`)]));
    }
  console.log(`${SEGMENTS} WAL segments (16 MiB, pgbench), lz4, median wall time per call, ${new Date().toISOString().slice(0, 10)}\n`);
  console.log("| command | repository on this host | repository host over SSH |");
  console.log("|---|---|---|");
  console.log(`| archive-push | ${median(push.local).toFixed(0)} ms | ${median(push.remote).toFixed(0)} ms |`);
  console.log(`| archive-get | ${median(get.local).toFixed(0)} ms | ${median(get.remote).toFixed(0)} ms |`);
} finally {
  await cluster.destroy();
  await sshd.stop();
  rmSync(base, { recursive: true, force: true });
}

