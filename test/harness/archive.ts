/**
 * A cluster archiving into a repository through the built pgbunker, for the archive and stanza
 * tests: temp dir with the cluster, repo, log, lock and spool paths, and one config file that
 * pgbunker and pgbackrest both read (named pgbackrest.conf so that pgbackrest's own `check`,
 * which wants its name in archive_command, accepts a cluster archiving with pgbunker).
 */
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Cluster, mkdirAsPostgres, tempDir, type RunResult } from "./cluster.ts";
import { BINARY, ensureBuilt, pgbackrest, pgbunker, writeConfig } from "./pgbunker.ts";

export interface ArchiveEnvOptions {
  stanza?: string;
  major?: number;
  /** Extra [global] options (compress-type, archive-async, repo1-cipher-*, ...). */
  global?: Record<string, string | number | boolean>;
  /** Extra postgresql.conf settings. */
  conf?: Record<string, string | number>;
  /** Start the cluster (default true). */
  start?: boolean;
}

export class ArchiveEnv {
  readonly base: string;
  readonly conf: string;
  readonly stanza: string;
  readonly repo: string;
  readonly spool: string;
  readonly lock: string;
  readonly log: string;
  readonly cluster: Cluster;
  global: Record<string, string | number | boolean>;

  private constructor(base: string, stanza: string, cluster: Cluster, global: Record<string, string | number | boolean>) {
    this.base = base;
    this.conf = join(base, "pgbackrest.conf");
    this.stanza = stanza;
    this.repo = join(base, "repo");
    this.spool = join(base, "spool");
    this.lock = join(base, "lock");
    this.log = join(base, "log");
    this.cluster = cluster;
    this.global = global;
  }

  static async create(opts: ArchiveEnvOptions = {}): Promise<ArchiveEnv> {
    ensureBuilt();
    const base = tempDir("pgbunker-archive-");
    const stanza = opts.stanza ?? "demo";
    const conf = join(base, "pgbackrest.conf");
    const cluster = await Cluster.create({
      baseDir: base,
      major: opts.major,
      conf: { archive_mode: "on", archive_command: `'${BINARY} --config=${conf} --stanza=${stanza} archive-push %p'`, ...opts.conf },
    });
    const env = new ArchiveEnv(base, stanza, cluster, opts.global ?? {});
    mkdirAsPostgres(env.log);
    mkdirAsPostgres(env.spool);
    env.writeConfig();
    if (opts.start !== false) cluster.start();
    return env;
  }

  /** (Re)write the config file, e.g. after changing `global`. */
  writeConfig(): void {
    writeConfig(this.conf, {
      global: {
        "repo1-path": this.repo,
        "log-path": this.log,
        "lock-path": this.lock,
        "spool-path": this.spool,
        "log-level-console": "info",
        "log-level-file": "detail",
        "archive-timeout": 20,
        ...this.global,
      },
      [this.stanza]: { "pg1-path": this.cluster.dataDir, "pg1-port": this.cluster.port, "pg1-socket-path": this.cluster.socketDir },
    });
  }

  run(args: string[], opts: { cwd?: string } = {}): RunResult {
    return pgbunker([`--config=${this.conf}`, `--stanza=${this.stanza}`, ...args], opts);
  }

  runOk(args: string[], opts: { cwd?: string } = {}): string {
    const r = this.run(args, opts);
    if (r.code !== 0) throw new Error(`pgbunker ${args.join(" ")} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    return r.stdout;
  }

  /** pgbackrest with the same config. */
  backrest(args: string[]): RunResult {
    return pgbackrest([`--config=${this.conf}`, `--stanza=${this.stanza}`, ...args]);
  }

  backrestOk(args: string[]): string {
    const r = this.backrest(args);
    if (r.code !== 0) throw new Error(`pgbackrest ${args.join(" ")} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    return r.stdout;
  }

  /** The archive id directory (archive/STANZA/15-1). */
  archiveIdDir(archiveId = `${this.cluster.major}-1`): string {
    return join(this.repo, "archive", this.stanza, archiveId);
  }

  /** Segment name → stored file name, over every 16-hex directory of an archive id. */
  archivedSegments(archiveId?: string): Map<string, string> {
    const dir = this.archiveIdDir(archiveId);
    const out = new Map<string, string>();
    let subdirs: string[] = [];
    try {
      subdirs = readdirSync(dir).filter((d) => /^[0-9A-F]{16}$/.test(d));
    } catch {
      return out;
    }
    for (const d of subdirs)
      for (const f of readdirSync(join(dir, d))) {
        const m = /^([0-9A-F]{24})-[0-9a-f]{40}/.exec(f);
        if (m) out.set(m[1]!, join(dir, d, f));
      }
    return out;
  }

  /** Switch WAL and wait until PostgreSQL reports the segment archived. */
  async switchAndWait(timeoutMs = 30_000): Promise<string> {
    await this.cluster.query("select pg_switch_wal() from (select txid_current()) t");
    const seg = await this.cluster.scalar("select pg_walfile_name(pg_current_wal_lsn() - 1)");
    await this.waitArchived(seg, timeoutMs);
    return seg;
  }

  async waitArchived(seg: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const last = await this.cluster.scalar("select coalesce(last_archived_wal, '') from pg_stat_archiver");
      if (last >= seg && /^[0-9A-F]{24}$/.test(last)) return;
      if (Date.now() > deadline) throw new Error(`segment ${seg} not archived (last ${last}); log:\n${this.cluster.tailLog(20)}`);
      await Bun.sleep(100);
    }
  }

  /** Stop the cluster and remove everything under the temp dir. */
  async destroy(): Promise<void> {
    await this.cluster.destroy();
    rmSync(this.base, { recursive: true, force: true });
  }
}

export function sha1File(path: string): string {
  return new Bun.CryptoHasher("sha1").update(readFileSync(path)).digest("hex");
}

/** Decompress a repository file with the system tool for its extension; returns the bytes' SHA-1. */
export function sha1OfStored(path: string): string {
  const tool = path.endsWith(".lz4") ? ["lz4", "-d", "-c"] : path.endsWith(".gz") ? ["gzip", "-d", "-c"] : path.endsWith(".zst") ? ["zstd", "-d", "-c"] : path.endsWith(".bz2") ? ["bzip2", "-d", "-c"] : ["cat"];
  const r = Bun.spawnSync([...tool, path]);
  if (r.exitCode !== 0) throw new Error(`${tool.join(" ")} ${path} failed: ${r.stderr.toString()}`);
  return new Bun.CryptoHasher("sha1").update(r.stdout).digest("hex");
}
