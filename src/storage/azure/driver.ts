/**
 * The Azure Blob storage driver: the object-store semantics of object/driver.ts over the Blob
 * service (Get Blob Properties, List Blobs with continuation markers, Delete Blob, ranged Get
 * Blob, Put Blob or Put Block + Put Block List). Block blobs only.
 */
import { xmlAll, xmlText } from "../http/xml.ts";
import { ObjectDriver, type ObjectDriverOptions, type ObjectPage, type PageQuery } from "../object/driver.ts";
import { ObjectRead, rangeHeaders, unlessMissing } from "../object/read.ts";
import type { ReadOptions, StorageRead, StorageWrite, WriteOptions } from "../storage.ts";
import type { AzureHttp } from "./client.ts";
import { AzureWrite } from "./write.ts";

/** pgBackRest's default block size for Azure: 4 MiB. */
export const AZURE_DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;

export type AzureDriverOptions = ObjectDriverOptions;

const seconds = (httpDate: string | null | undefined) => Math.floor(Date.parse(httpDate ?? "") / 1000) || 0;

/** One List Blobs answer: blobs, blob prefixes (with a delimiter) and the next marker. */
export function parseBlobList(xml: string): ObjectPage {
  const objects = xmlAll(xml, "Blob").map((b) => ({
    key: xmlText(b, "Name") ?? "",
    size: Number(xmlText(b, "Content-Length") ?? 0),
    mtime: seconds(xmlText(b, "Last-Modified")),
  }));
  const prefixes = xmlAll(xml, "BlobPrefix").map((p) => xmlText(p, "Name") ?? "");
  const next = xmlText(xml, "NextMarker");
  return { objects, prefixes, next: next ? next : undefined };
}

export class AzureDriver extends ObjectDriver {
  readonly service = "Azure";
  readonly client: AzureHttp;

  constructor(client: AzureHttp, opts: AzureDriverOptions = {}) {
    super(opts, AZURE_DEFAULT_CHUNK_SIZE);
    this.client = client;
  }

  protected where(key: string): string {
    return `blob '${key}' in container '${this.client.container}'`;
  }

  protected async head(key: string): Promise<{ size: number; mtime: number } | null> {
    const res = await this.client.request({ method: "HEAD", blob: key, accept: [404] });
    await res.arrayBuffer();
    if (res.status === 404) return null;
    return { size: Number(res.headers.get("content-length") ?? 0), mtime: seconds(res.headers.get("last-modified")) };
  }

  protected async listPage(prefix: string, q: PageQuery): Promise<ObjectPage> {
    const query: Record<string, string> = { restype: "container", comp: "list" };
    if (prefix !== "") query.prefix = prefix;
    if (q.delimiter) query.delimiter = "/";
    if (q.pageSize) query.maxresults = String(q.pageSize);
    if (q.token) query.marker = q.token;
    return parseBlobList((await this.client.requestText({ method: "GET", blob: "", query })).text);
  }

  protected async deleteKey(key: string): Promise<void> {
    const res = await this.client.request({ method: "DELETE", blob: key, accept: [404] });
    await res.arrayBuffer();
  }

  #get(key: string, offset: number, limit: number | undefined, etag?: string): Promise<Response | null> {
    return this.client.request({ method: "GET", blob: key, headers: rangeHeaders(offset, limit, etag), accept: [404, 416] }).then(unlessMissing);
  }

  protected async readObject(key: string, opts: ReadOptions): Promise<StorageRead | null> {
    const res = await this.#get(key, opts.offset ?? 0, opts.limit);
    if (!res) return null;
    const { ioTimeoutMs, retry } = this.client.settings;
    return new ObjectRead({ service: "Azure", what: this.client.describe({ method: "GET", blob: key }), ioTimeoutMs, retry, reopen: (o, l, e) => this.#get(key, o, l, e) }, res, opts);
  }

  protected writeObject(key: string, path: string, opts: WriteOptions): StorageWrite {
    return new AzureWrite(this.client, key, path, this.chunkSize, opts);
  }
}
