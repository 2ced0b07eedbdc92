/**
 * Azure Storage Shared Key authorization (the "SharedKey" scheme of the Blob service, versions
 * 2015-02-21 and later), as Microsoft documents it: an HMAC-SHA256, keyed with the base64-decoded
 * account key, of a string made of the verb, twelve standard headers, the x-ms-* headers and the
 * resource. Pure: given the request it returns the Authorization header value.
 */
import { createHmac } from "node:crypto";

export interface AzureSignInput {
  method: string;
  account: string;
  /** The request path exactly as sent (already encoded), e.g. /container/dir/blob. */
  path: string;
  /** Query parameters, decoded. */
  query: Record<string, string>;
  /** Request headers, names in lower case. */
  headers: Record<string, string>;
}

/** The standard headers in the order the string to sign has them. */
const STANDARD = ["content-encoding", "content-language", "content-length", "content-md5", "content-type", "date", "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range"] as const;

/** The string the signature covers (exported for unit tests: ordering is what goes wrong). */
export function stringToSign(i: AzureSignInput): string {
  const h = i.headers;
  const standard = STANDARD.map((name) => {
    const v = h[name] ?? "";
    // A zero length is signed as empty (service version 2015-02-21 on).
    return name === "content-length" && v === "0" ? "" : v;
  });
  const msHeaders = Object.keys(h)
    .filter((k) => k.startsWith("x-ms-"))
    .sort()
    .map((k) => `${k}:${h[k]!.replace(/\s+/g, " ").trim()}\n`)
    .join("");
  // Parameters by lower-case name, sorted; repeated values joined by commas.
  const params = new Map<string, string[]>();
  for (const [k, v] of Object.entries(i.query)) params.set(k.toLowerCase(), [...(params.get(k.toLowerCase()) ?? []), v]);
  const resource = `/${i.account}${i.path}${[...params.keys()].sort().map((k) => `\n${k}:${params.get(k)!.sort().join(",")}`).join("")}`;
  return `${i.method}\n${standard.join("\n")}\n${msHeaders}${resource}`;
}

/** The Authorization header: "SharedKey account:signature". */
export function sharedKeyAuthorization(i: AzureSignInput, key: string): string {
  const signature = createHmac("sha256", Buffer.from(key, "base64")).update(stringToSign(i), "utf8").digest("base64");
  return `SharedKey ${i.account}:${signature}`;
}
