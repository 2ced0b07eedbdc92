/**
 * One Azure Blob Storage account and container over HTTPS: requests are authorized with the
 * account's Shared Key (sign.ts) or carry a shared access signature (repoN-azure-key-type=sas),
 * go to account.endpoint (uri-style host) or to endpoint/account (uri-style path, as Azurite
 * serves them), are retried when transient (http/retry.ts) and fail at once, naming the
 * container, blob and HTTP status, when permanent.
 */
import { err, type ErrorName, type PgbError } from "../../common/error.ts";
import { withRetry } from "../http/retry.ts";
import { errorDetail, type FetchTls, type HttpSettings, readBody, send, tlsOptions } from "../http/transport.ts";
import { encodePath, queryString } from "../http/uri.ts";
import { xmlText } from "../http/xml.ts";
import { sharedKeyAuthorization } from "./sign.ts";

/** The Blob service version spoken (pgBackRest 2.59.1 sends the same). */
export const AZURE_VERSION = "2024-08-04";

export interface AzureSettings extends HttpSettings {
  account: string;
  container: string;
  /** Blob service host (repoN-azure-endpoint): blob.core.windows.net by default. */
  endpoint: string;
  /** Connect here instead of the endpoint (repoN-storage-host). */
  connectHost?: string;
  port?: number;
  uriStyle: "host" | "path";
  /** Shared Key (base64) or a SAS token, per keyType. */
  key: string;
  keyType: "shared" | "sas";
}

export interface AzureRequest {
  method: "GET" | "PUT" | "DELETE" | "HEAD";
  /** Blob name (no leading slash); "" for the container itself. */
  blob: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Uint8Array;
  /** Statuses that are answers, not errors (404 for a HEAD of a missing blob). */
  accept?: readonly number[];
}

export class AzureHttp {
  readonly settings: AzureSettings;
  readonly #tls: FetchTls;
  readonly #origin: string;
  readonly #host: string;
  /** "/account" in path style, "" in host style: what goes before /container in the URI. */
  readonly #prefix: string;
  readonly #sas: Record<string, string>;

  constructor(settings: AzureSettings) {
    this.settings = settings;
    const port = settings.port ?? 443;
    const name = settings.uriStyle === "host" ? `${settings.account}.${settings.endpoint}` : settings.endpoint;
    this.#host = port === 443 ? name : `${name}:${port}`;
    this.#origin = `https://${settings.connectHost ?? name}:${port}`;
    this.#prefix = settings.uriStyle === "path" ? `/${settings.account}` : "";
    this.#tls = tlsOptions(settings);
    this.#sas = settings.keyType === "sas" ? Object.fromEntries(new URLSearchParams(settings.key.replace(/^\?/, ""))) : {};
  }

  get container(): string {
    return this.settings.container;
  }

  /** Where an error happened, for messages: "GET 'blob' in container 'c'". */
  describe(req: Pick<AzureRequest, "method" | "blob">): string {
    return req.blob === "" ? `${req.method} of container '${this.container}'` : `${req.method} '${req.blob}' in container '${this.container}'`;
  }

  /** Send a request (retrying transient failures); the body is left for the caller to read. */
  async request(req: AzureRequest): Promise<Response> {
    return withRetry("Azure", this.settings.retry, () => this.#once(req));
  }

  /** Send a request and read its body as text (XML answers). */
  async requestText(req: AzureRequest): Promise<{ status: number; text: string; headers: Headers }> {
    return withRetry("Azure", this.settings.retry, async () => {
      const res = await this.#once(req);
      return { status: res.status, text: await readBody(res, this.describe(req), this.settings.ioTimeoutMs ?? 60_000), headers: res.headers };
    });
  }

  async #once(req: AzureRequest): Promise<Response> {
    const path = `${this.#prefix}/${this.container}${req.blob === "" ? "" : `/${encodePath(req.blob)}`}`;
    const query = req.query ?? {};
    const headers: Record<string, string> = { ...req.headers, "x-ms-date": new Date().toUTCString(), "x-ms-version": AZURE_VERSION, host: this.#host };
    if (req.body !== undefined || req.method === "PUT") headers["content-length"] = String(req.body?.byteLength ?? 0);
    if (this.settings.keyType === "shared") headers.authorization = sharedKeyAuthorization({ method: req.method, account: this.settings.account, path, query, headers }, this.settings.key);
    const url = `${this.#origin}${path}${queryString({ ...query, ...this.#sas })}`;
    const { res, ok } = await send({ url, method: req.method, headers, body: req.body, tls: this.#tls, timeoutMs: this.settings.ioTimeoutMs ?? 60_000, what: this.describe(req), label: this.settings.label }, req.accept);
    if (ok) return res;
    throw this.#permanent(req, res, await res.text().catch(() => ""));
  }

  #opt(name: string): string {
    return `${this.settings.label ?? "repo"}-${name}`;
  }

  /** A permanent failure (4xx): no retry, an error naming container, blob and status. */
  #permanent(req: AzureRequest, res: Response, text: string): PgbError {
    // A HEAD has no body: the error code comes in a header.
    const code = xmlText(text, "Code") ?? res.headers.get("x-ms-error-code") ?? undefined;
    const what = `${this.describe(req)} failed: HTTP ${res.status}${errorDetail(text) || (code ? ` (${code})` : "")}`;
    let kind: ErrorName = "ProtocolError";
    let hint: string | undefined;
    if (code === "ContainerNotFound") {
      kind = "PathMissingError";
      // The account is a secret to pgBackRest (secure): not named here.
      hint = `create container '${this.container}' or correct ${this.#opt("azure-container")}.`;
    } else if (res.status === 403) {
      kind = "AccessError";
      hint = `check ${this.#opt("azure-account")}, ${this.#opt("azure-key")} and ${this.#opt("azure-key-type")} (${this.settings.keyType}).`;
    } else if (code === "InvalidUri" || code === "InvalidResourceName" || code === "AccountNotFound" || code === "ResourceNotFound") {
      hint = `check ${this.#opt("azure-account")}, ${this.#opt("azure-endpoint")} and ${this.#opt("azure-uri-style")}.`;
    }
    return err(kind, what, hint);
  }

  /** Create the container (tests); one that exists already is fine. */
  async createContainer(): Promise<void> {
    await this.requestText({ method: "PUT", blob: "", query: { restype: "container" }, accept: [409] });
  }
}
