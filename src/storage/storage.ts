/**
 * The storage contract. A driver (posix, remote, later s3) implements StorageDriver; callers use
 * a Storage, which binds a driver to a base path and a role, refuses writes when it is read-only
 * (dry-run, or a PostgreSQL data directory during backup), and adds whole-file helpers.
 *
 * What a driver can do is said once, in `features`; callers test a feature instead of asking which
 * driver they have. A method for a capability the driver lacks throws FeatureNotSupportedError.
 */
import { concatBytes } from "../common/bytes.ts";
import { err } from "../common/error.ts";
import { findLastResult, type FilterResult, type FilterSpec } from "../filter/filter.ts";

/** Suffix of the temporary name a write goes to before its rename (atomic writes, archive-push's stage). */
export const TEMP_EXT = ".pgbunker.tmp";

export type StorageType = "file" | "path" | "link" | "special";

export interface StorageInfo {
  /** Entry name (for list results) or the path asked for (for info). */
  name: string;
  type: StorageType;
  size: number;
  /** Modification time, whole seconds since the epoch. */
  mtime: number;
  mode: number;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  /** For links: where the link points. */
  linkDestination?: string;
}

export interface ListOptions {
  ignoreMissing?: boolean;
  /** false: user/group names are not wanted (StorageDriver.list). Default true. */
  owners?: boolean;
}

export interface ReadOptions {
  /** Return null instead of throwing when the file does not exist. */
  ignoreMissing?: boolean;
  offset?: number;
  /** Read at most this many bytes of the source. */
  limit?: number;
  /** Filters run where the bytes are (on the remote side for a remote driver). */
  filters?: readonly FilterSpec[];
  bufferSize?: number;
}

export interface WriteOptions {
  /** Write to a temp name and rename on close (default true): a crash never leaves a partial file. */
  atomic?: boolean;
  /**
   * fsync the file and its directory on close (default true). Bulk writers (backup, restore) pass
   * false and make the whole tree durable at once with syncTree before recording the result.
   */
  sync?: boolean;
  /**
   * fsync the directory after the rename (default: as `sync`). A restore writing thousands of
   * files sets it false and syncs each directory once at the end instead.
   */
  syncPath?: boolean;
  /**
   * Commit only if the bytes written match: checked against the last size and sha1 results of
   * `filters` once they are flushed, before the rename. On a mismatch nothing is committed (the
   * temp file is removed) and a ChecksumError names the file.
   */
  expect?: { size?: number; sha1?: string };
  /**
   * false: never stage the bytes for direct I/O (posix): the writer is a short-lived process
   * writing one file (archive-push's WAL), for which the stage buffers and the background writer
   * thread cost more than they save. Default true; drivers without direct I/O ignore it.
   */
  direct?: boolean;
  /** Create missing parent directories (default true). */
  pathCreate?: boolean;
  mode?: number;
  pathMode?: number;
  user?: string;
  group?: string;
  /** Set the modification time (seconds) on close. */
  mtime?: number;
  filters?: readonly FilterSpec[];
  bufferSize?: number;
  /** Expected size of the data written, when known: small files get small buffers. */
  sizeHint?: number;
  /**
   * Write into the file from this offset on, creating it if missing, never truncating it, in
   * place (not atomic; abort leaves the file): one piece of a file restored by several workers at
   * once (restore/chunk.ts), which puts the whole in place itself. posix only.
   */
  offset?: number;
}

export interface StorageRead {
  /** Next chunk of (filtered) bytes, or null at the end. The chunk is valid until the next call. */
  read(): Promise<Uint8Array | null>;
  /** Filter results, available once read() has returned null. */
  results(): FilterResult[];
  close(): Promise<void>;
}

export interface StorageWrite {
  write(chunk: Uint8Array): Promise<void>;
  /** Flush filters, sync, rename into place. Returns the filter results. */
  close(): Promise<FilterResult[]>;
  /** Discard everything written (removes the temp file). */
  abort(): Promise<void>;
}

export interface StorageFeatures {
  /** Symlinks can be created and read. */
  link: boolean;
  /** Directories can be fsync'ed. */
  pathSync: boolean;
  /** Ownership can be set (running as root). */
  owner: boolean;
  /** Hard links can be made (repo-hardlink): a local file system, not the remote protocol. */
  hardLink: boolean;
  /** An existing file's length can be set (restore's delta and sparse tails). */
  truncate: boolean;
  /** Everything written under a path with `sync: false` can be made durable at once. */
  syncTree: boolean;
  /**
   * move() renames atomically. Object stores have no rename: a caller that writes under a temp name
   * and renames must instead write the final name once (an object store's PUT is complete-or-absent).
   */
  move: boolean;
  /** Directories exist by themselves: empty ones too, and listing a missing one is an error. */
  path: boolean;
  /** Mode and modification time given on write or setAttributes are kept (not on object stores). */
  attributes: boolean;
}

/** The capabilities a driver may have, in one list (the remote protocol sends them by name). */
export const STORAGE_FEATURES = ["link", "pathSync", "owner", "hardLink", "truncate", "syncTree", "move", "path", "attributes"] as const satisfies readonly (keyof StorageFeatures)[];

export interface StorageDriver {
  readonly features: StorageFeatures;
  info(path: string, opts?: { ignoreMissing?: boolean; followLink?: boolean }): Promise<StorageInfo | null>;
  /**
   * `owners: false`: the caller does not use user/group names, which a driver may then leave out
   * (posix: no reading of /etc/passwd and /etc/group, which every listing would otherwise pay for
   * once per process — archive-push lists its WAL directory on every segment).
   */
  list(path: string, opts?: ListOptions): Promise<StorageInfo[] | null>;
  /**
   * A directory's entries a batch at a time, in no order (nothing for a missing directory with
   * ignoreMissing): a directory of a million files is never held as one list. Optional: without
   * it Storage.listBatches hands out list() as one batch.
   */
  listBatches?(path: string, opts: ListOptions, batch: number): AsyncGenerator<StorageInfo[]>;
  openRead(path: string, opts?: ReadOptions): Promise<StorageRead | null>;
  openWrite(path: string, opts?: WriteOptions): Promise<StorageWrite>;
  remove(path: string, opts?: { ignoreMissing?: boolean }): Promise<void>;
  pathCreate(path: string, opts?: { mode?: number; parents?: boolean; errorOnExists?: boolean }): Promise<void>;
  pathRemove(path: string, opts?: { recurse?: boolean; ignoreMissing?: boolean }): Promise<void>;
  move(from: string, to: string): Promise<void>;
  /** fsync a directory (or a file written with sync: false). */
  pathSync(path: string): Promise<void>;
  /**
   * Make every file and directory written under path durable (posix: syncfs of its file system),
   * after writes made with `sync: false` (features.syncTree; without it, writes sync on close).
   */
  syncTree(path: string): Promise<void>;
  linkCreate(target: string, path: string): Promise<void>;
  /** Make path a hard link to existing, replacing whatever path was (features.hardLink; repo-hardlink). */
  hardLink(existing: string, path: string): Promise<void>;
  /** Set mode, owner and/or mtime of an existing path (restore). */
  setAttributes(path: string, attrs: { mode?: number; user?: string; group?: string; mtime?: number; followLink?: boolean }): Promise<void>;
  /** Set the length of an existing file: cut it, or extend it with a sparse zeroed tail (restore). */
  truncate(path: string, size: number): Promise<void>;
  /** Release connections (remote); no-op for local drivers. */
  close?(): Promise<void>;
  /** A driver over a connection that failed (remote): it will not work again; open a new one. */
  readonly broken?: boolean;
}

/** WriteOptions.expect: the bytes written must have this size and SHA-1, or nothing is committed. */
export function checkExpected(path: string, results: FilterResult[], expect: WriteOptions["expect"]): void {
  if (!expect) return;
  const size = findLastResult(results, "size");
  const sha1 = findLastResult(results, "sha1");
  if ((expect.size !== undefined && !size) || (expect.sha1 !== undefined && !sha1))
    throw err("AssertError", `write of '${path}' expects a size/sha1 but its filters do not compute them`);
  if (expect.size !== undefined && size!.size !== expect.size)
    throw err("ChecksumError", `'${path}' has size ${size!.size} but ${expect.size} was expected`);
  if (expect.sha1 !== undefined && sha1!.hash !== expect.sha1)
    throw err("ChecksumError", `'${path}' has checksum ${sha1!.hash} but ${expect.sha1} was expected`);
}

export interface StorageOptions {
  /** Refuse every write (dry-run, or the data directory during backup). */
  readOnly?: boolean;
  /** Used in error messages: "repository", "data directory", "spool". */
  role?: string;
}

/** A driver bound to a base path. Relative paths resolve against the base; absolute ones are used as they are. */
export class Storage {
  readonly driver: StorageDriver;
  readonly base: string;
  readonly #readOnly: boolean;
  readonly role: string;

  constructor(driver: StorageDriver, base: string, opts: StorageOptions = {}) {
    this.driver = driver;
    this.base = base === "/" ? "" : base.replace(/\/+$/, "");
    this.#readOnly = opts.readOnly ?? false;
    this.role = opts.role ?? "storage";
  }

  get features(): StorageFeatures {
    return this.driver.features;
  }

  /** Its connection failed (a remote): every call will fail; a new Storage reconnects. */
  get broken(): boolean {
    return this.driver.broken === true;
  }

  path(rel = ""): string {
    if (rel.startsWith("/")) return rel;
    if (rel === "") return this.base || "/";
    return `${this.base}/${rel}`;
  }

  #writable(what: string): void {
    if (this.#readOnly) throw err("AssertError", `unable to ${what}: ${this.role} storage is read-only`);
  }

  info(rel: string, opts?: { ignoreMissing?: boolean; followLink?: boolean }) {
    return this.driver.info(this.path(rel), opts);
  }

  async exists(rel: string): Promise<boolean> {
    return (await this.driver.info(this.path(rel), { ignoreMissing: true, followLink: true })) !== null;
  }

  list(rel: string, opts?: ListOptions) {
    return this.driver.list(this.path(rel), opts);
  }

  /** A directory's entries in batches of up to `batch` (one batch where the driver lists at once), in no order. */
  async *listBatches(rel: string, opts: ListOptions = {}, batch = 4096): AsyncGenerator<StorageInfo[]> {
    if (this.driver.listBatches) {
      yield* this.driver.listBatches(this.path(rel), opts, batch);
      return;
    }
    const all = await this.driver.list(this.path(rel), opts);
    if (all?.length) yield all;
  }

  /** Names in a directory, sorted; [] when the directory is missing. */
  async names(rel: string, filter?: RegExp): Promise<string[]> {
    const list = (await this.driver.list(this.path(rel), { ignoreMissing: true, owners: false })) ?? [];
    return list.map((e) => e.name).filter((n) => !filter || filter.test(n)).sort();
  }

  openRead(rel: string, opts?: ReadOptions) {
    return this.driver.openRead(this.path(rel), opts);
  }

  openWrite(rel: string, opts?: WriteOptions) {
    this.#writable(`write '${this.path(rel)}'`);
    return this.driver.openWrite(this.path(rel), opts);
  }

  /** Read a whole (small) file, through filters; null when missing and ignoreMissing. */
  async get(rel: string, opts: ReadOptions = {}): Promise<Uint8Array | null> {
    const r = await this.driver.openRead(this.path(rel), opts);
    if (!r) return null;
    const parts: Uint8Array[] = [];
    try {
      for (let c = await r.read(); c !== null; c = await r.read()) parts.push(c.slice());
    } finally {
      await r.close();
    }
    return concatBytes(parts);
  }

  /** Write a whole buffer atomically (temp + fsync + rename + dir fsync unless told otherwise). */
  async put(rel: string, data: Uint8Array | string, opts: WriteOptions = {}): Promise<FilterResult[]> {
    const w = await this.openWrite(rel, opts);
    try {
      await w.write(typeof data === "string" ? new TextEncoder().encode(data) : data);
      return await w.close();
    } catch (e) {
      await w.abort().catch(() => {});
      throw e;
    }
  }

  /**
   * Stream a file into `dest` (this or another storage), through read and write filters. The
   * destination write is aborted on any error, so a failed copy leaves nothing behind. Returns
   * both sides' filter results; throws FileMissingError when the source does not exist.
   */
  async copyTo(rel: string, dest: Storage, destRel: string, opts: { read?: ReadOptions; write?: WriteOptions } = {}): Promise<{ read: FilterResult[]; write: FilterResult[] }> {
    const r = await this.driver.openRead(this.path(rel), { ...opts.read, ignoreMissing: false });
    if (!r) throw err("FileMissingError", `unable to open missing file '${this.path(rel)}' for read`);
    try {
      const w = await dest.openWrite(destRel, opts.write);
      try {
        for (let c = await r.read(); c !== null; c = await r.read()) await w.write(c);
        return { write: await w.close(), read: r.results() };
      } catch (e) {
        await w.abort().catch(() => {});
        throw e;
      }
    } finally {
      await r.close();
    }
  }

  remove(rel: string, opts?: { ignoreMissing?: boolean }) {
    this.#writable(`remove '${this.path(rel)}'`);
    return this.driver.remove(this.path(rel), opts);
  }

  pathCreate(rel: string, opts?: { mode?: number; parents?: boolean; errorOnExists?: boolean }) {
    this.#writable(`create path '${this.path(rel)}'`);
    return this.driver.pathCreate(this.path(rel), opts);
  }

  pathRemove(rel: string, opts?: { recurse?: boolean; ignoreMissing?: boolean }) {
    this.#writable(`remove path '${this.path(rel)}'`);
    return this.driver.pathRemove(this.path(rel), opts);
  }

  move(from: string, to: string) {
    this.#writable(`move '${this.path(from)}'`);
    return this.driver.move(this.path(from), this.path(to));
  }

  pathSync(rel: string) {
    return this.driver.features.pathSync ? this.driver.pathSync(this.path(rel)) : Promise.resolve();
  }

  /** Durability of everything written under rel with `sync: false`. */
  async syncTree(rel = ""): Promise<void> {
    if (!this.driver.features.syncTree) throw err("AssertError", `${this.role} storage cannot sync a tree: write with sync enabled instead`);
    await this.driver.syncTree(this.path(rel));
  }

  /** Whether bulk writes may skip per-file sync and call syncTree once. */
  get canSyncTree(): boolean {
    return this.driver.features.syncTree;
  }

  linkCreate(target: string, rel: string) {
    this.#writable(`create link '${this.path(rel)}'`);
    return this.driver.linkCreate(target, this.path(rel));
  }

  /** Whether truncate works here (not on object stores). */
  get canTruncate(): boolean {
    return this.driver.truncate !== undefined;
  }

  /** Whether hardLink works here (a local file system; not over the remote protocol). */
  get canHardLink(): boolean {
    return this.driver.features.hardLink;
  }

  async hardLink(existingRel: string, rel: string): Promise<void> {
    this.#writable(`create hard link '${this.path(rel)}'`);
    if (!this.driver.features.hardLink) throw err("FeatureNotSupportedError", `${this.role} storage cannot create hard links`);
    await this.driver.hardLink(this.path(existingRel), this.path(rel));
  }

  setAttributes(rel: string, attrs: Parameters<StorageDriver["setAttributes"]>[1]) {
    this.#writable(`set attributes of '${this.path(rel)}'`);
    return this.driver.setAttributes(this.path(rel), attrs);
  }

  async truncate(rel: string, size: number): Promise<void> {
    this.#writable(`truncate '${this.path(rel)}'`);
    if (!this.driver.features.truncate) throw err("FeatureNotSupportedError", `${this.role} storage cannot truncate files`);
    return this.driver.truncate(this.path(rel), size);
  }

  /**
   * Walk a tree depth-first, calling `visit` with the path relative to `rel` for every entry below
   * it: in name order within each listing batch (a directory of up to 4096 entries is one batch, so
   * it is walked in name order; a bigger one is never held as one list). Links are reported, not
   * followed. Return false from visit to skip a directory.
   */
  async walk(rel: string, visit: (relPath: string, info: StorageInfo) => boolean | void | Promise<boolean | void>): Promise<void> {
    const walkDir = async (dir: string, prefix: string): Promise<void> => {
      for await (const entries of this.listBatches(dir, { ignoreMissing: true })) {
        entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        for (const e of entries) {
          const childRel = prefix ? `${prefix}/${e.name}` : e.name;
          const descend = await visit(childRel, e);
          if (e.type === "path" && descend !== false) await walkDir(dir ? `${dir}/${e.name}` : e.name, childRel);
        }
      }
    };
    await walkDir(rel, "");
  }

  close(): Promise<void> {
    return this.driver.close?.() ?? Promise.resolve();
  }
}
