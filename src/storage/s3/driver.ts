/**
 * The S3 storage driver: a repository in a bucket, each path a key (the path without its leading
 * slash; repoN-path is the key prefix, as pgBackRest lays it out).
 *
 * Object-store semantics, stated by `features` rather than imitated:
 * - no rename (move throws): a write is already complete-or-absent, so callers write the final
 *   key once instead of a temp name and a rename;
 * - no directories: a "path" is a key prefix. It exists while a key is below it; creating one is a
 *   no-op; listing one that is missing gives nothing rather than an error;
 * - no links, modes, owners or settable times: mtime is the engine's Last-Modified;
 * - nothing to sync: a PUT is durable when it answers.
 */
import { err } from "../../common/error.ts";
import type { ReadOptions, StorageDriver, StorageFeatures, StorageInfo, StorageRead, StorageWrite, WriteOptions } from "../storage.ts";
import type { S3Http } from "./client.ts";
import { listPages, prefixExists } from "./list.ts";
import { openObject, S3Read } from "./read.ts";
import { S3Write } from "./write.ts";
import { xmlEncode, xmlText } from "./xml.ts";

/** pgBackRest's default for S3: 5 MiB, also AWS's smallest part. */
export const DEFAULT_CHUNK_SIZE = 5 * 1024 * 1024;
const FILE_MODE = 0o640;
const PATH_MODE = 0o750;
/** DeleteObjects takes at most 1000 keys a request. */
const DELETE_BATCH = 1000;

function keyOf(path: string): string {
  return path.replace(/^\/+/, "").replace(/\/+$/, "");
}

function dirPrefix(path: string): string {
  const k = keyOf(path);
  return k === "" ? "" : `${k}/`;
}

function entry(name: string, type: StorageInfo["type"], size: number, mtime: number): StorageInfo {
  return { name, type, size, mtime, mode: type === "path" ? PATH_MODE : FILE_MODE, uid: 0, gid: 0 };
}

export interface S3DriverOptions {
  chunkSize?: number;
  /** ListObjectsV2 page size (tests use small pages to exercise pagination). */
  listPageSize?: number;
}

export class S3Driver implements StorageDriver {
  // An object is durable once its PUT or multipart upload completes: a tree needs no sync after
  // (syncTree is a no-op that holds), and there is nothing to rename, link or truncate.
  readonly features: StorageFeatures = { link: false, pathSync: false, owner: false, hardLink: false, truncate: false, syncTree: true, move: false, path: false, attributes: false };
  readonly client: S3Http;
  readonly #chunkSize: number;
  readonly #pageSize: number | undefined;

  constructor(client: S3Http, opts: S3DriverOptions = {}) {
    this.client = client;
    this.#chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.#pageSize = opts.listPageSize;
  }

  async info(path: string, opts: { ignoreMissing?: boolean } = {}): Promise<StorageInfo | null> {
    const key = keyOf(path);
    if (key !== "") {
      const res = await this.client.request({ method: "HEAD", key, accept: [404] });
      if (res.status !== 404) {
        const mtime = Math.floor(Date.parse(res.headers.get("last-modified") ?? "") / 1000) || 0;
        return entry(path, "file", Number(res.headers.get("content-length") ?? 0), mtime);
      }
    }
    if (key === "" || (await prefixExists(this.client, `${key}/`))) return entry(path, "path", 0, 0);
    if (opts.ignoreMissing) return null;
    throw err("FileMissingError", `unable to get info for missing path/file '${path}' (key '${key}' in bucket '${this.client.bucket}')`);
  }

  async list(path: string, opts: { ignoreMissing?: boolean } = {}): Promise<StorageInfo[] | null> {
    const prefix = dirPrefix(path);
    const out: StorageInfo[] = [];
    await listPages(this.client, prefix, { delimiter: "/", maxKeys: this.#pageSize }, (page) => {
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
    const res = await openObject(this.client, key, opts.offset ?? 0, opts.limit);
    if (res) return new S3Read(this.client, key, res, opts);
    if (opts.ignoreMissing) return null;
    throw err("FileMissingError", `unable to open missing file '${path}' for read (key '${key}' in bucket '${this.client.bucket}')`);
  }

  async openWrite(path: string, opts: WriteOptions = {}): Promise<StorageWrite> {
    return new S3Write(this.client, keyOf(path), path, this.#chunkSize, opts);
  }

  async remove(path: string, opts: { ignoreMissing?: boolean } = {}): Promise<void> {
    const key = keyOf(path);
    // DELETE succeeds whether or not the key exists: ask first only when missing is an error.
    if (opts.ignoreMissing === false && (await this.info(path, { ignoreMissing: true }))?.type !== "file")
      throw err("FileRemoveError", `unable to remove '${path}': it does not exist (key '${key}' in bucket '${this.client.bucket}')`);
    const res = await this.client.request({ method: "DELETE", key, accept: [404] });
    await res.arrayBuffer();
  }

  async pathCreate(path: string, opts: { errorOnExists?: boolean } = {}): Promise<void> {
    if (opts.errorOnExists && (await prefixExists(this.client, dirPrefix(path))))
      throw err("PathExistsError", `unable to create path '${path}': it already exists`);
  }

  /** Remove every key below path (non-recursive: only when nothing is below it, as rmdir). */
  async pathRemove(path: string, opts: { recurse?: boolean } = {}): Promise<void> {
    const prefix = dirPrefix(path);
    if (!opts.recurse) {
      if (await prefixExists(this.client, prefix)) throw err("PathRemoveError", `unable to remove path '${path}': it is not empty`);
      return;
    }
    await listPages(this.client, prefix, { maxKeys: this.#pageSize }, async (page) => {
      const keys = page.objects.map((o) => o.key);
      for (let i = 0; i < keys.length; i += DELETE_BATCH) await this.#deleteKeys(keys.slice(i, i + DELETE_BATCH));
    });
  }

  async #deleteKeys(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    const xml = `<Delete><Quiet>true</Quiet>${keys.map((k) => `<Object><Key>${xmlEncode(k)}</Key></Object>`).join("")}</Delete>`;
    const body = new TextEncoder().encode(xml);
    // DeleteObjects requires a Content-MD5 of its body.
    const md5 = new Bun.CryptoHasher("md5").update(body).digest("base64");
    const r = await this.client.requestText({ method: "POST", key: "", query: { delete: "" }, body, headers: { "content-md5": md5 } });
    const failed = xmlText(r.text, "Error");
    if (failed !== undefined)
      throw err("FileRemoveError", `unable to remove '${xmlText(failed, "Key")}' in bucket '${this.client.bucket}': ${xmlText(failed, "Code")}: ${xmlText(failed, "Message") ?? ""}`);
  }

  async move(from: string): Promise<void> {
    throw err("FeatureNotSupportedError", `unable to move '${from}': an object store has no rename`, "this is a pgbunker bug: a caller must check storage.features.move and write the final name once instead.");
  }

  async pathSync(): Promise<void> {}

  /** Every write is durable once it answered: nothing left to sync. */
  async syncTree(): Promise<void> {}

  async hardLink(): Promise<void> {
    throw err("FeatureNotSupportedError", "an S3 repository cannot hold hard links", "set repo-hardlink=n for an S3 repository.");
  }

  async truncate(): Promise<void> {
    throw err("FeatureNotSupportedError", "objects in an S3 repository cannot be truncated");
  }

  async linkCreate(_target: string, path: string): Promise<void> {
    throw err("FeatureNotSupportedError", `unable to create link '${path}': an object store has no links`);
  }

  /** Modes, owners and times are not kept on an object store (features.attributes is false). */
  async setAttributes(): Promise<void> {}
}
