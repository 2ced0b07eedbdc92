/**
 * The S3 storage driver: the object-store semantics of object/driver.ts over S3's API (HEAD,
 * ListObjectsV2, DeleteObjects in batches of 1000, ranged GET, PUT or multipart upload).
 */
import { err } from "../../common/error.ts";
import { xmlEncode, xmlText } from "../http/xml.ts";
import { ObjectDriver, type ObjectDriverOptions, type ObjectPage, type PageQuery } from "../object/driver.ts";
import type { ReadOptions, StorageRead, StorageWrite, WriteOptions } from "../storage.ts";
import type { S3Http } from "./client.ts";
import { listPage } from "./list.ts";
import { openObject, s3Read } from "./read.ts";
import { S3Write } from "./write.ts";

/** pgBackRest's default for S3: 5 MiB, also AWS's smallest part. */
export const DEFAULT_CHUNK_SIZE = 5 * 1024 * 1024;
/** DeleteObjects takes at most 1000 keys a request. */
const DELETE_BATCH = 1000;

export type S3DriverOptions = ObjectDriverOptions;

export class S3Driver extends ObjectDriver {
  readonly service = "S3";
  readonly client: S3Http;

  constructor(client: S3Http, opts: S3DriverOptions = {}) {
    super(opts, DEFAULT_CHUNK_SIZE);
    this.client = client;
  }

  protected where(key: string): string {
    return `key '${key}' in bucket '${this.client.bucket}'`;
  }

  protected async head(key: string): Promise<{ size: number; mtime: number } | null> {
    const res = await this.client.request({ method: "HEAD", key, accept: [404] });
    if (res.status === 404) return null;
    return { size: Number(res.headers.get("content-length") ?? 0), mtime: Math.floor(Date.parse(res.headers.get("last-modified") ?? "") / 1000) || 0 };
  }

  protected listPage(prefix: string, q: PageQuery): Promise<ObjectPage> {
    return listPage(this.client, prefix, q);
  }

  protected async readObject(key: string, opts: ReadOptions): Promise<StorageRead | null> {
    const res = await openObject(this.client, key, opts.offset ?? 0, opts.limit);
    return res && s3Read(this.client, key, res, opts);
  }

  protected writeObject(key: string, path: string, opts: WriteOptions): StorageWrite {
    return new S3Write(this.client, key, path, this.chunkSize, opts);
  }

  protected async deleteKey(key: string): Promise<void> {
    const res = await this.client.request({ method: "DELETE", key, accept: [404] });
    await res.arrayBuffer();
  }

  protected override async deleteKeys(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) await this.#deleteBatch(keys.slice(i, i + DELETE_BATCH));
  }

  async #deleteBatch(keys: string[]): Promise<void> {
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
}
