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
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { err, type ErrorName, PgbError } from "../../common/error.ts";
import { type RetryPolicy, withRetry } from "./retry.ts";
import { type Credentials, EMPTY_SHA256, encodePath, sha256Hex, signRequest, uriEncode } from "./sign.ts";
import { xmlText } from "./xml.ts";

export interface S3Settings {
  bucket: string;
  /** Endpoint host name (repoN-s3-endpoint): in the Host header and, host style, after the bucket. */
  endpoint: string;
  /** Connect here instead of the endpoint (repoN-storage-host). */
  connectHost?: string;
  port?: number;
  region: string;
  uriStyle: "host" | "path";
  credentials: Credentials;
  verifyTls: boolean;
  caFile?: string;
  caPath?: string;
  /** SSE-KMS key for new objects (repoN-s3-kms-key-id). */
  kmsKeyId?: string;
  /** A stalled request (no response, or no bytes) fails after this long. */
  ioTimeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Names the repository in messages and hints ("repo1"). */
  label?: string;
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

/** A transient failure: worth trying again. */
export class TransientError extends Error {}

const TRANSIENT_STATUS = (s: number) => s >= 500 || s === 429 || s === 408;

/** Read the CA certificates a setting names: a PEM file, or every file in a directory. */
function loadCa(caFile?: string, caPath?: string): string[] | undefined {
  const out: string[] = [];
  if (caFile) out.push(readFileSync(caFile, "utf8"));
  if (caPath)
    for (const f of readdirSync(caPath).sort()) {
      const full = join(caPath, f);
      if (statSync(full).isFile()) out.push(readFileSync(full, "utf8"));
    }
  return out.length ? out : undefined;
}

export class S3Http {
  readonly settings: S3Settings;
  readonly #tls: { rejectUnauthorized: boolean; ca?: string[] };
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
    try {
      this.#tls = { rejectUnauthorized: settings.verifyTls, ca: loadCa(settings.caFile, settings.caPath) };
    } catch (e) {
      throw err("FileOpenError", `unable to read the CA certificates of ${settings.label ?? "the repository"}: ${(e as Error).message}`, "check repo-storage-ca-file / repo-storage-ca-path.");
    }
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
    return withRetry(this.describe(req), this.settings.retry, () => this.#once(req));
  }

  /** Send a request and return its body as text (for XML answers). */
  async requestText(req: S3Request): Promise<{ status: number; text: string; headers: Headers }> {
    return withRetry(this.describe(req), this.settings.retry, async () => {
      const res = await this.#once(req);
      try {
        return { status: res.status, text: await this.#withTimeout(res.text(), req), headers: res.headers };
      } catch (e) {
        if (e instanceof PgbError) throw e;
        throw new TransientError(`${this.describe(req)}: response body lost: ${(e as Error).message}`);
      }
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
    const qs = Object.entries(query).map(([k, v]) => (v === "" ? uriEncode(k) : `${uriEncode(k)}=${uriEncode(v)}`)).join("&");
    const url = `${this.#origin}${path}${qs ? `?${qs}` : ""}`;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.settings.ioTimeoutMs ?? 60_000);
    let res: Response;
    try {
      res = await fetch(url, { method: req.method, headers: signed, body: body as Uint8Array<ArrayBuffer> | undefined, tls: this.#tls, signal: abort.signal, redirect: "manual", decompress: false } as RequestInit);
    } catch (e) {
      const msg = abort.signal.aborted ? `no response within ${(this.settings.ioTimeoutMs ?? 60_000) / 1000}s` : (e as Error).message;
      if (/certificate|self.signed|SSL|TLS|UNABLE_TO_VERIFY|CERT_/i.test(`${msg} ${(e as { code?: string }).code ?? ""}`))
        throw err("HostConnectError", `${this.describe(req)} at ${this.#origin}: TLS verification failed: ${msg}`, `set ${this.#opt("storage-ca-file")} to the CA that signed the endpoint's certificate (or ${this.#opt("storage-verify-tls")}=n to skip verification).`);
      throw new TransientError(`${this.describe(req)} at ${this.#origin}: ${msg}`);
    } finally {
      clearTimeout(timer);
    }
    if (res.status >= 200 && res.status < 300) return res;
    if (req.accept?.includes(res.status)) {
      // A 404 is "no such key" only when the bucket exists: NoSuchBucket is an error (a HEAD has no
      // body to tell them apart; its callers list the bucket next, which says it).
      if (res.status !== 404 || req.method === "HEAD") return res;
      const text = await this.#withTimeout(res.text(), req).catch((e: unknown) => {
        throw new TransientError(`${this.describe(req)}: response body lost: ${(e as Error).message}`);
      });
      if (xmlText(text, "Code") === "NoSuchBucket") throw this.#permanent(req, res.status, text);
      return new Response(text, { status: res.status, headers: res.headers });
    }
    const text = await res.text().catch(() => "");
    if (TRANSIENT_STATUS(res.status)) throw new TransientError(`${this.describe(req)}: HTTP ${res.status}${detail(text)}`);
    throw this.#permanent(req, res.status, text);
  }

  #opt(name: string): string {
    return `${this.settings.label ?? "repo"}-${name}`;
  }

  /** A permanent failure (4xx): no retry, an error that names bucket, key and status. */
  #permanent(req: S3Request, status: number, text: string): PgbError {
    const code = xmlText(text, "Code");
    const what = `${this.describe(req)} failed: HTTP ${status}${detail(text)}`;
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

  /** Fail a body read that stalls longer than io-timeout (a silent peer). */
  #withTimeout<T>(p: Promise<T>, req: S3Request): Promise<T> {
    return timeout(p, this.settings.ioTimeoutMs ?? 60_000, () => `${this.describe(req)}: no data within ${(this.settings.ioTimeoutMs ?? 60_000) / 1000}s`);
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

/** " (Code: Message)" from an S3 error body, or "". */
function detail(text: string): string {
  const code = xmlText(text, "Code");
  if (!code) return "";
  const message = xmlText(text, "Message");
  return ` (${code}${message ? `: ${message}` : ""})`;
}

/** Race a promise against a stall timer; the timer's error is transient. */
export function timeout<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TransientError(what())), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
