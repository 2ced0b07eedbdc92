/**
 * One HTTPS request to an object store, as every HTTP driver sends it: fetch with the repository's
 * TLS settings (repoN-storage-verify-tls, -ca-file, -ca-path), a stall timer (io-timeout), no
 * redirects and no decompression. Failures are classified once, here: a certificate problem is
 * permanent (HostConnectError with a hint naming the option to set); anything else on the wire
 * (refused, reset, no answer) and a 5xx/429/408 are transient, for withRetry to try again.
 * Other statuses are the caller's to map, because only the driver can read its error bodies.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { err, PgbError } from "../../common/error.ts";
import { isTransientStatus, type RetryPolicy, timeout, TransientError } from "./retry.ts";
import { xmlText } from "./xml.ts";

export interface TlsSettings {
  verifyTls: boolean;
  caFile?: string;
  caPath?: string;
  /** Names the repository in messages and hints ("repo1"). */
  label?: string;
}

/** What every HTTP driver's settings have besides its own. */
export interface HttpSettings extends TlsSettings {
  /** A stalled request (no response, or no bytes) fails after this long. */
  ioTimeoutMs?: number;
  retry?: Partial<RetryPolicy>;
}

export interface FetchTls {
  rejectUnauthorized: boolean;
  ca?: string[];
}

/** Read the CA certificates a setting names: a PEM file, or every file in a directory. */
export function tlsOptions(s: TlsSettings): FetchTls {
  const ca: string[] = [];
  try {
    if (s.caFile) ca.push(readFileSync(s.caFile, "utf8"));
    if (s.caPath)
      for (const f of readdirSync(s.caPath).sort()) {
        const full = join(s.caPath, f);
        if (statSync(full).isFile()) ca.push(readFileSync(full, "utf8"));
      }
  } catch (e) {
    throw err("FileOpenError", `unable to read the CA certificates of ${s.label ?? "the repository"}: ${(e as Error).message}`, "check repo-storage-ca-file / repo-storage-ca-path.");
  }
  return { rejectUnauthorized: s.verifyTls, ca: ca.length ? ca : undefined };
}

export interface SendInput {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: Uint8Array;
  tls: FetchTls;
  timeoutMs: number;
  /** "GET 'key' in bucket 'b'": starts every message. */
  what: string;
  /** Option prefix for hints ("repo1"). */
  label?: string;
}

/**
 * Send once. Returns the response when its status is 2xx or in `accept`; a transient status
 * throws TransientError; any other status is returned too, with `ok` false, for the caller to map.
 */
export async function send(req: SendInput, accept: readonly number[] = []): Promise<{ res: Response; ok: boolean }> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), req.timeoutMs);
  const origin = new URL(req.url).origin;
  let res: Response;
  try {
    res = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body as Uint8Array<ArrayBuffer> | undefined, tls: req.tls, signal: abort.signal, redirect: "manual", decompress: false } as RequestInit);
  } catch (e) {
    const msg = abort.signal.aborted ? `no response within ${req.timeoutMs / 1000}s` : (e as Error).message;
    const label = req.label ?? "repo";
    if (/certificate|self.signed|SSL|TLS|UNABLE_TO_VERIFY|CERT_/i.test(`${msg} ${(e as { code?: string }).code ?? ""}`))
      throw err("HostConnectError", `${req.what} at ${origin}: TLS verification failed: ${msg}`, `set ${label}-storage-ca-file to the CA that signed the endpoint's certificate (or ${label}-storage-verify-tls=n to skip verification).`);
    throw new TransientError(`${req.what} at ${origin}: ${msg}`);
  } finally {
    clearTimeout(timer);
  }
  if ((res.status >= 200 && res.status < 300) || accept.includes(res.status)) return { res, ok: true };
  if (isTransientStatus(res.status)) {
    const text = await res.text().catch(() => "");
    throw new TransientError(`${req.what}: HTTP ${res.status}${errorDetail(text)}`);
  }
  return { res, ok: false };
}

/** A response's whole body as text; a stall (io-timeout) or a lost connection is transient. */
export async function readBody(res: Response, what: string, timeoutMs: number): Promise<string> {
  try {
    return await timeout(res.text(), timeoutMs, () => `${what}: no data within ${timeoutMs / 1000}s`);
  } catch (e) {
    if (e instanceof PgbError) throw e;
    throw new TransientError(`${what}: response body lost: ${(e as Error).message}`);
  }
}

/**
 * " (Code: Message)" from an error body: S3 and Azure answer XML <Code>/<Message>, GCS answers
 * JSON {"error": {"message"}}; "" when there is neither.
 */
export function errorDetail(text: string): string {
  const code = xmlText(text, "Code");
  if (code) {
    const message = xmlText(text, "Message")?.split("\n")[0];
    return ` (${code}${message ? `: ${message}` : ""})`;
  }
  try {
    const j = JSON.parse(text) as { error?: { message?: string } | string; error_description?: string };
    const m = typeof j.error === "string" ? `${j.error}${j.error_description ? `: ${j.error_description}` : ""}` : j.error?.message;
    return m ? ` (${m})` : "";
  } catch {
    return "";
  }
}
