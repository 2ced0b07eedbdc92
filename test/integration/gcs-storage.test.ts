/**
 * The GCS driver against the harness's GCS JSON-API server (test/harness/gcs-server.ts: there is
 * no real GCS engine on these machines, so this is the only GCS it is tested against): the shared
 * storage conformance and object-store suites (page tokens, resumable uploads with bounded memory,
 * aborts, transient faults through the fault proxy), then GCS's own: the service key → signed JWT
 * → token exchange, key-type token, resumable chunks, permanent errors, TLS.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateKeyPairSync } from "node:crypto";
import { GcsHttp } from "../../src/storage/gcs/client.ts";
import { GcsDriver } from "../../src/storage/gcs/driver.ts";
import { Storage } from "../../src/storage/storage.ts";
import { objectStoreBehaviour } from "../conformance/object-store.ts";
import { storageConformance, testBytes } from "../conformance/storage.ts";
import { failure } from "../harness/failure.ts";
import { GcsServer } from "../harness/gcs-server.ts";

const CHUNK = 256 * 1024;
let gcs: GcsServer;
let buckets = 0;

beforeAll(() => {
  gcs = GcsServer.start();
});
afterAll(() => {
  gcs?.stop();
});

function fresh(opts: { pageSize?: number } = {}): { storage: Storage; client: GcsHttp; bucket: string } {
  const bucket = `pgbunker-test-${++buckets}`;
  gcs.createBucket(bucket);
  const client = gcs.client(bucket);
  return { storage: new Storage(new GcsDriver(client, { chunkSize: CHUNK, listPageSize: opts.pageSize }), "/repo/prefix", { role: "repository" }), client, bucket };
}

storageConformance("gcs (harness JSON-API server, TLS)", async () => ({ storage: fresh().storage, cleanup: async () => {} }));

objectStoreBehaviour("gcs (harness JSON-API server, TLS)", () => ({
  service: "GCS",
  chunk: CHUNK,
  engine: gcs,
  fresh: async ({ pageSize, proxyPort, base }) => {
    const f = fresh({ pageSize });
    const fast = proxyPort === undefined ? {} : { endpoint: `${gcs.host}:${proxyPort}`, ioTimeoutMs: 2000, retry: { retries: 3, baseDelayMs: 20, maxDelayMs: 100 }, label: "repo1" };
    const client = new GcsHttp({ ...f.client.settings, ...fast });
    return { storage: new Storage(new GcsDriver(client, { chunkSize: CHUNK, listPageSize: pageSize }), base ?? "/repo/prefix"), place: `bucket '${f.bucket}'` };
  },
}));

describe("gcs driver", () => {
  test("a service key is exchanged for a token once (a signed JWT the server verifies) and the token reused", async () => {
    const { storage: s } = fresh();
    const before = gcs.stats.tokens;
    await s.put("a", "1");
    await s.put("b", "2");
    expect(await s.names("")).toEqual(["a", "b"]);
    expect(gcs.stats.tokens - before).toBe(1);
  });

  test("a large file is a resumable upload of 256KiB chunks, the last naming the size; an abort cancels the session", async () => {
    const { storage: s } = fresh();
    const before = gcs.stats.resumableChunks;
    await s.put("big", testBytes(3 * CHUNK + 5, 3));
    expect(gcs.stats.resumableChunks - before).toBe(4);
    const w = await s.openWrite("aborted");
    await w.write(testBytes(2 * CHUNK + 1, 4));
    expect(gcs.pendingUploads).toBe(1);
    await w.abort();
    expect(gcs.pendingUploads).toBe(0);
  });

  test("repo-gcs-key-type=token: the key is the bearer token", async () => {
    const { client } = fresh();
    const s = new Storage(new GcsDriver(new GcsHttp({ ...client.settings, keyType: "token", key: gcs.staticToken })), "/p");
    await s.put("t", "by token");
    expect(new TextDecoder().decode((await s.get("t"))!)).toBe("by token");
  });

  test("repo-gcs-key-type=auto: the token comes from the metadata server (GCE_METADATA_HOST), asked with Metadata-Flavor", async () => {
    const { client } = fresh();
    const asked: string[] = [];
    const metadata = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req) => {
        asked.push(`${new URL(req.url).pathname} ${req.headers.get("metadata-flavor")}`);
        return Response.json({ access_token: gcs.staticToken, expires_in: 3599, token_type: "Bearer" });
      },
    });
    const saved = process.env.GCE_METADATA_HOST;
    process.env.GCE_METADATA_HOST = `127.0.0.1:${metadata.port}`;
    try {
      const s = new Storage(new GcsDriver(new GcsHttp({ ...client.settings, keyType: "auto", key: undefined })), "/p");
      await s.put("auto", "by the instance's account");
      expect(new TextDecoder().decode((await s.get("auto"))!)).toBe("by the instance's account");
      expect(asked).toEqual(["/computeMetadata/v1/instance/service-accounts/default/token Google"]);
    } finally {
      if (saved === undefined) delete process.env.GCE_METADATA_HOST;
      else process.env.GCE_METADATA_HOST = saved;
      metadata.stop(true);
    }
  });

  test("permanent errors fail at once: a wrong token (401), a key the server does not know, a missing bucket", async () => {
    const { client, bucket } = fresh();
    const started = Date.now();
    const denied = await failure(new Storage(new GcsDriver(new GcsHttp({ ...client.settings, keyType: "token", key: "wrong", label: "repo1" })), "/p").get("x"));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(denied.kind).toBe("AccessError");
    expect(denied.message).toContain(`GET 'p/x' in bucket '${bucket}' failed: HTTP 401 (Invalid Credentials)`);
    expect(denied.hints.join(" ")).toContain("repo1-gcs-key");
    // A key file of another account, signed with another key: the token endpoint refuses it.
    const other = JSON.parse(await Bun.file(gcs.keyFile).text()) as Record<string, string>;
    other.private_key = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const otherFile = join(gcs.dir, "other-key.json");
    writeFileSync(otherFile, JSON.stringify(other));
    const refused = await failure(new Storage(new GcsDriver(new GcsHttp({ ...client.settings, key: otherFile, label: "repo1" })), "/p").get("x"));
    expect(refused.kind).toBe("AccessError");
    expect(refused.message).toContain("token request for 'pgbunker-test@");
    expect(refused.message).toContain("HTTP 400 (invalid_grant: Invalid JWT Signature.)");
    const noBucket = await failure(new Storage(new GcsDriver(new GcsHttp({ ...client.settings, bucket: "no-such-bucket", label: "repo1" })), "/p").put("f", "x"));
    expect(noBucket.kind).toBe("PathMissingError");
    expect(noBucket.message).toContain("in bucket 'no-such-bucket' failed: HTTP 404 (The specified bucket does not exist.)");
    expect(noBucket.hints.join(" ")).toContain("repo1-gcs-bucket");
    const noFile = await failure(new Storage(new GcsDriver(new GcsHttp({ ...client.settings, key: "/nonexistent/key.json", label: "repo1" })), "/p").get("x"));
    expect(noFile.kind).toBe("FileOpenError");
    expect(noFile.hints.join(" ")).toContain("repo1-gcs-key");
  });

  test("TLS: without the CA the endpoint is refused with a hint; verify-tls=n accepts it", async () => {
    const { client } = fresh();
    const e = await failure(new Storage(new GcsDriver(new GcsHttp({ ...client.settings, keyType: "token", key: gcs.staticToken, caFile: undefined, label: "repo1" })), "/p").put("f", "x"));
    expect(e.kind).toBe("HostConnectError");
    expect(e.hints.join(" ")).toContain("repo1-storage-ca-file");
    await new Storage(new GcsDriver(new GcsHttp({ ...client.settings, keyType: "token", key: gcs.staticToken, caFile: undefined, verifyTls: false })), "/p").put("f", "x");
  });
});
