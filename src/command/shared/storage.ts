/**
 * Storage handed out by role, as commands need it: the repository (repoN-path, or a repository
 * host over SSH), a PostgreSQL data directory (pgN-path, or a database host), the spool for
 * asynchronous archiving. Commands never construct drivers themselves, so adding a transport
 * (remote, s3, azure, gcs, sftp) changes only this file.
 */
import { err } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";
import { posix } from "../../storage/posix/posix.ts";
import { Storage } from "../../storage/storage.ts";
import type { RemoteTarget } from "../../protocol/connection.ts";
import type { SshTarget } from "../../protocol/ssh.ts";
import { openRemote, remoteSpec, remoteTarget } from "./remote-factory.ts";
import { type AzureSpec, azureSpec } from "./storage-azure.ts";
import { type GcsSpec, gcsSpec } from "./storage-gcs.ts";
import { type S3Spec, s3Spec } from "./storage-s3.ts";
import { sftpTarget, warnUnchecked } from "./sftp.ts";

export interface RepoStorageOptions {
  /** Repository index (default: the command's --repo or the first configured). */
  repo?: number;
  /** Writes are refused (dry-run, read-only commands). */
  readOnly?: boolean;
}

/**
 * A serialisable description of a storage, so a worker thread (or a remote) can open the same
 * storage the command uses: each worker opens its own (its own SSH channel for remote storage).
 */
export type StorageSpec =
  | { kind: "posix"; base: string; readOnly?: boolean; role?: string }
  | { kind: "s3"; base: string; readOnly?: boolean; s3: S3Spec }
  | { kind: "azure"; base: string; readOnly?: boolean; azure: AzureSpec }
  | { kind: "gcs"; base: string; readOnly?: boolean; gcs: GcsSpec }
  | { kind: "remote"; role: "repo" | "pg"; index: number; readOnly?: boolean; [key: string]: unknown }
  | { kind: "sftp"; base: string; target: SshTarget; timeout: number; readOnly?: boolean };

/** The repository's storage type: posix (cifs is posix), s3, azure, gcs or sftp. */
function repoType(cfg: Config, index: number): "posix" | "s3" | "azure" | "gcs" | "sftp" {
  const type = cfg.get(`repo${index}-type`);
  if (type === "s3" || type === "azure" || type === "gcs") return type;
  if (type === "sftp") {
    if (repoIsRemote(cfg, index))
      throw err("OptionInvalidError", `repo${index}-host and repo${index}-type=sftp cannot be used together`, `reach the SFTP server from this host (remove repo${index}-host), or make the repository host's repository posix.`);
    return "sftp";
  }
  if (type !== "posix" && type !== "cifs")
    throw err("FeatureNotSupportedError", `repo${index}-type=${type} is not supported by pgbunker`, "use a posix (or cifs), s3, azure, gcs or sftp repository, locally or on a repository host over SSH.");
  return "posix";
}

function repoPath(cfg: Config, index: number): string {
  return cfg.get(`repo${index}-path`);
}

// The object-store drivers (and their HTTP, signing and XML code) are loaded on use, as SFTP's
// is: archive-push to a posix repository, run once per WAL segment, loads none of them.
async function openS3(base: string, spec: S3Spec, readOnly?: boolean): Promise<Storage> {
  const [{ S3Driver }, { S3Http }] = await Promise.all([import("../../storage/s3/driver.ts"), import("../../storage/s3/client.ts")]);
  return new Storage(new S3Driver(new S3Http(spec.settings), { chunkSize: spec.chunkSize }), base, { readOnly, role: "repository" });
}

async function openAzure(base: string, spec: AzureSpec, readOnly?: boolean): Promise<Storage> {
  const [{ AzureDriver }, { AzureHttp }] = await Promise.all([import("../../storage/azure/driver.ts"), import("../../storage/azure/client.ts")]);
  return new Storage(new AzureDriver(new AzureHttp(spec.settings), { chunkSize: spec.chunkSize }), base, { readOnly, role: "repository" });
}

async function openGcs(base: string, spec: GcsSpec, readOnly?: boolean): Promise<Storage> {
  const [{ GcsDriver }, { GcsHttp }] = await Promise.all([import("../../storage/gcs/driver.ts"), import("../../storage/gcs/client.ts")]);
  return new Storage(new GcsDriver(new GcsHttp(spec.settings), { chunkSize: spec.chunkSize }), base, { readOnly, role: "repository" });
}

/** An SFTP repository's description (for the command's own storage and for each worker's). */
function sftpSpec(cfg: Config, index: number, readOnly: boolean): StorageSpec & { kind: "sftp" } {
  return { kind: "sftp", base: repoPath(cfg, index), target: sftpTarget(cfg, index), timeout: cfg.get("io-timeout"), readOnly };
}

async function openSftp(spec: StorageSpec & { kind: "sftp" }): Promise<Storage> {
  // Loaded on use: archive-push to a posix repository never loads ssh2.
  const { SftpDriver } = await import("../../storage/sftp/sftp.ts");
  return new Storage(await SftpDriver.open(spec.target, spec.timeout), spec.base, { readOnly: spec.readOnly, role: "repository" });
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
  const type = repoType(cfg, index);
  if (type === "sftp") {
    const spec = sftpSpec(cfg, index, opts.readOnly ?? false);
    warnUnchecked(spec.target);
    return openSftp(spec);
  }
  if (repoIsRemote(cfg, index)) {
    return openRemote(remoteTarget(cfg, "repo", index), opts.readOnly ?? false);
  }
  if (type === "s3") return openS3(repoPath(cfg, index), s3Spec(cfg, index), opts.readOnly);
  if (type === "azure") return openAzure(repoPath(cfg, index), azureSpec(cfg, index), opts.readOnly);
  if (type === "gcs") return openGcs(repoPath(cfg, index), gcsSpec(cfg, index), opts.readOnly);
  return new Storage(posix, repoPath(cfg, index), { readOnly: opts.readOnly, role: "repository" });
}

/** A PostgreSQL data directory (pgN-path), read-only unless the command restores into it. */
export async function storagePg(cfg: Config, index = 1, opts: { readOnly?: boolean } = {}): Promise<Storage> {
  if (pgIsRemote(cfg, index)) {
    return openRemote(remoteTarget(cfg, "pg", index), opts.readOnly ?? false);
  }
  const path = cfg.str(`pg${index}-path`);
  if (!path) throw err("OptionRequiredError", `${cfg.command} command requires option: pg${index}-path`, "does this stanza exist?");
  return new Storage(posix, path, { readOnly: opts.readOnly, role: "data directory" });
}

/** The local spool directory for asynchronous archive-push/archive-get. */
export function storageSpool(cfg: Config): Storage {
  return new Storage(posix, cfg.get("spool-path"), { role: "spool" });
}

/** A local absolute-path storage (restore targets outside pg1-path such as tablespaces). */
export function storageLocal(readOnly = false): Storage {
  return new Storage(posix, "/", { readOnly, role: "local" });
}

/** How a worker reaches the repository or a data directory: the same place the command uses. */
export function storageSpec(cfg: Config, role: "repo" | "pg", index?: number, readOnly = false): StorageSpec {
  const i = index ?? (role === "repo" ? cfg.repoIndex : 1);
  if (role === "repo" && repoType(cfg, i) === "sftp") return sftpSpec(cfg, i, readOnly);
  const remote = role === "repo" ? repoIsRemote(cfg, i) : pgIsRemote(cfg, i);
  if (remote) {
    return remoteSpec(cfg, role, i, readOnly);
  }
  const type = role === "repo" ? repoType(cfg, i) : "posix";
  if (type === "s3") return { kind: "s3", base: repoPath(cfg, i), readOnly, s3: s3Spec(cfg, i) };
  if (type === "azure") return { kind: "azure", base: repoPath(cfg, i), readOnly, azure: azureSpec(cfg, i) };
  if (type === "gcs") return { kind: "gcs", base: repoPath(cfg, i), readOnly, gcs: gcsSpec(cfg, i) };
  const base = role === "repo" ? repoPath(cfg, i) : cfg.str(`pg${i}-path`);
  if (!base) throw err("OptionRequiredError", `${cfg.command} command requires option: pg${i}-path`);
  return { kind: "posix", base, readOnly, role: role === "repo" ? "repository" : "data directory" };
}

/** Open a storage from its description (used inside workers). */
export async function openStorage(spec: StorageSpec): Promise<Storage> {
  if (spec.kind === "posix") return new Storage(posix, spec.base, { readOnly: spec.readOnly, role: spec.role });
  if (spec.kind === "s3") return openS3(spec.base, spec.s3, spec.readOnly);
  if (spec.kind === "sftp") return openSftp(spec);
  if (spec.kind === "azure") return openAzure(spec.base, spec.azure, spec.readOnly);
  if (spec.kind === "gcs") return openGcs(spec.base, spec.gcs, spec.readOnly);
  return openRemote(spec.target as RemoteTarget, spec.readOnly ?? false);
}

let opened = new Map<string, Promise<Storage>>();

/**
 * A worker's storage for a job: opened once and kept for every later job that names the same
 * storage (a remote storage is an SSH session; reopening it per file would cost a round trip each).
 * One whose connection broke (or failed to open) is opened again: that is what lets a retried
 * job (job-retry) reconnect. A worker names few storages; the bound only keeps a long-lived
 * worker from hoarding old ones.
 */
export async function workerStorage(spec: StorageSpec): Promise<Storage> {
  const key = JSON.stringify(spec);
  const cached = opened.get(key);
  if (cached) {
    const s = await cached.catch(() => undefined);
    if (s && !s.broken) return s;
    if (opened.get(key) === cached) opened.delete(key);
  }
  const s = openStorage(spec);
  opened.set(key, s);
  if (opened.size > 8) opened = new Map([[key, s]]);
  return s;
}
