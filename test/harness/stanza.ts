/**
 * A ready stanza for integration tests: a running cluster archiving into a repository, a config
 * file both pgbunker and pgbackrest read, and shortcuts to run either tool against it.
 */
import { chownSync, cpSync, existsSync, lchownSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Manifest } from "../../src/repo/manifest.ts";
import { Cluster, mkdirAsPostgres, PG_GID, PG_UID, spawnAsPostgres, tempDir, type RunResult } from "./cluster.ts";
import { BINARY, ensureBuilt, pgbackrest, pgbackrestAsync, pgbunker, pgbunkerAsync, writeConfig, PGBACKREST_BIN, type PgbackrestOptions, type PgbackrestVersion } from "./pgbunker.ts";

export interface StanzaOptions {
  /** Which tool PostgreSQL's archive_command runs (and which creates the stanza). */
  archiver?: "pgbunker" | "pgbackrest";
  stanza?: string;
  major?: number;
  /** Extra [global] settings. */
  global?: Record<string, string | number | boolean>;
  conf?: Record<string, string | number>;
  /** Name of the config file in the temp dir (default pgbunker.conf). */
  configName?: string;
}

export class StanzaEnv {
  readonly base: string;
  readonly conf: string;
  readonly stanza: string;
  readonly repo: string;
  readonly spool: string;
  readonly lock: string;
  readonly log: string;
  readonly cluster: Cluster;
  /** Clusters restored by restoreAndStart, destroyed with the stanza. */
  readonly #restored: Cluster[] = [];
  #restoreCount = 0;

  constructor(base: string, conf: string, stanza: string, cluster: Cluster) {
    this.base = base;
    this.conf = conf;
    this.stanza = stanza;
    this.repo = join(base, "repo");
    this.spool = join(base, "spool");
    this.lock = join(base, "lock");
    this.log = join(base, "log");
    this.cluster = cluster;
  }

  static create(opts: StanzaOptions = {}): Promise<StanzaEnv> {
    return StanzaEnv.build(StanzaEnv, opts);
  }

  /** Create the cluster and the stanza, as an instance of `make` (subclasses add helpers). */
  protected static async build<T extends StanzaEnv>(make: new (base: string, conf: string, stanza: string, cluster: Cluster) => T, opts: StanzaOptions): Promise<T> {
    ensureBuilt();
    const base = tempDir();
    const stanza = opts.stanza ?? "demo";
    const conf = join(base, opts.configName ?? "pgbunker.conf");
    const archiver = opts.archiver ?? "pgbunker";
    const archiveCommand = archiver === "pgbunker" ? `${BINARY} --config=${conf} --stanza=${stanza} archive-push %p` : `pgbackrest --config=${conf} --stanza=${stanza} archive-push %p`;
    const cluster = await Cluster.create({ baseDir: base, major: opts.major, conf: { archive_mode: "on", archive_command: `'${archiveCommand}'`, ...opts.conf } });
    mkdirAsPostgres(join(base, "log"));
    mkdirAsPostgres(join(base, "spool"));
    writeConfig(conf, {
      global: {
        "repo1-path": join(base, "repo"),
        "log-path": join(base, "log"),
        "lock-path": join(base, "lock"),
        "spool-path": join(base, "spool"),
        "log-level-console": "info",
        "log-level-file": "detail",
        "start-fast": true,
        "compress-type": "lz4",
        "repo1-retention-full": 99,
        "archive-timeout": 30,
        ...opts.global,
      },
      [stanza]: cluster.pgOptions(1),
    });
    const env = new make(base, conf, stanza, cluster);
    await cluster.startAsync();
    const r = archiver === "pgbunker" ? await env.runAsync(["stanza-create"]) : await env.backrestAsync(["stanza-create"]);
    if (r.code !== 0) throw new Error(`stanza-create failed: ${r.stdout}\n${r.stderr}`);
    return env;
  }

  /** pgbunker --config --stanza ARGS (cwd: where to run it, as PostgreSQL runs it in the data directory) */
  run(args: string[], opts: { cwd?: string } = {}): RunResult {
    return pgbunker([`--config=${this.conf}`, `--stanza=${this.stanza}`, ...args], opts);
  }

  runOk(args: string[], opts: { cwd?: string } = {}): string {
    return mustExitZero("pgbunker", args, this.run(args, opts));
  }

  /** run() without blocking the event loop (several stanzas driven at once). */
  runAsync(args: string[], opts: { cwd?: string } = {}): Promise<RunResult> {
    return pgbunkerAsync([`--config=${this.conf}`, `--stanza=${this.stanza}`, ...args], opts);
  }

  async runOkAsync(args: string[], opts: { cwd?: string } = {}): Promise<string> {
    return mustExitZero("pgbunker", args, await this.runAsync(args, opts));
  }

  /** pgbackrest --config --stanza ARGS */
  backrest(args: string[], opts: PgbackrestOptions = {}): RunResult {
    return pgbackrest([`--config=${this.conf}`, `--stanza=${this.stanza}`, ...args], opts);
  }

  backrestOk(args: string[], opts: PgbackrestOptions = {}): string {
    return mustExitZero("pgbackrest", args, this.backrest(args, opts));
  }

  backrestAsync(args: string[], opts: PgbackrestOptions = {}): Promise<RunResult> {
    return pgbackrestAsync([`--config=${this.conf}`, `--stanza=${this.stanza}`, ...args], opts);
  }

  async backrestOkAsync(args: string[], opts: PgbackrestOptions = {}): Promise<string> {
    return mustExitZero("pgbackrest", args, await this.backrestAsync(args, opts));
  }

  /** Switch WAL and wait until the segment is archived (so everything up to now is in the archive). */
  async archiveNow(timeoutMs = 30_000): Promise<string> {
    const seg = await this.cluster.scalar("select pg_walfile_name(pg_switch_wal())");
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.cluster.query("select last_archived_wal, last_failed_wal from pg_stat_archiver");
      const last = r[0]!.last_archived_wal as string | null;
      if (last && last >= seg) return seg;
      if (Date.now() > deadline) throw new Error(`segment ${seg} not archived in time (last ${last}, failed ${r[0]!.last_failed_wal}); log:\n${this.cluster.tailLog()}`);
      await Bun.sleep(100);
    }
  }

  /** A backup's directory in the repository. */
  backupDir(label: string): string {
    return join(this.repo, "backup", this.stanza, label);
  }

  /** A finished backup's manifest, parsed. */
  manifest(label: string): Manifest {
    return Manifest.parse(readFileSync(join(this.backupDir(label), "backup.manifest"), "utf8"));
  }

  /**
   * Checkpoint, then let two seconds pass, so that a test can count what an incr copies: files
   * written in the second a backup starts copying are copied again by the next incr (the
   * time-resolution rule, src/command/backup/incremental.ts: a prior copy counts only for mtimes
   * before its copy start - 1 s). Call it after loading data and before the full.
   */
  async settle(): Promise<void> {
    await this.cluster.query("checkpoint");
    await Bun.sleep(2100);
  }

  /** Labels of the backups in backup.info, oldest first (read by pgbackrest, the oracle). */
  backupLabels(): string[] {
    const info = JSON.parse(this.backrestOk(["info", "--output=json"])) as { backup: { label: string }[] }[];
    return info[0]!.backup.map((b) => b.label);
  }

  /**
   * Restore a backup with pgbunker or pgBackRest (the oracle) into a new directory, with archiving
   * off (the restored configuration would archive into this stanza), and start it until it has
   * promoted. Destroyed with the stanza.
   */
  async restoreAndStart(tool: "pgbunker" | "pgbackrest" | `pgbackrest-${PgbackrestVersion}`, set: string, extra: string[] = ["--type=immediate", "--target-action=promote"], major?: number, backrest: PgbackrestOptions = {}): Promise<Cluster> {
    // Named before the first await, so that restores running at once get directories of their own.
    const dir = mkdirAsPostgres(join(this.base, `restore-${this.#restoreCount++}`));
    const args = [`--pg1-path=${dir}`, `--set=${set}`, ...extra, "restore"];
    if (tool === "pgbunker") await this.runOkAsync(args);
    else await this.backrestOkAsync(args, tool === "pgbackrest" ? backrest : { ...backrest, bin: PGBACKREST_BIN[tool.slice("pgbackrest-".length) as PgbackrestVersion] });
    const c = await Cluster.startRestored(dir, major ?? this.cluster.major);
    this.#restored.push(c);
    return c;
  }

  /**
   * Start `pgbunker ARGS backup` and SIGKILL it once the partial manifest (backup.manifest.copy) of
   * a backup newer than `after` satisfies `ready`; returns that backup's label and partial manifest
   * (`decrypt` opens it in an encrypted repository). The backup may be of any type (an incr's label
   * sorts after its prior's; a complete backup, with its final manifest, is never taken); `repoPath` is the repository it writes to (default repo1's).
   */
  async killBackupWhen(args: string[], after: string, ready: (partial: Manifest) => boolean, decrypt: (stored: Buffer) => Buffer = (b) => b, repoPath = this.repo): Promise<{ label: string; partial: Manifest }> {
    const p = spawnAsPostgres([BINARY, `--config=${this.conf}`, `--stanza=${this.stanza}`, ...args, "backup"]);
    const dir = join(repoPath, "backup", this.stanza);
    const partial = (): { label: string; partial: Manifest } | undefined => {
      for (const label of readdirSync(dir).filter((n) => /^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/.test(n) && n > after && !existsSync(join(dir, n, "backup.manifest")))) {
        try {
          return { label, partial: Manifest.parse(decrypt(readFileSync(join(dir, label, "backup.manifest.copy"))).toString("utf8")) };
        } catch {}
      }
      return undefined;
    };
    const deadline = Date.now() + 60_000;
    for (let seen = partial(); !(seen && ready(seen.partial)) && Date.now() < deadline; seen = partial()) await Bun.sleep(20);
    p.kill(9);
    await p.exited;
    const killed = partial();
    if (!killed) throw new Error(`no partial backup newer than ${after} appeared before the kill`);
    return killed;
  }

  /** A copy of the repository (or of another one, `from`), owned by postgres, beside it: to damage or to expire with the other tool. */
  copyRepo(name: string, from = this.repo): string {
    const dest = join(this.base, name);
    cpSync(from, dest, { recursive: true, verbatimSymlinks: true });
    const own = (dir: string): void => {
      chownSync(dir, PG_UID, PG_GID);
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) own(p);
        else lchownSync(p, PG_UID, PG_GID);
      }
    };
    own(dest);
    return dest;
  }

  /** Stop the cluster and remove the temp dir (the cluster only removes its data directory). */
  async destroy(): Promise<void> {
    for (const c of this.#restored) await c.destroy();
    await this.cluster.destroy();
    rmSync(this.base, { recursive: true, force: true });
  }
}

function mustExitZero(tool: string, args: string[], r: RunResult): string {
  if (r.code !== 0) throw new Error(`${tool} ${args.join(" ")} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r.stdout;
}
