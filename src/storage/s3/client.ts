/**
 * One S3 endpoint and bucket, spoken to over HTTPS with fetch: signs each request (sign.ts),
 * verifies TLS as configured (repoN-storage-verify-tls, -ca-file, -ca-path), retries transient
 * failures (retry.ts) and turns permanent ones into errors that name the bucket, the key and the
 * HTTP status at once.
 *
 * Why fetch and not Bun's S3Client: S3Client has no TLS settings (a private CA or verify-tls=n
 * cannot be given to it), no server-side-encryption headers (repoN-s3-kms-key-id), no abort of a
 * multipart upload it started, and it hides the HTTP status that decides "retry" from "fail now".
 */
import { err, type ErrorName, PgbError } from "../../common/error.ts";
import { withRetry } from "../http/retry.ts";
import { errorDetail, type FetchTls, type HttpSettings, readBody, send, tlsOptions } from "../http/transport.ts";
import { encodePath, queryString } from "../http/uri.ts";
import { type Credentials, EMPTY_SHA256, sha256Hex, signRequest } from "./sign.ts";
import { xmlText } from "../http/xml.ts";

export interface S3Settings extends HttpSettings {
  bucket: string;
  /** Endpoint host name (repoN-s3-endpoint): in the Host header and, host style, after the bucket. */
  endpoint: string;
  /** Connect here instead of the endpoint (repoN-storage-host). */
  connectHost?: string;
  port?: number;
  region: string;
  uriStyle: "host" | "path";
  credentials: Credentials;
  /** SSE-KMS key for new objects (repoN-s3-kms-key-id). */
  kmsKeyId?: string;
}

export interface S3Request {
  method: "GET" | "PUT" | "POST" | "DELETE" | "HEAD";
  /** Object key (no leading slash); "" for the bucket itself. */
  key: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Uint8Array;
  /** Statuses that are answers, not errors (404 for a HEAD of a missing object). */
  accept?: readonly number[];
}

export class S3Http {
  readonly settings: S3Settings;
  readonly #tls: FetchTls;
  readonly #origin: string;
  readonly #host: string;
  readonly #prefix: string;

  constructor(settings: S3Settings) {
    this.settings = settings;
    const port = settings.port ?? 443;
    const name = settings.uriStyle === "host" ? `${settings.bucket}.${settings.endpoint}` : settings.endpoint;
    this.#host = port === 443 ? name : `${name}:${port}`;
    this.#origin = `https://${settings.connectHost ?? name}:${port}`;
    this.#prefix = settings.uriStyle === "path" ? `/${settings.bucket}` : "";
    this.#tls = tlsOptions(settings);
  }

  get bucket(): string {
    return this.settings.bucket;
  }

  /** Where an error happened, for messages: "GET 'key' in bucket 'b'". */
  describe(req: Pick<S3Request, "method" | "key">): string {
    return req.key === "" ? `${req.method} of bucket '${this.bucket}'` : `${req.method} '${req.key}' in bucket '${this.bucket}'`;
  }

  /**
   * Send a request (retrying transient failures) and return the response with its body unread
   * (the caller consumes it). A status outside 2xx and `accept` throws.
   */
  async request(req: S3Request): Promise<Response> {
    return withRetry("S3", this.settings.retry, () => this.#once(req));
  }

  /** Send a request and return its body as text (for XML answers). */
  async requestText(req: S3Request): Promise<{ status: number; text: string; headers: Headers }> {
    return withRetry("S3", this.settings.retry, async () => {
      const res = await this.#once(req);
      return { status: res.status, text: await readBody(res, this.describe(req), this.settings.ioTimeoutMs ?? 60_000), headers: res.headers };
    });
  }

  async #once(req: S3Request): Promise<Response> {
    const path = `${this.#prefix}/${encodePath(req.key)}`;
    const query = req.query ?? {};
    const body = req.body;
    const headers: Record<string, string> = { ...req.headers };
    if (body !== undefined) headers["content-length"] = String(body.byteLength);
    const signed = signRequest(
      { method: req.method, host: this.#host, path, query, headers, payloadHash: body && body.byteLength ? sha256Hex(body) : EMPTY_SHA256, region: this.settings.region },
      this.settings.credentials,
    );
    const url = `${this.#origin}${path}${queryString(query)}`;
    const timeoutMs = this.settings.ioTimeoutMs ?? 60_000;
    const { res, ok } = await send({ url, method: req.method, headers: signed, body, tls: this.#tls, timeoutMs, what: this.describe(req), label: this.settings.label }, req.accept);
    if (!ok) throw this.#permanent(req, res.status, await res.text().catch(() => ""));
    // A 404 is "no such key" only when the bucket exists: NoSuchBucket is an error (a HEAD has no
    // body to tell them apart; its callers list the bucket next, which says it).
    if (res.status !== 404 || req.method === "HEAD") return res;
    const text = await readBody(res, this.describe(req), timeoutMs);
    if (xmlText(text, "Code") === "NoSuchBucket") throw this.#permanent(req, res.status, text);
    return new Response(text, { status: res.status, headers: res.headers });
  }

  #opt(name: string): string {
    return `${this.settings.label ?? "repo"}-${name}`;
  }

  /** A permanent failure (4xx): no retry, an error that names bucket, key and status. */
  #permanent(req: S3Request, status: number, text: string): PgbError {
    const code = xmlText(text, "Code");
    const what = `${this.describe(req)} failed: HTTP ${status}${errorDetail(text)}`;
    let kind: ErrorName = "ProtocolError";
    let hint: string | undefined;
    if (code === "NoSuchBucket") {
      kind = "PathMissingError";
      hint = `create bucket '${this.bucket}' or correct ${this.#opt("s3-bucket")}.`;
    } else if (code === "RequestTimeTooSkewed") {
      kind = "AccessError";
      hint = "this host's clock differs from the S3 endpoint's by more than S3 allows (15 minutes): correct the clock (NTP) and run again.";
    } else if (status === 403) {
      kind = "AccessError";
      hint = `check ${this.#opt("s3-key")}, ${this.#opt("s3-key-secret")} (and ${this.#opt("s3-token")}), ${this.#opt("s3-region")} and the bucket's policy.`;
    } else if (status === 301 || code === "PermanentRedirect" || code === "AuthorizationHeaderMalformed") {
      hint = `check ${this.#opt("s3-region")}, ${this.#opt("s3-endpoint")} and ${this.#opt("s3-uri-style")}.`;
    }
    return err(kind, what, hint);
  }

  /** Create the bucket (tests, and `repo-create`-like setups); an existing one owned by us is fine. */
  async createBucket(): Promise<void> {
    const body = this.settings.region === "us-east-1" ? undefined : new TextEncoder().encode(`<CreateBucketConfiguration><LocationConstraint>${this.settings.region}</LocationConstraint></CreateBucketConfiguration>`);
    await this.requestText({ method: "PUT", key: "", body, accept: [409] });
  }

  /** Headers that put new objects under SSE-KMS, when configured. */
  get encryptionHeaders(): Record<string, string> {
    const k = this.settings.kmsKeyId;
    return k ? { "x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": k } : {};
  }
}
