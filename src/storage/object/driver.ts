/**
 * What every object-store driver (S3, Azure Blob, GCS) shares: a repository in a bucket or
 * container, each path a key (the path without its leading slash; repoN-path is the key prefix, as
 * pgBackRest lays it out). A driver supplies five primitives (head, one listing page, delete of one
 * or many keys, a ranged GET, a write) and `where` for messages; the rest is here, once.
 *
 * Object-store semantics, stated by `features` rather than imitated:
 * - no rename (move throws): a write is already complete-or-absent, so callers write the final
 *   key once instead of a temp name and a rename;
 * - no directories: a "path" is a key prefix. It exists while a key is below it; creating one is a
 *   no-op; listing one that is missing gives nothing rather than an error;
 * - no links, modes, owners or settable times: mtime is the engine's Last-Modified;
 * - nothing to sync: a write is durable when the engine answers it.
 */
import { err } from "../../common/error.ts";
import type { ReadOptions, StorageDriver, StorageFeatures, StorageInfo, StorageRead, StorageWrite, WriteOptions } from "../storage.ts";

const FILE_MODE = 0o640;
const PATH_MODE = 0o750;

export interface ObjectEntry {
  key: string;
  size: number;
  /** Whole seconds since the epoch. */
  mtime: number;
}

export interface ObjectPage {
  objects: ObjectEntry[];
  /** "Directories" below the prefix, each ending with "/" (only when listed with a delimiter). */
  prefixes: string[];
  /** Continuation token/marker of the next page; undefined on the last one. */
  next?: string;
}

export interface PageQuery {
  /** Group keys by "/" into prefixes (one level), or list every key below (recursive). */
  delimiter: boolean;
  /** Page size (tests use small pages to exercise pagination). */
  pageSize?: number;
  token?: string;
}

export function keyOf(path: string): string {
  return path.replace(/^\/+/, "").replace(/\/+$/, "");
}

function dirPrefix(path: string): string {
  const k = keyOf(path);
  return k === "" ? "" : `${k}/`;
}

function entry(name: string, type: StorageInfo["type"], size: number, mtime: number): StorageInfo {
  return { name, type, size, mtime, mode: type === "path" ? PATH_MODE : FILE_MODE, uid: 0, gid: 0 };
}

export interface ObjectDriverOptions {
  /** Upload part/block/chunk size (repoN-storage-upload-chunk-size): the memory each upload holds. */
  chunkSize?: number;
  /** Listing page size (tests use small pages to exercise continuation). */
  listPageSize?: number;
}

export abstract class ObjectDriver implements StorageDriver {
  // An object is durable once its upload completes: a tree needs no sync after (syncTree is a
  // no-op that holds), and there is nothing to rename, link or truncate.
  readonly features: StorageFeatures = { link: false, pathSync: false, owner: false, hardLink: false, truncate: false, syncTree: true, move: false, path: false, attributes: false };
  /** "S3", "Azure", "GCS": in messages. */
  abstract readonly service: string;
  protected readonly chunkSize: number;
  readonly #pageSize: number | undefined;

  constructor(opts: ObjectDriverOptions, defaultChunkSize: number) {
    this.chunkSize = opts.chunkSize ?? defaultChunkSize;
    this.#pageSize = opts.listPageSize;
  }

  /** "key 'k' in bucket 'b'": where a key is, for messages. */
  protected abstract where(key: string): string;
  /** Size and mtime of an object, or null when there is none with that key. */
  protected abstract head(key: string): Promise<{ size: number; mtime: number } | null>;
  protected abstract listPage(prefix: string, q: PageQuery): Promise<ObjectPage>;
  /** Delete one key; a missing one is not an error. */
  protected abstract deleteKey(key: string): Promise<void>;
  /** Delete many keys (at most one listing page of them); drivers with a batch call override. */
  protected async deleteKeys(keys: string[]): Promise<void> {
    // A few at a time: one request each, without opening hundreds of connections at once.
    for (let i = 0; i < keys.length; i += 16) await Promise.all(keys.slice(i, i + 16).map((k) => this.deleteKey(k)));
  }
  /** A ranged GET, through the read's filters; null when the object is missing. */
  protected abstract readObject(key: string, opts: ReadOptions): Promise<StorageRead | null>;
  protected abstract writeObject(key: string, path: string, opts: WriteOptions): StorageWrite;

  /** Visit every page below prefix, following continuation tokens; `limit` stops after that many entries. */
  async eachPage(prefix: string, q: Omit<PageQuery, "token"> & { limit?: number }, visit: (page: ObjectPage) => Promise<void> | void): Promise<void> {
    let token: string | undefined;
    let seen = 0;
    do {
      const page = await this.listPage(prefix, { delimiter: q.delimiter, pageSize: q.pageSize ?? this.#pageSize, token });
      await visit(page);
      seen += page.objects.length + page.prefixes.length;
      token = page.next;
    } while (token !== undefined && (q.limit === undefined || seen < q.limit));
  }

  /** Whether any key starts with the prefix. */
  async #prefixExists(prefix: string): Promise<boolean> {
    let found = false;
    await this.eachPage(prefix, { delimiter: false, pageSize: 1, limit: 1 }, (p) => {
      found ||= p.objects.length > 0;
    });
    return found;
  }

  async info(path: string, opts: { ignoreMissing?: boolean } = {}): Promise<StorageInfo | null> {
    const key = keyOf(path);
    if (key !== "") {
      const h = await this.head(key);
      if (h) return entry(path, "file", h.size, h.mtime);
    }
    if (key === "" || (await this.#prefixExists(`${key}/`))) return entry(path, "path", 0, 0);
    if (opts.ignoreMissing) return null;
    throw err("FileMissingError", `unable to get info for missing path/file '${path}' (${this.where(key)})`);
  }

  async list(path: string, opts: { ignoreMissing?: boolean } = {}): Promise<StorageInfo[] | null> {
    const prefix = dirPrefix(path);
    const out: StorageInfo[] = [];
    await this.eachPage(prefix, { delimiter: true }, (page) => {
      for (const o of page.objects) {
        const name = o.key.slice(prefix.length);
        if (name !== "") out.push(entry(name, "file", o.size, o.mtime));
      }
      for (const p of page.prefixes) out.push(entry(p.slice(prefix.length, -1), "path", 0, 0));
    });
    // An object store cannot tell an empty directory from a missing one.
    return out.length === 0 && opts.ignoreMissing ? null : out;
  }

  async openRead(path: string, opts: ReadOptions = {}): Promise<StorageRead | null> {
    const key = keyOf(path);
    const r = await this.readObject(key, opts);
    if (r) return r;
    if (opts.ignoreMissing) return null;
    throw err("FileMissingError", `unable to open missing file '${path}' for read (${this.where(key)})`);
  }

  async openWrite(path: string, opts: WriteOptions = {}): Promise<StorageWrite> {
    return this.writeObject(keyOf(path), path, opts);
  }

  async remove(path: string, opts: { ignoreMissing?: boolean } = {}): Promise<void> {
    const key = keyOf(path);
    // A delete of a missing key succeeds: ask first only when missing is an error.
    if (opts.ignoreMissing === false && (await this.info(path, { ignoreMissing: true }))?.type !== "file")
      throw err("FileRemoveError", `unable to remove '${path}': it does not exist (${this.where(key)})`);
    await this.deleteKey(key);
  }

  async pathCreate(path: string, opts: { errorOnExists?: boolean } = {}): Promise<void> {
    if (opts.errorOnExists && (await this.#prefixExists(dirPrefix(path))))
      throw err("PathExistsError", `unable to create path '${path}': it already exists`);
  }

  /** Remove every key below path (non-recursive: only when nothing is below it, as rmdir). */
  async pathRemove(path: string, opts: { recurse?: boolean } = {}): Promise<void> {
    const prefix = dirPrefix(path);
    if (!opts.recurse) {
      if (await this.#prefixExists(prefix)) throw err("PathRemoveError", `unable to remove path '${path}': it is not empty`);
      return;
    }
    await this.eachPage(prefix, { delimiter: false }, (page) => this.deleteKeys(page.objects.map((o) => o.key)));
  }

  async move(from: string): Promise<void> {
    throw err("FeatureNotSupportedError", `unable to move '${from}': an object store has no rename`, "this is a pgbunker bug: a caller must check storage.features.move and write the final name once instead.");
  }

  async pathSync(): Promise<void> {}

  /** Every write is durable once it answered: nothing left to sync. */
  async syncTree(): Promise<void> {}

  async hardLink(): Promise<void> {
    throw err("FeatureNotSupportedError", `a repository on ${this.service} cannot hold hard links`, `set repo-hardlink=n for a repository on ${this.service}.`);
  }

  async truncate(): Promise<void> {
    throw err("FeatureNotSupportedError", `objects in a repository on ${this.service} cannot be truncated`);
  }

  async linkCreate(_target: string, path: string): Promise<void> {
    throw err("FeatureNotSupportedError", `unable to create link '${path}': an object store has no links`);
  }

  /** Modes, owners and times are not kept on an object store (features.attributes is false). */
  async setAttributes(): Promise<void> {}
}
