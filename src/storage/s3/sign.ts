/**
 * AWS Signature Version 4 for S3 requests sent in headers (the Authorization header), as every
 * S3 engine (AWS, Ceph RGW, MinIO) checks it. Pure: given the request and the credentials it
 * returns the headers to add. The payload is signed by its SHA-256 (callers have the bytes of each
 * request body in hand: a whole small file or one multipart part).
 *
 * Bun's S3Client signs internally but exposes signing only as presigned URLs, which cannot carry
 * the query parameters of ListObjectsV2 and multipart requests; so the signing is done here.
 */
import { createHmac } from "node:crypto";
import { encodePath, uriEncode } from "../http/uri.ts";

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SignInput {
  method: string;
  host: string;
  /** Already-encoded path (see encodePath). */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  /** Hex SHA-256 of the body. */
  payloadHash: string;
  region: string;
  /** Request time (tests pass a fixed one). */
  now?: Date;
}

export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export { encodePath, uriEncode };

export function canonicalQuery(query: Record<string, string>): string {
  return Object.keys(query)
    .map((k) => [uriEncode(k), uriEncode(query[k]!)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

export function sha256Hex(data: Uint8Array | string): string {
  return new Bun.CryptoHasher("sha256").update(data).digest("hex");
}

function hmac(key: Uint8Array | string, data: string): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

/** `20130524T000000Z` */
function amzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/** The headers to send: the caller's, plus host, x-amz-date, x-amz-content-sha256, the token and Authorization. */
export function signRequest(input: SignInput, creds: Credentials): Record<string, string> {
  const date = amzDate(input.now ?? new Date());
  const day = date.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers)) headers[k.toLowerCase()] = v.trim();
  headers.host = input.host;
  headers["x-amz-date"] = date;
  headers["x-amz-content-sha256"] = input.payloadHash;
  if (creds.sessionToken) headers["x-amz-security-token"] = creds.sessionToken;
  const names = Object.keys(headers).sort();
  const canonical = [
    input.method,
    input.path,
    canonicalQuery(input.query),
    ...names.map((n) => `${n}:${headers[n]}`),
    "",
    names.join(";"),
    input.payloadHash,
  ].join("\n");
  const scope = `${day}/${input.region}/s3/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", date, scope, sha256Hex(canonical)].join("\n");
  let key = hmac(`AWS4${creds.secretAccessKey}`, day);
  for (const part of [input.region, "s3", "aws4_request"]) key = hmac(key, part);
  const signature = createHmac("sha256", key).update(toSign).digest("hex");
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}`;
  return headers;
}
