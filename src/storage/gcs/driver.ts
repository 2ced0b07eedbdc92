/**
 * The GCS storage driver: the object-store semantics of object/driver.ts over the JSON API
 * (object metadata, listing with page tokens, delete, ranged media download pinned to its
 * generation, media or resumable upload).
 */
import { ObjectDriver, type ObjectDriverOptions, type ObjectPage, type PageQuery } from "../object/driver.ts";
import { ObjectRead, rangeHeaders, unlessMissing } from "../object/read.ts";
import type { ReadOptions, StorageRead, StorageWrite, WriteOptions } from "../storage.ts";
import type { GcsHttp } from "./client.ts";
import { GcsWrite } from "./write.ts";

/** pgBackRest's default chunk size for GCS: 4 MiB (a multiple of 256 KiB, as resumable uploads need). */
export const GCS_DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;

export type GcsDriverOptions = ObjectDriverOptions;

interface GcsObject {
  name: string;
  size?: string;
  updated?: string;
}

const seconds = (iso: string | undefined) => Math.floor(Date.parse(iso ?? "") / 1000) || 0;

export class GcsDriver extends ObjectDriver {
  readonly service = "GCS";
  readonly client: GcsHttp;

  constructor(client: GcsHttp, opts: GcsDriverOptions = {}) {
    super(opts, GCS_DEFAULT_CHUNK_SIZE);
    this.client = client;
  }

  protected where(key: string): string {
    return `object '${key}' in bucket '${this.client.bucket}'`;
  }

  protected async head(key: string): Promise<{ size: number; mtime: number } | null> {
    const r = await this.client.requestJson<GcsObject>({ method: "GET", object: key, query: { fields: "size,updated" }, accept: [404] });
    if (r.status === 404) return null;
    return { size: Number(r.json.size ?? 0), mtime: seconds(r.json.updated) };
  }

  protected async listPage(prefix: string, q: PageQuery): Promise<ObjectPage> {
    const query: Record<string, string> = { fields: "nextPageToken,prefixes,items(name,size,updated)" };
    if (prefix !== "") query.prefix = prefix;
    if (q.delimiter) query.delimiter = "/";
    if (q.pageSize) query.maxResults = String(q.pageSize);
    if (q.token) query.pageToken = q.token;
    const { json } = await this.client.requestJson<{ items?: GcsObject[]; prefixes?: string[]; nextPageToken?: string }>({ method: "GET", object: "", query });
    return {
      objects: (json.items ?? []).map((o) => ({ key: o.name, size: Number(o.size ?? 0), mtime: seconds(o.updated) })),
      prefixes: json.prefixes ?? [],
      next: json.nextPageToken || undefined,
    };
  }

  protected async deleteKey(key: string): Promise<void> {
    const res = await this.client.request({ method: "DELETE", object: key, accept: [404] });
    await res.arrayBuffer();
  }

  #get(key: string, offset: number, limit: number | undefined, generation?: string): Promise<Response | null> {
    const query: Record<string, string> = { alt: "media" };
    if (generation) query.generation = generation;
    return this.client.request({ method: "GET", object: key, query, headers: rangeHeaders(offset, limit), accept: [404, 416] }).then(unlessMissing);
  }

  protected async readObject(key: string, opts: ReadOptions): Promise<StorageRead | null> {
    const res = await this.#get(key, opts.offset ?? 0, opts.limit);
    if (!res) return null;
    const { ioTimeoutMs, retry } = this.client.settings;
    return new ObjectRead(
      { service: "GCS", what: this.client.describe({ method: "GET", object: key }), ioTimeoutMs, retry, reopen: (o, l, g) => this.#get(key, o, l, g), pinOf: (r) => r.headers.get("x-goog-generation") ?? undefined },
      res,
      opts,
    );
  }

  protected writeObject(key: string, path: string, opts: WriteOptions): StorageWrite {
    return new GcsWrite(this.client, key, path, this.chunkSize, opts);
  }
}
