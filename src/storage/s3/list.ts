/**
 * Listing on an object store: ListObjectsV2, page after page (an engine returns at most 1000 keys
 * a page and a continuation token for the rest). With a delimiter, "directories" come back as
 * common prefixes; without one, every key below the prefix.
 */
import type { S3Http } from "./client.ts";
import { xmlAll, xmlText } from "./xml.ts";

export interface S3Object {
  key: string;
  size: number;
  /** Whole seconds since the epoch. */
  mtime: number;
}

export interface S3Page {
  objects: S3Object[];
  /** Common prefixes (each ends with the delimiter). */
  prefixes: string[];
}

export function parseListPage(xml: string): S3Page & { next?: string } {
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

/**
 * Every page under a prefix, in key order; `visit` sees each page as it arrives, so a caller
 * deleting a million keys never holds them all. `maxKeys` limits the page size (tests).
 */
export async function listPages(client: S3Http, prefix: string, opts: { delimiter?: string; maxKeys?: number; limit?: number }, visit: (page: S3Page) => Promise<void> | void): Promise<void> {
  let token: string | undefined;
  let seen = 0;
  do {
    const query: Record<string, string> = { "list-type": "2", prefix };
    if (opts.delimiter) query.delimiter = opts.delimiter;
    if (opts.maxKeys) query["max-keys"] = String(opts.maxKeys);
    if (token) query["continuation-token"] = token;
    const { text } = await client.requestText({ method: "GET", key: "", query });
    const page = parseListPage(text);
    await visit(page);
    seen += page.objects.length + page.prefixes.length;
    token = page.next;
  } while (token !== undefined && (opts.limit === undefined || seen < opts.limit));
}

/** Whether any key starts with the prefix. */
export async function prefixExists(client: S3Http, prefix: string): Promise<boolean> {
  let found = false;
  await listPages(client, prefix, { maxKeys: 1, limit: 1 }, (p) => {
    found ||= p.objects.length > 0;
  });
  return found;
}

