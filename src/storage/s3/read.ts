/** Reading an S3 object: a ranged GET, resumed by the shared object read (object/read.ts). */
import { ObjectRead, rangeHeaders, unlessMissing } from "../object/read.ts";
import type { ReadOptions } from "../storage.ts";
import type { S3Http } from "./client.ts";

/** Open a GET of key from `offset`; null when the object is missing (404). */
export async function openObject(client: S3Http, key: string, offset: number, limit: number | undefined, etag?: string): Promise<Response | null> {
  return unlessMissing(await client.request({ method: "GET", key, headers: rangeHeaders(offset, limit, etag), accept: [404, 416] }));
}

export function s3Read(client: S3Http, key: string, res: Response, opts: ReadOptions): ObjectRead {
  const { ioTimeoutMs, retry } = client.settings;
  return new ObjectRead({ service: "S3", what: client.describe({ method: "GET", key }), ioTimeoutMs, retry, reopen: (o, l, e) => openObject(client, key, o, l, e) }, res, opts);
}
