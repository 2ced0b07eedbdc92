/**
 * Transient S3 failures, injected by a real TCP/TLS proxy between the driver and Ceph RGW
 * (test/harness/fault-proxy.ts): throttling (503 SlowDown), a connection reset mid-body and a
 * silent peer are retried or resumed with backoff and logged, and the bytes come out identical;
 * failures that do not clear give up with an error naming the bucket and key.
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { logSetForwarder } from "../../src/common/log.ts";
import { S3Http } from "../../src/storage/s3/client.ts";
import { S3Driver } from "../../src/storage/s3/driver.ts";
import { Storage } from "../../src/storage/storage.ts";
import { testBytes } from "../conformance/storage.ts";
import { failure } from "../harness/failure.ts";
import { FaultProxy } from "../harness/fault-proxy.ts";
import { Rgw } from "../harness/rgw.ts";

const BUCKET = "pgbunker-faults";
let rgw: Rgw;
let proxy: FaultProxy;
let storage: Storage;
const logged: string[] = [];
const sha1 = (d: Uint8Array) => new Bun.CryptoHasher("sha1").update(d).digest("hex");

beforeAll(async () => {
  rgw = await Rgw.start();
  await rgw.createBucket(BUCKET);
  proxy = FaultProxy.start(rgw);
  const direct = rgw.client(BUCKET);
  // Through the proxy, with short delays and a short stall limit so the test stays quick.
  const client = new S3Http({ ...direct.settings, port: proxy.port, ioTimeoutMs: 2000, retry: { retries: 3, baseDelayMs: 20, maxDelayMs: 100 }, label: "repo1" });
  storage = new Storage(new S3Driver(client, { chunkSize: 5 * 1024 * 1024 }), "/faults");
  logSetForwarder((level, message) => logged.push(`${level}: ${message}`));
}, 120_000);

afterEach(() => {
  logged.length = 0;
});

afterAll(async () => {
  logSetForwarder(undefined);
  proxy?.stop();
  await rgw?.stop();
});

test("503 SlowDown twice: the PUT is retried with backoff, logged, and lands whole", async () => {
  const data = testBytes(300_000, 1);
  proxy.failNext(2);
  await storage.put("throttled", data);
  expect(proxy.served.failed).toBe(2);
  expect(logged.filter((l) => l.startsWith("warn: S3 PUT 'faults/throttled' in bucket 'pgbunker-faults': HTTP 503 (SlowDown"))).toHaveLength(2);
  expect(sha1((await storage.get("throttled"))!)).toBe(sha1(data));
});

test("a connection reset mid-download is resumed from the next byte; the bytes are identical", async () => {
  const data = testBytes(6 * 1024 * 1024, 2);
  await storage.put("big", data);
  proxy.resetAfter(2 * 1024 * 1024);
  const got = (await storage.get("big", { bufferSize: 256 * 1024 }))!;
  expect(proxy.served.resets).toBe(1);
  expect(sha1(got)).toBe(sha1(data));
  expect(logged.some((l) => /^warn: S3 GET 'faults\/big' in bucket 'pgbunker-faults': body interrupted at byte \d+: .*resume 1 of 3/.test(l))).toBe(true);
});

test("a silent peer times out after io-timeout and the request is sent again", async () => {
  await storage.put("quiet", "after the stall");
  proxy.stallNext(1);
  expect(new TextDecoder().decode((await storage.get("quiet"))!)).toBe("after the stall");
  expect(proxy.served.stalled).toBe(1);
  expect(logged.some((l) => l.includes("no response within 2s"))).toBe(true);
});

test("throttling that does not clear gives up after the retries, naming bucket and key; nothing is stored", async () => {
  proxy.failNext(100);
  const e = await failure(storage.put("never", "x"));
  proxy.failNext(0);
  expect(e.kind).toBe("ProtocolError");
  expect(e.message).toContain("PUT 'faults/never' in bucket 'pgbunker-faults': HTTP 503");
  expect(e.message).toContain("gave up after 4 attempts");
  expect(await storage.exists("never")).toBe(false);
});
