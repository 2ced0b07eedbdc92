/**
 * What archive-push, archive-get and their asynchronous halves share: the repositories to use and
 * their passphrases, the cluster's identity from pg_control, PostgreSQL's relative WAL paths, and
 * the error reported when no repository could do the work.
 *
 * Kept free of worker, SSH and database code: archive-push and archive-get run once per WAL
 * segment, so what they load is paid for on every segment.
 */
import { realpathSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { err, PgbError } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";
import type { CompressType } from "../../filter/filter.ts";
import { readPgControl } from "../../postgres/control.ts";
import { loadArchiveInfo, type ArchiveInfo } from "../../repo/archive-info.ts";
import type { Storage } from "../../storage/storage.ts";
import { storagePg, storageRepo } from "../shared/storage.ts";

/** The repository passphrase (repoN-cipher-pass) when repoN is encrypted, else undefined. */
export function repoCipherPass(cfg: Config, index: number): string | undefined {
  const type = cfg.get(`repo${index}-cipher-type`);
  if (type === "none") return undefined;
  const pass = cfg.str(`repo${index}-cipher-pass`);
  if (!pass)
    throw err("OptionRequiredError", `${cfg.command} command requires option: repo${index}-cipher-pass`, `repo${index}-cipher-type=${type} needs the repository passphrase in the config file or in PGBUNKER_REPO${index}_CIPHER_PASS.`);
  return pass;
}

/** Repository indexes a command works on: --repo when given, else every configured repository. */
export function repoIndexes(cfg: Config): number[] {
  const one = cfg.num("repo");
  return one !== undefined ? [one] : cfg.indexes("repo");
}

/** A repository whose archive.info loaded. */
export interface ArchiveRepo {
  index: number;
  storage: Storage;
  info: ArchiveInfo;
  /** archive.info's cipher-pass: the passphrase of the WAL files (undefined when not encrypted). */
  walPass?: string;
}

export interface RepoFailure {
  index: number;
  error: PgbError;
}

/** Open every repository and load its archive.info; a repository that fails is reported, not fatal. */
export async function openArchiveRepos(cfg: Config, stanza: string, indexes = repoIndexes(cfg)): Promise<{ repos: ArchiveRepo[]; failures: RepoFailure[] }> {
  const repos: ArchiveRepo[] = [];
  const failures: RepoFailure[] = [];
  for (const index of indexes) {
    try {
      const storage = await storageRepo(cfg, { repo: index });
      const info = (await loadArchiveInfo(storage, stanza, { cipherPass: repoCipherPass(cfg, index) }))!;
      repos.push({ index, storage, info, walPass: info.cipherPass });
    } catch (e) {
      failures.push({ index, error: asPgbError(e) });
    }
  }
  return { repos, failures };
}

/** A repository's failure as one line (a warning, or a line of a combined error), as pgBackRest words it. */
export function repoWarning(f: RepoFailure): string {
  // pgBackRest's line, plus the error's hints: a skipped repository still says what to do about it.
  return [`repo${f.index}: [${f.error.kind}] ${f.error.message}`, ...f.error.hints.map((h) => `HINT: ${h}`)].join("\n");
}

export function asPgbError(e: unknown): PgbError {
  return e instanceof PgbError ? e : err("UnhandledError", (e as Error)?.stack ?? String(e));
}

/**
 * The error when no repository could serve the command (pgBackRest's RepoInvalidError): each
 * repository's own error on its own line with its hints (repoWarning), as pgBackRest prints it; not
 * given again as the error's own hints, which would print them twice.
 */
export function noValidRepo(failures: RepoFailure[]): PgbError {
  const lines = failures.map(repoWarning);
  return err("RepoInvalidError", `unable to find a valid repository:\n${lines.join("\n")}`);
}

/**
 * Repositories that failed while others did the work, as pgBackRest reports them: with one
 * repository configured its own error (and exit code); with several, CommandError (104) naming
 * each failed repository.
 */
export function repoFailuresError(cfg: Config, failures: RepoFailure[]): PgbError {
  if (failures.length === 1 && repoIndexes(cfg).length === 1) return failures[0]!.error;
  const lines = failures.map(repoWarning);
  return err("CommandError", `${cfg.commandName} command encountered error(s):\n${lines.join("\n")}`);
}

/** What pg_control of pg1-path says about the cluster that archives or restores. */
export interface ClusterIdentity {
  version: string;
  systemId: bigint;
  walSegmentSize: number;
}

export async function clusterIdentity(cfg: Config): Promise<ClusterIdentity> {
  const control = await readPgControl(await storagePg(cfg, 1, { readOnly: true }));
  return { version: control.version, systemId: control.systemId, walSegmentSize: control.walSegmentSize };
}

/**
 * PostgreSQL passes %p relative to its data directory (pg_wal/...). A relative path is only
 * meaningful when we run there, so the working directory must be pg1-path, as pgBackRest checks.
 */
export function pgRelativePath(cfg: Config, path: string): string {
  if (isAbsolute(path)) return path;
  const pgPath = cfg.req("pg1-path");
  const cwd = process.cwd();
  if (canonical(cwd) !== canonical(pgPath))
    throw err(
      "OptionInvalidValueError",
      `PostgreSQL working directory '${cwd}' is not the same as option pg1-path '${pgPath}'`,
      "is the PostgreSQL data_directory configured the same as the pg1-path option?",
    );
  return join(pgPath, path);
}

function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path.replace(/\/+$/, "");
  }
}

/** compress-type, honouring the deprecated `compress=n`. */
export function compressTypeOf(cfg: Config): CompressType {
  if (cfg.has("compress") && cfg.source("compress") !== "default" && !cfg.bool("compress")) return "none";
  return (cfg.get("compress-type")) as CompressType;
}

/** "16MiB" for messages about sizes set in options. */
export function sizeText(bytes: number): string {
  for (const [unit, mult] of [["GB", 1024 ** 3], ["MB", 1024 ** 2], ["KB", 1024]] as const)
    if (bytes >= mult && bytes % mult === 0) return `${bytes / mult}${unit}`;
  return `${bytes}B`;
}

/**
 * WAL files PostgreSQL has marked ready for archiving (pg_wal/archive_status/NAME.ready), history
 * files first (PostgreSQL archives those first too: a standby needs them to follow a timeline).
 */
export async function readyWalFiles(local: Storage, walDir: string): Promise<string[]> {
  const names = (await local.names(`${walDir}/archive_status`, /\.ready$/)).map((n) => n.slice(0, -".ready".length));
  const history = names.filter((n) => n.endsWith(".history"));
  return [...history, ...names.filter((n) => !n.endsWith(".history"))];
}

/** archive-push-queue-max: the WAL waiting in pg_wal, in bytes (each ready segment counts whole). */
export function queueBytes(ready: readonly string[], walSegmentSize: number): number {
  return ready.filter((n) => /^[0-9A-F]{24}$/.test(n)).length * walSegmentSize;
}

/**
 * archive-push-batch-size in WAL files: whole segments of pg_control's segment size, at least one.
 * (pgBackRest 2.59 divides by the size of the first ready file instead, the same for a segment;
 * when that is a history file its batch is unbounded, which this avoids.)
 */
export function batchSegments(batchBytes: number | undefined, walSegmentSize: number): number {
  return batchBytes === undefined ? Number.POSITIVE_INFINITY : Math.max(1, Math.floor(batchBytes / walSegmentSize));
}

/**
 * A suffix that makes a temporary file name private to this process and call (concurrent pushes of
 * one segment never share a temp file). Web Crypto: node:crypto costs startup time.
 */
export function tempSuffix(): string {
  const r = globalThis.crypto.getRandomValues(new Uint32Array(1))[0]!;
  return `${process.pid}-${r.toString(16).padStart(8, "0")}`;
}

/**
 * How long a repository temporary file must go unmodified before it is taken for a killed
 * writer's and removed (by the next archive-push to its directory, or by expire).
 *
 * A live push rewrites its temp file as the WAL streams in, then renames it: between two of its
 * writes, and between the last one and the rename, it waits on one storage operation at a time,
 * and a remote repository or worker that does not answer within protocol-timeout is given up on
 * (io-timeout bounds a stalled connection). So a temp file untouched for longer than both is no
 * live writer's; twice that is the margin. No wall-clock bound exists for a local file system that
 * hangs, hence a floor too. Guessing too short would cost little: the live push's rename fails
 * and PostgreSQL retries it; nothing half-written is ever taken for WAL. With the default
 * timeouts this is 61 minutes. (archive-timeout does not bound a push: it is only how long the
 * foreground of an asynchronous push waits.)
 */
export function staleTempSeconds(cfg: Config): number {
  const timeout = Math.max(cfg.get("protocol-timeout"), cfg.get("io-timeout"));
  return Math.max(2 * timeout, STALE_TEMP_FLOOR_SECONDS);
}

const STALE_TEMP_FLOOR_SECONDS = 600;

/** How every archive-push (sync, or a job of the asynchronous process) stores a WAL file, from the options. */
export function pushSettings(cfg: Config, cluster: ClusterIdentity) {
  return {
    compressType: compressTypeOf(cfg),
    compressLevel: cfg.num("compress-level"),
    headerCheck: cfg.bool("archive-header-check") ? { version: cluster.version, systemId: cluster.systemId } : undefined,
    bufferSize: cfg.num("buffer-size"),
    staleTempSeconds: staleTempSeconds(cfg),
  };
}
