/**
 * Access tokens for GCS requests, by repoN-gcs-key-type:
 * - service: the service account key file (JSON: client_email, private_key, token_uri) signs a
 *   JWT (RS256, node:crypto) that the token endpoint exchanges for an access token (OAuth 2.0
 *   JWT bearer grant); the key file is read again at each renewal, as pgBackRest does;
 * - token: repoN-gcs-key is the access token itself (for local test servers);
 * - auto: the instance's service account, from the metadata server (GCE_METADATA_HOST, as
 *   Google's libraries name it, overrides metadata.google.internal).
 * A token is reused until a minute before it expires.
 */
import { createSign } from "node:crypto";
import { readFileSync } from "node:fs";
import { err } from "../../common/error.ts";
import { withRetry } from "../http/retry.ts";
import { errorDetail, type FetchTls, send } from "../http/transport.ts";

export type GcsKeyType = "service" | "token" | "auto";

const SCOPE = "https://www.googleapis.com/auth/devstorage.read_write";
const METADATA_PATH = "/computeMetadata/v1/instance/service-accounts/default/token";

interface ServiceKey {
  client_email: string;
  private_key: string;
  token_uri: string;
}

const b64url = (s: string | Buffer) => Buffer.from(s).toString("base64url");

/** A signed JWT asking for a token of SCOPE (exported for unit tests). */
export function serviceJwt(key: ServiceKey, nowSeconds = Math.floor(Date.now() / 1000)): string {
  const head = b64url(JSON.stringify({ alg: "RS256", typ: "JWT" }));
  const claims = b64url(JSON.stringify({ iss: key.client_email, scope: SCOPE, aud: key.token_uri, iat: nowSeconds, exp: nowSeconds + 3600 }));
  const signature = createSign("RSA-SHA256").update(`${head}.${claims}`).sign(key.private_key).toString("base64url");
  return `${head}.${claims}.${signature}`;
}

export interface TokenSource {
  keyType: GcsKeyType;
  /** Key file path (service) or the token (token). */
  key?: string;
  tls: FetchTls;
  timeoutMs: number;
  label: string;
}

export class GcsAuth {
  readonly #src: TokenSource;
  #token: string | undefined;
  #expires = 0;

  constructor(src: TokenSource) {
    this.#src = src;
    if (src.keyType !== "auto" && !src.key)
      throw err("OptionRequiredError", `${src.label}-gcs-key-type=${src.keyType} requires option: ${src.label}-gcs-key`, `set ${src.label}-gcs-key to the ${src.keyType === "service" ? "service account key file" : "access token"}.`);
  }

  /** "Bearer …" for the next request. */
  async authorization(): Promise<string> {
    if (this.#src.keyType === "token") return `Bearer ${this.#src.key}`;
    if (this.#token === undefined || Date.now() > this.#expires - 60_000) {
      const t = this.#src.keyType === "service" ? await this.#fromServiceKey() : await this.#fromMetadata();
      this.#token = t.access_token;
      this.#expires = Date.now() + (t.expires_in ?? 3600) * 1000;
    }
    return `Bearer ${this.#token}`;
  }

  #readKey(): ServiceKey {
    const file = this.#src.key!;
    let key: Partial<ServiceKey>;
    try {
      key = JSON.parse(readFileSync(file, "utf8")) as Partial<ServiceKey>;
    } catch (e) {
      throw err("FileOpenError", `unable to read the GCS service key file '${file}': ${(e as Error).message}`, `set ${this.#src.label}-gcs-key to a service account key file (JSON) readable by this user.`);
    }
    const missing = (["client_email", "private_key", "token_uri"] as const).filter((k) => typeof key[k] !== "string");
    if (missing.length) throw err("FormatError", `GCS service key file '${file}' has no ${missing.join(", ")}`, "download the service account's key again (JSON format).");
    return key as ServiceKey;
  }

  async #fromServiceKey(): Promise<{ access_token: string; expires_in?: number }> {
    const key = this.#readKey();
    const body = new TextEncoder().encode(`grant_type=${encodeURIComponent("urn:ietf:params:oauth:grant-type:jwt-bearer")}&assertion=${serviceJwt(key)}`);
    return this.#fetchToken(key.token_uri, "POST", { "content-type": "application/x-www-form-urlencoded" }, body, `token request for '${key.client_email}' at ${key.token_uri}`);
  }

  #fromMetadata(): Promise<{ access_token: string; expires_in?: number }> {
    const host = process.env.GCE_METADATA_HOST ?? "metadata.google.internal";
    return this.#fetchToken(`http://${host}${METADATA_PATH}`, "GET", { "metadata-flavor": "Google" }, undefined, `token request to the metadata server ${host}`);
  }

  async #fetchToken(url: string, method: string, headers: Record<string, string>, body: Uint8Array | undefined, what: string): Promise<{ access_token: string; expires_in?: number }> {
    return withRetry("GCS", undefined, async () => {
      const { res, ok } = await send({ url, method, headers, body, tls: this.#src.tls, timeoutMs: this.#src.timeoutMs, what, label: this.#src.label });
      const text = await res.text();
      if (!ok)
        throw err("AccessError", `${what} failed: HTTP ${res.status}${errorDetail(text)}`, this.#src.keyType === "service" ? `check ${this.#src.label}-gcs-key (the service account key file) and that the account may use the bucket.` : "check that this host has a service account with access to the bucket.");
      const j = JSON.parse(text) as { access_token?: string; expires_in?: number };
      if (!j.access_token) throw err("FormatError", `${what}: the answer has no access_token`);
      return { access_token: j.access_token, expires_in: j.expires_in };
    });
  }
}
