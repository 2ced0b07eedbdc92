/**
 * Storage handed out by role, as commands need it: the repository (repoN-path, or a repository
 * host over SSH), a PostgreSQL data directory (pgN-path, or a database host), the spool for
 * asynchronous archiving. Commands never construct drivers themselves, so adding a transport
 * (remote, later s3) changes only this file.
 */
import { err } from "../common/error.ts";
import type { Config } from "../config/parse.ts";
import { posix } from "../storage/posix.ts";
import { Storage } from "../storage/storage.ts";

export interface RepoStorageOptions {
  /** Repository index (default: the command's --repo or the first configured). */
  repo?: number;
  /** Writes are refused (dry-run, read-only commands). */
  readOnly?: boolean;
}

/** Hook the remote layer installs to serve repoN-host / pgN-host (keeps this file free of SSH code). */
export interface RemoteStorageFactory {
  repo(cfg: Config, index: number, opts: RepoStorageOptions): Promise<Storage>;
  pg(cfg: Config, index: number, opts: { readOnly?: boolean }): Promise<Storage>;
}
let remoteFactory: RemoteStorageFactory | undefined;

export function setRemoteStorageFactory(f: RemoteStorageFactory): void {
  remoteFactory = f;
}

function checkRepoType(cfg: Config, index: number): void {
  const type = cfg.str(`repo${index}-type`) ?? "posix";
  if (type !== "posix" && type !== "cifs")
    throw err("FeatureNotSupportedError", `repo${index}-type=${type} is not supported by pgbunker yet`, "use a posix (or cifs) repository, locally or on a repository host over SSH.");
}

export function repoIsRemote(cfg: Config, index = cfg.repoIndex): boolean {
  return cfg.str(`repo${index}-host`) !== undefined && cfg.command !== "remote";
}

export function pgIsRemote(cfg: Config, index = 1): boolean {
  return cfg.str(`pg${index}-host`) !== undefined && cfg.command !== "remote";
}

/** The repository, as a Storage rooted at repoN-path. */
export async function storageRepo(cfg: Config, opts: RepoStorageOptions = {}): Promise<Storage> {
  const index = opts.repo ?? cfg.repoIndex;
  checkRepoType(cfg, index);
  if (repoIsRemote(cfg, index)) {
    if (!remoteFactory) throw err("FeatureNotSupportedError", `repo${index}-host is set but remote operation is not available in this build`);
    return remoteFactory.repo(cfg, index, opts);
  }
  const path = cfg.str(`repo${index}-path`) ?? "/var/lib/pgbackrest";
  return new Storage(posix, path, { readOnly: opts.readOnly, role: "repository" });
}

/** A PostgreSQL data directory (pgN-path), read-only unless the command restores into it. */
export async function storagePg(cfg: Config, index = 1, opts: { readOnly?: boolean } = {}): Promise<Storage> {
  if (pgIsRemote(cfg, index)) {
    if (!remoteFactory) throw err("FeatureNotSupportedError", `pg${index}-host is set but remote operation is not available in this build`);
    return remoteFactory.pg(cfg, index, opts);
  }
  const path = cfg.str(`pg${index}-path`);
  if (!path) throw err("OptionRequiredError", `${cfg.command} command requires option: pg${index}-path`, "does this stanza exist?");
  return new Storage(posix, path, { readOnly: opts.readOnly, role: "data directory" });
}

/** The local spool directory for asynchronous archive-push/archive-get. */
export function storageSpool(cfg: Config): Storage {
  return new Storage(posix, cfg.str("spool-path") ?? "/var/spool/pgbunker", { role: "spool" });
}

/** A local absolute-path storage (restore targets outside pg1-path such as tablespaces). */
export function storageLocal(readOnly = false): Storage {
  return new Storage(posix, "/", { readOnly, role: "local" });
}
