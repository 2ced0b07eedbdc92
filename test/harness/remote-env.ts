/**
 * Two hosts on one machine, talking over a private sshd only: a backup host (the repository,
 * its own config, log and lock paths) and a database host (the cluster, its own config, log,
 * lock and spool paths). Each config names the other host through repo1-host / pg1-host, so
 * every command below reaches the other side as it would in production: over SSH, running the
 * built pgbunker there as `pgbunker remote`. The cluster has no TCP port at all.
 *
 * With `transport: "tls"` there is no sshd: each host runs `pgbunker server` on its own port
 * (certificates by test/harness/tls.ts; the backup host's client CN is `backup-host`, the
 * database host's `db-host`, each authorised for the stanza on the other's server).
 */
import { join } from "node:path";
import { Cluster, freePort, mkdirAsPostgres, runAsPostgres, spawnAsPostgres, tempDir, type RunResult } from "./cluster.ts";
import { archivedSegmentsIn } from "./archive.ts";
import { BINARY, ensureBuilt, writeConfig } from "./pgbunker.ts";
import { Sshd } from "./sshd.ts";
import { Certs, TlsServer, type CertPair } from "./tls.ts";

export interface RemoteEnvOptions {
  stanza?: string;
  /** Extra [global] options of the backup host (compress-type, process-max, ...). */
  backupGlobal?: Record<string, string | number | boolean>;
  /** Extra [global] options of the database host. */
  dbGlobal?: Record<string, string | number | boolean>;
  /**
   * Put the backup host's pg1-host-port on this port instead of sshd's or the database host's
   * server's (a proxy in front of the database host). The database host's repo1-host-port stays
   * direct: archive_command keeps archiving when the proxy cuts, and never waits on a proxy that
   * runs in a test process busy in a synchronous spawn.
   */
  port?: number;
  transport?: "ssh" | "tls";
}

/** The TLS side of an environment: certificates, a server port per host, and the two servers. */
export interface TlsLink {
  certs: Certs;
  /** Client certificates of the backup host (CN backup-host) and the database host (CN db-host). */
  backupClient: CertPair;
  dbClient: CertPair;
  backupPort: number;
  dbPort: number;
  backupServer?: TlsServer;
  dbServer?: TlsServer;
}

export class RemoteEnv {
  readonly base: string;
  readonly stanza: string;
  readonly #sshd: Sshd | undefined;
  /** Set with transport "tls". */
  readonly tls: TlsLink | undefined;
  readonly cluster: Cluster;
  /** Backup host. */
  readonly backupDir: string;
  readonly backupConf: string;
  readonly repo: string;
  /** Database host. */
  readonly dbDir: string;
  readonly dbConf: string;
  readonly opts: RemoteEnvOptions;
  /** Clusters restoreOnDbHost started, destroyed with the environment. */
  readonly #restored: Cluster[] = [];

  private constructor(base: string, stanza: string, link: Sshd | TlsLink, cluster: Cluster, opts: RemoteEnvOptions) {
    this.base = base;
    this.stanza = stanza;
    this.#sshd = link instanceof Sshd ? link : undefined;
    this.tls = link instanceof Sshd ? undefined : link;
    this.cluster = cluster;
    this.backupDir = join(base, "backup-host");
    this.backupConf = join(this.backupDir, "pgbunker.conf");
    this.repo = join(this.backupDir, "repo");
    this.dbDir = join(base, "db-host");
    this.dbConf = join(this.dbDir, "pgbunker.conf");
    this.opts = opts;
  }

  static async create(opts: RemoteEnvOptions = {}): Promise<RemoteEnv> {
    ensureBuilt();
    const base = tempDir("pgbunker-topology-");
    const stanza = opts.stanza ?? "demo";
    const link = opts.transport === "tls" ? await tlsLink() : await Sshd.start();
    const dbDir = mkdirAsPostgres(join(base, "db-host"));
    mkdirAsPostgres(join(base, "backup-host"));
    const dbConf = join(dbDir, "pgbunker.conf");
    const cluster = await Cluster.create({
      baseDir: dbDir,
      conf: { archive_mode: "on", archive_command: `'${BINARY} --config=${dbConf} --stanza=${stanza} archive-push %p'` },
    });
    const env = new RemoteEnv(base, stanza, link, cluster, opts);
    for (const d of ["log", "lock", "spool"]) mkdirAsPostgres(join(env.dbDir, d));
    for (const d of ["log", "lock"]) mkdirAsPostgres(join(env.backupDir, d));
    env.writeConfigs();
    cluster.start();
    if (env.tls) {
      env.tls.dbServer = await TlsServer.start(env.dbConf, env.tls.dbPort, join(env.base, "db-server.out"));
      env.tls.backupServer = await TlsServer.start(env.backupConf, env.tls.backupPort, join(env.base, "backup-server.out"));
    }
    return env;
  }

  /** The sshd between the hosts (transport "ssh"). */
  get sshd(): Sshd {
    if (!this.#sshd) throw new Error("this environment talks TLS: it has no sshd");
    return this.#sshd;
  }

  /** Client options of one host to reach the other, and the [global] options of its own TLS server. */
  #link(kind: "pg1" | "repo1", remoteConfig: string, port: number | undefined): { host: Record<string, string | number>; server: Record<string, string | number> } {
    const tls = this.tls;
    // pg1 is what the backup host reaches (the database host), repo1 the other way round. A proxy
    // port stands in front of the database host only (see RemoteEnvOptions.port).
    const backupSide = kind === "pg1";
    if (!tls) {
      const host = this.sshd.hostOptions(kind, BINARY, remoteConfig);
      if (port !== undefined && backupSide) host[`${kind}-host-port`] = port;
      return { host, server: {} };
    }
    const hostPort = backupSide ? (port ?? tls.dbPort) : tls.backupPort;
    const host = tls.certs.hostOptions(kind, hostPort, backupSide ? tls.backupClient : tls.dbClient);
    const server = tls.certs.serverOptions(backupSide ? tls.backupPort : tls.dbPort, `${backupSide ? "db-host" : "backup-host"}=${this.stanza}`);
    return { host, server };
  }

  /** `backupStanza`: extra options of the backup host's [STANZA] section (pg1-host-cmd, ...). */
  writeConfigs(over: { backupGlobal?: Record<string, string | number | boolean>; dbGlobal?: Record<string, string | number | boolean>; backupStanza?: Record<string, string | number | boolean>; port?: number } = {}): void {
    const port = over.port ?? this.opts.port;
    const { host: pgHost, server: backupServer } = this.#link("pg1", this.dbConf, port);
    const { host: repoHost, server: dbServer } = this.#link("repo1", this.backupConf, port);
    writeConfig(this.backupConf, {
      global: {
        ...backupServer,
        "repo1-path": this.repo,
        "log-path": join(this.backupDir, "log"),
        "lock-path": join(this.backupDir, "lock"),
        "log-level-console": "info",
        "log-level-file": "detail",
        "archive-timeout": 30,
        ...this.opts.backupGlobal,
        ...over.backupGlobal,
      },
      [this.stanza]: { ...pgHost, "pg1-path": this.cluster.dataDir, ...over.backupStanza },
    });
    writeConfig(this.dbConf, {
      global: {
        ...repoHost,
        ...dbServer,
        "log-path": join(this.dbDir, "log"),
        "lock-path": join(this.dbDir, "lock"),
        "spool-path": join(this.dbDir, "spool"),
        "log-level-console": "info",
        "log-level-file": "detail",
        ...this.opts.dbGlobal,
        ...over.dbGlobal,
      },
      [this.stanza]: this.cluster.pgOptions(1),
    });
  }

  /** pgbunker on the backup host. */
  backupHost(args: string[], opts: { env?: Record<string, string> } = {}): RunResult {
    return runAsPostgres([BINARY, `--config=${this.backupConf}`, `--stanza=${this.stanza}`, ...args], { cwd: this.backupDir, env: opts.env });
  }

  /** pgbunker on the backup host, asynchronously (the test process keeps running, e.g. a TcpProxy). */
  async backupHostAsync(args: string[]): Promise<RunResult> {
    const p = spawnAsPostgres([BINARY, `--config=${this.backupConf}`, `--stanza=${this.stanza}`, ...args], { output: "pipe" });
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout as ReadableStream).text(), new Response(p.stderr as ReadableStream).text(), p.exited]);
    return { code, stdout, stderr };
  }

  /** pgbunker on the database host. */
  dbHost(args: string[], opts: { cwd?: string } = {}): RunResult {
    return runAsPostgres([BINARY, `--config=${this.dbConf}`, `--stanza=${this.stanza}`, ...args], { cwd: opts.cwd ?? this.dbDir });
  }

  static ok(r: RunResult, what: string): string {
    if (r.code !== 0) throw new Error(`${what} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    return r.stdout;
  }

  backupHostOk(args: string[]): string {
    return RemoteEnv.ok(this.backupHost(args), `backup host: pgbunker ${args.join(" ")}`);
  }

  dbHostOk(args: string[], opts: { cwd?: string } = {}): string {
    return RemoteEnv.ok(this.dbHost(args, opts), `database host: pgbunker ${args.join(" ")}`);
  }

  /**
   * pgBackRest 2.45 on the backup host's repository, as the oracle (its own config: the backup
   * host's has pgbunker-only SSH options).
   */
  backrest(args: string[]): RunResult {
    const conf = join(this.backupDir, "pgbackrest.conf");
    writeConfig(conf, {
      global: { "repo1-path": this.repo, "log-path": join(this.backupDir, "log"), "lock-path": join(this.backupDir, "lock"), "log-level-console": "warn" },
      [this.stanza]: { "pg1-path": this.cluster.dataDir },
    });
    return runAsPostgres(["pgbackrest", `--config=${conf}`, `--stanza=${this.stanza}`, ...args]);
  }

  backrestOk(args: string[]): string {
    return RemoteEnv.ok(this.backrest(args), `pgbackrest ${args.join(" ")}`);
  }

  /** The stanza's first archive id's directory in the repository. */
  archiveIdDir(): string {
    return join(this.repo, "archive", this.stanza, `${this.cluster.major}-1`);
  }

  /** The archived segments of the stanza's first archive id: segment name → stored file. */
  archived(): Map<string, string> {
    return archivedSegmentsIn(this.archiveIdDir());
  }

  /** Labels of the backups in the repository, oldest first, as info on the backup host lists them. */
  labels(): string[] {
    const info = JSON.parse(this.backupHostOk(["--log-level-console=warn", "info", "--output=json"])) as { backup: { label: string }[] }[];
    return info[0]!.backup.map((b) => b.label);
  }

  /**
   * Restore on the database host (through its repository host) into dbDir/NAME with these
   * restore options, and start the result (Cluster.startRestored); destroyed with the
   * environment. Returns the restore's output too.
   */
  async restoreOnDbHost(name: string, args: string[]): Promise<{ cluster: Cluster; out: string }> {
    const target = mkdirAsPostgres(join(this.dbDir, name));
    const out = this.dbHostOk([`--pg1-path=${target}`, ...args, "restore"]);
    const cluster = await Cluster.startRestored(target, this.cluster.major);
    this.#restored.push(cluster);
    return { cluster, out };
  }

  /** Switch WAL and wait until PostgreSQL reports the segment archived. */
  async switchAndWait(timeoutMs = 30_000): Promise<string> {
    await this.cluster.query("select pg_switch_wal() from (select txid_current()) t");
    const seg = await this.cluster.scalar("select pg_walfile_name(pg_current_wal_lsn() - 1)");
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const last = await this.cluster.scalar("select coalesce(last_archived_wal, '') from pg_stat_archiver");
      if (last >= seg && /^[0-9A-F]{24}$/.test(last)) return seg;
      if (Date.now() > deadline) throw new Error(`segment ${seg} not archived (last ${last}); log:\n${this.cluster.tailLog(20)}`);
      await Bun.sleep(100);
    }
  }

  async destroy(): Promise<void> {
    for (const c of this.#restored) await c.destroy();
    await this.cluster.destroy();
    await this.#sshd?.stop();
    await this.tls?.dbServer?.stop();
    await this.tls?.backupServer?.stop();
    this.tls?.certs.remove();
    const { rmSync } = await import("node:fs");
    rmSync(this.base, { recursive: true, force: true });
  }
}

async function tlsLink(): Promise<TlsLink> {
  const certs = Certs.make();
  return { certs, backupClient: certs.client("backup-host"), dbClient: certs.client("db-host"), backupPort: await freePort(), dbPort: await freePort() };
}
