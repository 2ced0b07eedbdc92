/**
 * Listing on an object store: ListObjectsV2, page after page (an engine returns at most 1000 keys
 * a page and a continuation token for the rest). With a delimiter, "directories" come back as
 * common prefixes; without one, every key below the prefix.
 */
import type { S3Http } from "./client.ts";
import { xmlAll, xmlText } from "../http/xml.ts";
import type { ObjectPage, PageQuery } from "../object/driver.ts";

export type S3Page = ObjectPage;

export function parseListPage(xml: string): ObjectPage {
  const objects = xmlAll(xml, "Contents").map((c) => ({
    key: xmlText(c, "Key") ?? "",
    size: Number(xmlText(c, "Size") ?? 0),
    mtime: Math.floor(Date.parse(xmlText(c, "LastModified") ?? "") / 1000) || 0,
  }));
  const prefixes = xmlAll(xml, "CommonPrefixes").map((p) => xmlText(p, "Prefix") ?? "");
  const truncated = xmlText(xml, "IsTruncated") === "true";
  const token = xmlText(xml, "NextContinuationToken");
  return { objects, prefixes, next: truncated ? token : undefined };
}

/** One ListObjectsV2 page below prefix. */
export async function listPage(client: S3Http, prefix: string, q: PageQuery): Promise<ObjectPage> {
  const query: Record<string, string> = { "list-type": "2", prefix };
  if (q.delimiter) query.delimiter = "/";
  if (q.pageSize) query["max-keys"] = String(q.pageSize);
  if (q.token) query["continuation-token"] = q.token;
  return parseListPage((await client.requestText({ method: "GET", key: "", query })).text);
}

/** Every page under a prefix, recursively (tests look at a bucket's keys with it). */
export async function listPages(client: S3Http, prefix: string, opts: { delimiter?: string; maxKeys?: number }, visit: (page: S3Page) => Promise<void> | void): Promise<void> {
  let token: string | undefined;
  do {
    const page = await listPage(client, prefix, { delimiter: opts.delimiter !== undefined, pageSize: opts.maxKeys, token });
    await visit(page);
    token = page.next;
  } while (token !== undefined);
}
