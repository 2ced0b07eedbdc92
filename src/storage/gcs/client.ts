/**
 * One GCS bucket over the JSON API (https://endpoint/storage/v1/b/BUCKET/o…, uploads under
 * /upload/storage/v1/…), each request carrying a bearer token (auth.ts). Transient failures are
 * retried (http/retry.ts); permanent ones fail at once naming the bucket, object and status.
 */
import { err, type ErrorName, type PgbError } from "../../common/error.ts";
import { withRetry } from "../http/retry.ts";
import { errorDetail, type FetchTls, type HttpSettings, readBody, send, tlsOptions } from "../http/transport.ts";
import { queryString, uriEncode } from "../http/uri.ts";
import { GcsAuth, type GcsKeyType } from "./auth.ts";

export interface GcsSettings extends HttpSettings {
  bucket: string;
  /** host[:port] of the JSON API (repoN-gcs-endpoint): storage.googleapis.com by default. */
  endpoint: string;
  keyType: GcsKeyType;
  /** Service key file (service) or access token (token); none for auto. */
  key?: string;
  /** Project billed for the requests (repoN-gcs-user-project). */
  userProject?: string;
}

export interface GcsRequest {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** Object name ("" for the object collection: listing, or a new upload). */
  object: string;
  /** Under /upload/storage/v1 (media, resumable uploads). */
  upload?: boolean;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Uint8Array;
  accept?: readonly number[];
}

export class GcsHttp {
  readonly settings: GcsSettings;
  readonly #tls: FetchTls;
  readonly #origin: string;
  readonly #auth: GcsAuth;

  constructor(settings: GcsSettings) {
    this.settings = settings;
    this.#origin = `https://${settings.endpoint}`;
    this.#tls = tlsOptions(settings);
    this.#auth = new GcsAuth({ keyType: settings.keyType, key: settings.key, tls: this.#tls, timeoutMs: settings.ioTimeoutMs ?? 60_000, label: settings.label ?? "repo" });
  }

  get bucket(): string {
    return this.settings.bucket;
  }

  /** "GET 'name' in bucket 'b'" (an upload names its object in the query). */
  describe(req: Pick<GcsRequest, "method" | "object" | "query">): string {
    const name = req.object || req.query?.name;
    return name ? `${req.method} '${name}' in bucket '${this.bucket}'` : `${req.method} of bucket '${this.bucket}'`;
  }

  async request(req: GcsRequest): Promise<Response> {
    return withRetry("GCS", this.settings.retry, () => this.#once(req));
  }

  async requestJson<T>(req: GcsRequest): Promise<{ status: number; json: T; headers: Headers }> {
    return withRetry("GCS", this.settings.retry, async () => {
      const res = await this.#once(req);
      const text = await readBody(res, this.describe(req), this.settings.ioTimeoutMs ?? 60_000);
      try {
        return { status: res.status, json: (text === "" ? {} : JSON.parse(text)) as T, headers: res.headers };
      } catch {
        throw err("FormatError", `${this.describe(req)}: the answer is not JSON: ${text.slice(0, 200)}`);
      }
    });
  }

  async #once(req: GcsRequest): Promise<Response> {
    const base = `${req.upload ? "/upload" : ""}/storage/v1/b/${uriEncode(this.bucket)}/o`;
    const path = req.object === "" ? base : `${base}/${uriEncode(req.object)}`;
    const query = { ...req.query, ...(this.settings.userProject ? { userProject: this.settings.userProject } : {}) };
    const headers: Record<string, string> = { ...req.headers, authorization: await this.#auth.authorization() };
    if (req.body !== undefined || req.method === "POST" || req.method === "PUT") headers["content-length"] = String(req.body?.byteLength ?? 0);
    const url = `${this.#origin}${path}${queryString(query)}`;
    const { res, ok } = await send({ url, method: req.method, headers, body: req.body, tls: this.#tls, timeoutMs: this.settings.ioTimeoutMs ?? 60_000, what: this.describe(req), label: this.settings.label }, req.accept);
    if (ok) return res;
    throw this.#permanent(req, res.status, await res.text().catch(() => ""));
  }

  #opt(name: string): string {
    return `${this.settings.label ?? "repo"}-${name}`;
  }

  #permanent(req: GcsRequest, status: number, text: string): PgbError {
    const what = `${this.describe(req)} failed: HTTP ${status}${errorDetail(text)}`;
    let kind: ErrorName = "ProtocolError";
    let hint: string | undefined;
    if (status === 404 && /bucket/i.test(text)) {
      kind = "PathMissingError";
      hint = `create bucket '${this.bucket}' or correct ${this.#opt("gcs-bucket")}.`;
    } else if (status === 401 || status === 403) {
      kind = "AccessError";
      hint = `check ${this.#opt("gcs-key")} and ${this.#opt("gcs-key-type")} (${this.settings.keyType}), and that the account may use bucket '${this.bucket}'.`;
    }
    return err(kind, what, hint);
  }
}
