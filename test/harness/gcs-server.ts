/**
 * A small GCS JSON-API server for tests, because no real GCS emulator installs here (the npm
 * registry has none that runs without downloading a binary; fake-gcs-server is Go). It is NOT
 * Google's service: it implements the part of the JSON API that pgbunker and pgBackRest use,
 * in memory, over HTTPS with a harness-made certificate:
 * - OAuth: POST /token exchanges a service account's JWT (RS256, checked against the key pair
 *   made here: issuer, audience, expiry, scope) for an access token; a static token works too;
 *   every other request needs a valid bearer token (401 otherwise), but for the chunks of an
 *   open resumable session, which its upload id authorizes;
 * - objects: metadata GET, media GET (alt=media, Range, generation), DELETE, listing (prefix,
 *   delimiter, maxResults, pageToken), media uploads, resumable uploads (session, chunks with
 *   Content-Range answered 308 until the last, cancel with DELETE);
 * - a missing bucket is 404 "The specified bucket does not exist.".
 * GCS features nobody here uses (ACLs, batch, composition, versions listing) are absent.
 */
import { createHash, createVerify, generateKeyPairSync, randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stopChild } from "./child.ts";
import { concatBytes } from "../../src/common/bytes.ts";
import { GcsHttp, type GcsSettings } from "../../src/storage/gcs/client.ts";
import { tempDir } from "./cluster.ts";
import type { ProxyTarget } from "./fault-proxy.ts";
import { makeCertificate } from "./test-certificate.ts";

interface StoredObject {
  data: Uint8Array;
  generation: number;
  updated: string;
}

interface Upload {
  bucket: string;
  name: string;
  parts: Uint8Array[];
  received: number;
}

const SERVICE_EMAIL = "pgbunker-test@pgbunker-test.iam.gserviceaccount.com";

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
const gcsError = (status: number, message: string) => json(status, { error: { code: status, message, errors: [{ message }] } });

/** How to reach a GCS server, in this process or in another (GcsServerProcess). */
export interface GcsEndpoint extends ProxyTarget {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly caFile: string;
  readonly keyFile: string;
  readonly staticToken: string;
}

export function gcsSettings(ep: GcsEndpoint, bucket: string): GcsSettings {
  return { bucket, endpoint: `${ep.host}:${ep.port}`, keyType: "service", key: ep.keyFile, verifyTls: true, caFile: ep.caFile };
}

/** The repoN-* options that reach a bucket of the server (repoN-path is the caller's). */
export function gcsRepoOptions(ep: GcsEndpoint, index: number, bucket: string): Record<string, string | number> {
  const r = `repo${index}`;
  return { [`${r}-type`]: "gcs", [`${r}-gcs-bucket`]: bucket, [`${r}-gcs-endpoint`]: `${ep.host}:${ep.port}`, [`${r}-gcs-key`]: ep.keyFile, [`${r}-gcs-key-type`]: "service", [`${r}-storage-ca-file`]: ep.caFile };
}

export class GcsServer implements GcsEndpoint {
  readonly dir: string;
  readonly host = "127.0.0.1";
  readonly caFile: string;
  readonly tlsKeyFile: string;
  readonly tlsCertFile: string;
  readonly upstreamTls = true;
  /** A service account key file whose token_uri is this server. */
  readonly keyFile: string;
  /** Accepted as a bearer token as it is (repoN-gcs-key-type=token). */
  readonly staticToken = `static-${randomBytes(8).toString("hex")}`;
  /** What was asked of the server (tests look at how uploads went). */
  readonly stats = { tokens: 0, resumableChunks: 0, mediaUploads: 0 };
  readonly #buckets = new Map<string, Map<string, StoredObject>>();
  readonly #uploads = new Map<string, Upload>();
  readonly #tokens = new Set<string>();
  readonly #publicKey: string;
  #generation = 1;
  readonly #server: ReturnType<typeof Bun.serve>;

  private constructor(dir: string) {
    this.dir = dir;
    const cert = makeCertificate(dir, "gcs");
    this.caFile = cert.caFile;
    this.tlsKeyFile = cert.keyFile;
    this.tlsCertFile = cert.certFile;
    const pair = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });
    this.#publicKey = pair.publicKey;
    this.#server = Bun.serve({
      hostname: this.host,
      port: 0,
      tls: { key: Bun.file(cert.keyFile), cert: Bun.file(cert.certFile) },
      fetch: (req) => this.#handle(req),
    });
    this.keyFile = join(dir, "service-key.json");
    writeFileSync(this.keyFile, JSON.stringify({ type: "service_account", client_email: SERVICE_EMAIL, private_key: pair.privateKey, token_uri: `${this.origin}/token` }), { mode: 0o644 });
  }

  static start(): GcsServer {
    return new GcsServer(tempDir("pgbunker-gcs-"));
  }

  get port(): number {
    return this.#server.port!;
  }

  get upstreamPort(): number {
    return this.port;
  }

  get origin(): string {
    return `https://${this.host}:${this.port}`;
  }

  createBucket(bucket: string): void {
    if (!this.#buckets.has(bucket)) this.#buckets.set(bucket, new Map());
  }

  /** Names in a bucket below a prefix (tests). */
  names(bucket: string, prefix = ""): string[] {
    return [...(this.#buckets.get(bucket)?.keys() ?? [])].filter((n) => n.startsWith(prefix)).sort();
  }

  /** Open resumable sessions (an aborted write must leave none). */
  get pendingUploads(): number {
    return this.#uploads.size;
  }

  client(bucket: string): GcsHttp {
    return new GcsHttp(gcsSettings(this, bucket));
  }

  stop(): void {
    this.#server.stop(true);
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname === "/token" && req.method === "POST") return this.#token(await req.text());
    const auth = req.headers.get("authorization") ?? "";
    const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
    // As GCS: a resumable session's id is its credential (pgBackRest sends its chunks without a token).
    const session = (req.method === "PUT" || req.method === "DELETE") && this.#uploads.has(url.searchParams.get("upload_id") ?? "");
    if (!session && token !== this.staticToken && !this.#tokens.has(token)) return gcsError(401, "Invalid Credentials");
    if (url.pathname === "/storage/v1/b" && req.method === "POST") {
      const { name } = (await req.json()) as { name: string };
      if (this.#buckets.has(name)) return gcsError(409, "You already own this bucket. Please select another name.");
      this.createBucket(name);
      return json(200, { kind: "storage#bucket", name });
    }
    const m = /^(\/upload)?\/storage\/v1\/b\/([^/]+)\/o(?:\/(.+))?$/.exec(url.pathname);
    if (!m) return gcsError(404, `no such API: ${req.method} ${url.pathname}`);
    const bucket = this.#buckets.get(decodeURIComponent(m[2]!));
    if (!bucket) return gcsError(404, "The specified bucket does not exist.");
    const name = m[3] === undefined ? undefined : decodeURIComponent(m[3]);
    const q = url.searchParams;
    if (m[1]) return this.#upload(req, decodeURIComponent(m[2]!), bucket, q);
    if (name === undefined) return req.method === "GET" ? this.#list(bucket, q) : gcsError(405, "method not allowed");
    const obj = bucket.get(name);
    if (req.method === "DELETE") {
      if (!obj) return gcsError(404, `No such object: ${name}`);
      bucket.delete(name);
      return new Response(null, { status: 204 });
    }
    if (req.method !== "GET") return gcsError(405, "method not allowed");
    if (!obj || (q.has("generation") && q.get("generation") !== String(obj.generation))) return gcsError(404, `No such object: ${name}`);
    if (q.get("alt") !== "media") return json(200, this.#metadata(name, obj));
    return this.#media(req, obj);
  }

  #token(body: string): Response {
    const form = new URLSearchParams(body);
    const jwt = form.get("assertion") ?? "";
    const [head, claims, sig] = jwt.split(".");
    if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer" || !head || !claims || !sig) return json(400, { error: "invalid_request", error_description: "expected a JWT bearer grant" });
    const valid = createVerify("RSA-SHA256").update(`${head}.${claims}`).verify(this.#publicKey, Buffer.from(sig, "base64url"));
    const c = JSON.parse(Buffer.from(claims, "base64url").toString()) as { iss?: string; aud?: string; exp?: number; scope?: string };
    const now = Date.now() / 1000;
    if (!valid || c.iss !== SERVICE_EMAIL || c.aud !== `${this.origin}/token` || !(c.exp! > now) || !/devstorage/.test(c.scope ?? ""))
      return json(400, { error: "invalid_grant", error_description: "Invalid JWT Signature." });
    const token = `ya29.${randomBytes(16).toString("hex")}`;
    this.#tokens.add(token);
    this.stats.tokens++;
    return json(200, { access_token: token, expires_in: 3599, token_type: "Bearer" });
  }

  #metadata(name: string, o: StoredObject) {
    return { kind: "storage#object", name, size: String(o.data.byteLength), updated: o.updated, generation: String(o.generation), md5Hash: createHash("md5").update(o.data).digest("base64") };
  }

  #media(req: Request, o: StoredObject): Response {
    const headers: Record<string, string> = { "x-goog-generation": String(o.generation), etag: `"${o.generation}"`, "content-type": "application/octet-stream" };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("range") ?? "");
    if (!range) return new Response(o.data, { status: 200, headers });
    const start = Number(range[1]);
    const end = range[2] ? Math.min(Number(range[2]), o.data.byteLength - 1) : o.data.byteLength - 1;
    if (start >= o.data.byteLength) return new Response(null, { status: 416, headers: { ...headers, "content-range": `bytes */${o.data.byteLength}` } });
    return new Response(o.data.slice(start, end + 1), { status: 206, headers: { ...headers, "content-range": `bytes ${start}-${end}/${o.data.byteLength}` } });
  }

  #list(bucket: Map<string, StoredObject>, q: URLSearchParams): Response {
    const prefix = q.get("prefix") ?? "";
    const delimiter = q.get("delimiter");
    const max = Math.min(Number(q.get("maxResults") ?? 1000), 1000);
    const after = q.has("pageToken") ? Buffer.from(q.get("pageToken")!, "base64url").toString() : undefined;
    // Objects and prefixes in one name order, as GCS pages them.
    const entries = new Map<string, { prefix?: string; name?: string }>();
    for (const n of [...bucket.keys()].sort()) {
      if (!n.startsWith(prefix)) continue;
      const cut = delimiter ? n.indexOf(delimiter, prefix.length) : -1;
      if (cut >= 0) entries.set(n.slice(0, cut + 1), { prefix: n.slice(0, cut + 1) });
      else entries.set(n, { name: n });
    }
    const page = [...entries.entries()].filter(([k]) => after === undefined || k > after).slice(0, max + 1);
    const more = page.length > max;
    const shown = page.slice(0, max);
    const items = shown.filter(([, e]) => e.name !== undefined).map(([, e]) => this.#metadata(e.name!, bucket.get(e.name!)!));
    const prefixes = shown.filter(([, e]) => e.prefix !== undefined).map(([, e]) => e.prefix!);
    const body: Record<string, unknown> = { kind: "storage#objects" };
    if (items.length) body.items = items;
    if (prefixes.length) body.prefixes = prefixes;
    if (more) body.nextPageToken = Buffer.from(shown[shown.length - 1]![0]).toString("base64url");
    return json(200, body);
  }

  #store(bucket: Map<string, StoredObject>, name: string, data: Uint8Array): Response {
    const o = { data, generation: this.#generation++, updated: new Date().toISOString() };
    bucket.set(name, o);
    return json(200, this.#metadata(name, o));
  }

  async #upload(req: Request, bucketName: string, bucket: Map<string, StoredObject>, q: URLSearchParams): Promise<Response> {
    const type = q.get("uploadType");
    const name = q.get("name");
    if (req.method === "POST" && type === "media" && name) {
      this.stats.mediaUploads++;
      return this.#store(bucket, name, new Uint8Array(await req.arrayBuffer()));
    }
    if (req.method === "POST" && type === "resumable" && name) {
      const id = randomBytes(12).toString("hex");
      this.#uploads.set(id, { bucket: bucketName, name, parts: [], received: 0 });
      return new Response(null, { status: 200, headers: { "x-guploader-uploadid": id, location: `${this.origin}/upload/storage/v1/b/${bucketName}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}` } });
    }
    const id = q.get("upload_id") ?? "";
    const up = this.#uploads.get(id);
    if (!up || up.bucket !== bucketName) return gcsError(404, "No such upload session");
    if (req.method === "DELETE") {
      this.#uploads.delete(id);
      return new Response(null, { status: 499 });
    }
    if (req.method !== "PUT") return gcsError(405, "method not allowed");
    const cr = /^bytes (?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(req.headers.get("content-range") ?? "");
    if (!cr) return gcsError(400, "bad Content-Range");
    const data = new Uint8Array(await req.arrayBuffer());
    if (cr[1] !== undefined) {
      const start = Number(cr[1]);
      if (Number(cr[2]) - start + 1 !== data.byteLength) return gcsError(400, "Content-Range does not match the body");
      // A chunk sent again after a lost answer: keep what is new of it.
      if (start > up.received) return gcsError(400, `chunk starts at ${start}, expected ${up.received}`);
      const fresh = data.subarray(up.received - start);
      if (fresh.byteLength) up.parts.push(fresh.slice());
      up.received += fresh.byteLength;
      this.stats.resumableChunks++;
    }
    if (cr[3] === "*") {
      if (up.received % (256 * 1024) !== 0) return gcsError(400, "a chunk that is not the last must be a multiple of 256 KiB");
      return new Response(null, { status: 308, headers: up.received ? { range: `bytes=0-${up.received - 1}` } : {} });
    }
    if (Number(cr[3]) !== up.received) return gcsError(400, `total ${cr[3]} but ${up.received} bytes received`);
    this.#uploads.delete(id);
    return this.#store(bucket, up.name, concatBytes(up.parts));
  }
}

/**
 * The server in a process of its own, for tests that run pgbunker or pgBackRest synchronously
 * (a server in the test's own process could not answer while the test waits for them). The
 * child prints its endpoint as one JSON line; buckets are made through the JSON API.
 */
export class GcsServerProcess implements GcsEndpoint {
  readonly host = "127.0.0.1";
  readonly port: number;
  readonly dir: string;
  readonly caFile: string;
  readonly keyFile: string;
  readonly staticToken: string;
  readonly tlsKeyFile: string;
  readonly tlsCertFile: string;
  readonly upstreamPort: number;
  readonly upstreamTls = true;
  readonly #proc: ReturnType<typeof Bun.spawn>;

  private constructor(proc: ReturnType<typeof Bun.spawn>, ep: GcsEndpoint) {
    this.#proc = proc;
    this.port = ep.port;
    this.dir = ep.dir;
    this.caFile = ep.caFile;
    this.keyFile = ep.keyFile;
    this.staticToken = ep.staticToken;
    this.tlsKeyFile = ep.tlsKeyFile;
    this.tlsCertFile = ep.tlsCertFile;
    this.upstreamPort = ep.port;
  }

  static async start(): Promise<GcsServerProcess> {
    const proc = Bun.spawn([process.execPath, import.meta.path], { stdout: "pipe", stderr: "inherit" });
    const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
    let line = "";
    while (!line.includes("\n")) {
      const r = await reader.read();
      if (r.done) throw new Error(`the GCS server process exited before it was ready (exit ${await proc.exited})`);
      line += new TextDecoder().decode(r.value);
    }
    reader.releaseLock();
    return new GcsServerProcess(proc, JSON.parse(line) as GcsEndpoint);
  }

  async createBucket(bucket: string): Promise<void> {
    const res = await fetch(`https://${this.host}:${this.port}/storage/v1/b`, { method: "POST", headers: { authorization: `Bearer ${this.staticToken}`, "content-type": "application/json" }, body: JSON.stringify({ name: bucket }), tls: { ca: await Bun.file(this.caFile).text() } } as RequestInit);
    if (res.status !== 200 && res.status !== 409) throw new Error(`bucket insert of '${bucket}' failed: HTTP ${res.status} ${await res.text()}`);
  }

  client(bucket: string): GcsHttp {
    return new GcsHttp(gcsSettings(this, bucket));
  }

  async stop(): Promise<void> {
    await stopChild(this.#proc, "SIGTERM");
  }
}

if (import.meta.main) {
  const server = GcsServer.start();
  const ep: GcsEndpoint = { host: server.host, port: server.port, dir: server.dir, caFile: server.caFile, keyFile: server.keyFile, staticToken: server.staticToken, tlsKeyFile: server.tlsKeyFile, tlsCertFile: server.tlsCertFile, upstreamPort: server.port, upstreamTls: true };
  process.stdout.write(`${JSON.stringify(ep)}\n`);
  process.on("SIGTERM", () => {
    server.stop();
    process.exit(0);
  });
}
