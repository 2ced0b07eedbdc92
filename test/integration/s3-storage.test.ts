/**
 * The S3 driver against a real engine (Ceph RGW over TLS, test/harness/rgw.ts): the shared storage
 * conformance suite, then what only an object store has: pagination, multipart uploads with
 * bounded memory, aborted uploads leaving nothing, and permanent errors that fail at once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { S3Http } from "../../src/storage/s3/client.ts";
import { S3Driver } from "../../src/storage/s3/driver.ts";
import { PARTS_IN_FLIGHT, type S3Write } from "../../src/storage/s3/write.ts";
import { Storage } from "../../src/storage/storage.ts";
import { storageConformance, testBytes } from "../conformance/storage.ts";
import { failure } from "../harness/failure.ts";
import { FaultProxy } from "../harness/fault-proxy.ts";
import { Rgw } from "../harness/rgw.ts";

const CHUNK = 5 * 1024 * 1024; // RGW's smallest multipart part, as AWS's
let rgw: Rgw;
let bucketCount = 0;

beforeAll(async () => {
  rgw = await Rgw.start();
}, 120_000);
afterAll(async () => {
  await rgw?.stop();
});

async function freshStorage(opts: { pageSize?: number } = {}): Promise<Storage> {
  const bucket = `pgbunker-test-${++bucketCount}`;
  await rgw.createBucket(bucket);
  return new Storage(new S3Driver(rgw.client(bucket), { chunkSize: CHUNK, listPageSize: opts.pageSize }), "/repo/prefix", { role: "repository" });
}

const sha1 = (d: Uint8Array) => new Bun.CryptoHasher("sha1").update(d).digest("hex");

storageConformance("s3 (Ceph RGW, TLS)", async () => ({ storage: await freshStorage(), cleanup: async () => {} }));

describe("s3 driver: object-store behaviour", () => {
  test("listing pages through more than 1000 keys (and 7-key pages), files and prefixes; pathRemove deletes them all", async () => {
    const s = await freshStorage({ pageSize: 7 });
    const names = Array.from({ length: 1105 }, (_, i) => `f${String(i).padStart(5, "0")}`);
    for (let i = 0; i < names.length; i += 200) await Promise.all(names.slice(i, i + 200).map((n) => s.put(`many/${n}`, n)));
    await s.put("many/sub/x", "x");
    expect(await s.names("many")).toEqual([...names, "sub"].sort());
    // Default page size (1000): the engine's own pagination.
    const s2 = new Storage(new S3Driver((s.driver as S3Driver).client), "/repo/prefix");
    expect((await s2.list("many"))!.length).toBe(1106);
    await s.pathRemove("many", { recurse: true });
    expect(await s.names("many")).toEqual([]);
    expect(await s.exists("many")).toBe(false);
  }, 120_000);

  test("a file larger than the chunk size goes up in parts, holding a bounded number of chunks; bytes identical", async () => {
    const s = await freshStorage();
    const data = testBytes(2 * CHUNK + 1234567, 9);
    const w = (await s.openWrite("big/file")) as S3Write;
    for (let pos = 0; pos < data.byteLength; pos += 1024 * 1024) await w.write(data.subarray(pos, pos + 1024 * 1024));
    await w.close();
    expect(w.peakBuffered).toBeLessThanOrEqual((PARTS_IN_FLIGHT + 1) * CHUNK + 1024 * 1024);
    expect(sha1((await s.get("big/file"))!)).toBe(sha1(data));
    expect((await s.info("big/file"))!.size).toBe(data.byteLength);
    // A multipart object's ETag is "md5-parts": three parts.
    const head = await (s.driver as S3Driver).client.request({ method: "HEAD", key: "repo/prefix/big/file" });
    expect(head.headers.get("etag")).toMatch(/-3"$/);
  }, 120_000);

  test("parts upload while the next ones fill, at most PARTS_IN_FLIGHT at once; a held engine holds the writer back after that", async () => {
    const s = await freshStorage();
    const direct = (s.driver as S3Driver).client;
    const proxy = FaultProxy.start(rgw);
    try {
      const via = new Storage(new S3Driver(new S3Http({ ...direct.settings, port: proxy.port }), { chunkSize: CHUNK }), "/repo/prefix");
      // A byte past whole chunks: a full chunk goes only once a byte after it shows it is not the last.
      const data = testBytes((PARTS_IN_FLIGHT + 2) * CHUNK + 1, 11);
      const w = (await via.openWrite("overlap/file")) as S3Write;
      // A chunk and a byte: the upload starts and part 1 goes; wait until it is stored.
      await w.write(data.subarray(0, CHUNK + 1));
      for (const deadline = Date.now() + 60_000; w.partsInFlight > 0 && Date.now() < deadline; ) await Bun.sleep(10);
      expect(w.partsInFlight).toBe(0);
      // No request reaches the engine until release: every part started now stays in flight, and
      // each write returns at once while a slot is free.
      proxy.hold();
      for (let i = 1; i <= PARTS_IN_FLIGHT; i++) await w.write(data.subarray(i * CHUNK + 1, (i + 1) * CHUNK + 1));
      expect(w.partsInFlight).toBe(PARTS_IN_FLIGHT);
      expect(w.peakParts).toBe(PARTS_IN_FLIGHT);
      // One part more must wait for a free slot: the write does not return while the engine is held.
      let returned = false;
      const next = w.write(data.subarray((PARTS_IN_FLIGHT + 1) * CHUNK + 1)).then(() => {
        returned = true;
      });
      await Bun.sleep(300);
      expect(returned).toBe(false);
      proxy.release();
      await next;
      await w.close();
      expect(w.peakParts).toBe(PARTS_IN_FLIGHT);
      expect(w.peakBuffered).toBeLessThanOrEqual((PARTS_IN_FLIGHT + 1) * CHUNK + 2 * CHUNK);
      // Seven parts through five buffers: PARTS_IN_FLIGHT held by the engine and one filling, then reused.
      expect(w.peakBuffers).toBe(PARTS_IN_FLIGHT + 1);
      expect(sha1((await s.get("overlap/file"))!)).toBe(sha1(data));
      const head = await direct.request({ method: "HEAD", key: "repo/prefix/overlap/file" });
      expect(head.headers.get("etag")).toMatch(new RegExp(`-${PARTS_IN_FLIGHT + 3}"$`));
    } finally {
      proxy.stop();
    }
  }, 120_000);

  test("a file whose size is known goes up as one PUT up to WHOLE_PUT_MAX, even past the chunk size", async () => {
    const s = await freshStorage();
    const data = testBytes(2 * CHUNK + 100, 12);
    await s.put("whole/file", data, { sizeHint: data.byteLength });
    const head = await (s.driver as S3Driver).client.request({ method: "HEAD", key: "repo/prefix/whole/file" });
    // A single PUT's ETag is the MD5 of the bytes, no "-parts" suffix.
    expect(head.headers.get("etag")).toBe(`"${new Bun.CryptoHasher("md5").update(data).digest("hex")}"`);
  }, 60_000);

  test("an aborted or mismatched multipart upload leaves no object and no pending upload", async () => {
    const s = await freshStorage();
    const client = (s.driver as S3Driver).client;
    const w = await s.openWrite("part/aborted");
    await w.write(testBytes(CHUNK + 100, 1));
    const pending = async () => (await client.requestText({ method: "GET", key: "", query: { uploads: "" } })).text.match(/<UploadId>/g)?.length ?? 0;
    expect(await pending()).toBe(1);
    await w.abort();
    expect(await pending()).toBe(0);
    const data = testBytes(CHUNK + 100, 2);
    const e = await failure(s.put("part/mismatch", data, { filters: [{ type: "sha1" }], expect: { sha1: "0".repeat(40) } }));
    expect(e.kind).toBe("ChecksumError");
    expect(await pending()).toBe(0);
    expect(await s.names("part")).toEqual([]);
  }, 120_000);

  test("permanent errors fail at once, naming bucket, key and HTTP status", async () => {
    const s = await freshStorage();
    await s.put("here", "x");
    const wrongKey = new S3Http({ ...(s.driver as S3Driver).client.settings, credentials: { accessKeyId: rgw.accessKey, secretAccessKey: "wrong" }, label: "repo1" });
    const started = Date.now();
    const denied = await failure(new Storage(new S3Driver(wrongKey), "/repo/prefix").get("here"));
    expect(Date.now() - started).toBeLessThan(3000); // no backoff retries
    expect(denied.kind).toBe("AccessError");
    expect(denied.message).toContain("'repo/prefix/here' in bucket 'pgbunker-test-");
    expect(denied.message).toContain("HTTP 403");
    expect(denied.hints.join(" ")).toContain("repo1-s3-key-secret");
    const noBucket = new S3Http({ ...(s.driver as S3Driver).client.settings, bucket: "no-such-bucket-here", label: "repo1" });
    const missing = await failure(new Storage(new S3Driver(noBucket), "/p").put("f", "x"));
    expect(missing.kind).toBe("PathMissingError");
    expect(missing.message).toContain("bucket 'no-such-bucket-here'");
    expect(missing.message).toContain("HTTP 404 (NoSuchBucket");
  }, 60_000);

  test("host-style URIs (bucket.endpoint) through repo-storage-host reach the same bucket as path style", async () => {
    const s = await freshStorage();
    const settings = (s.driver as S3Driver).client.settings;
    // RGW's dns name is localhost: the Host header is BUCKET.localhost, the connection goes to 127.0.0.1.
    const hostStyle = new S3Http({ ...settings, endpoint: "localhost", connectHost: "127.0.0.1", uriStyle: "host" });
    await new Storage(new S3Driver(hostStyle), "/repo/prefix").put("via-host-style", "hello");
    expect(new TextDecoder().decode((await s.get("via-host-style"))!)).toBe("hello");
  }, 60_000);

  test("TLS: an endpoint whose certificate the CA does not sign is refused, with a hint", async () => {
    const s = await freshStorage();
    const noCa = new S3Http({ ...(s.driver as S3Driver).client.settings, caFile: undefined, label: "repo1" });
    const e = await failure(new Storage(new S3Driver(noCa), "/p").put("f", "x"));
    expect(e.kind).toBe("HostConnectError");
    expect(e.hints.join(" ")).toContain("repo1-storage-ca-file");
    const noVerify = new S3Http({ ...(s.driver as S3Driver).client.settings, caFile: undefined, verifyTls: false });
    await new Storage(new S3Driver(noVerify), "/p").put("f", "x");
  }, 60_000);
});
