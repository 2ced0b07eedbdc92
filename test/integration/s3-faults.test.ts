/**
 * Transient S3 failures, injected by a real TCP/TLS proxy between the driver and Ceph RGW
 * (test/harness/fault-proxy.ts), through the object-store fault cases every driver runs
 * (test/conformance/object-store.ts): throttling (503 SlowDown), a connection reset mid-body and a
 * silent peer are retried or resumed with backoff and logged, and the bytes come out identical;
 * failures that do not clear give up with an error naming the bucket and key.
 */
import { afterAll, beforeAll } from "bun:test";
import { S3Http } from "../../src/storage/s3/client.ts";
import { S3Driver } from "../../src/storage/s3/driver.ts";
import { Storage } from "../../src/storage/storage.ts";
import { objectStoreFaults } from "../conformance/object-store.ts";
import { Rgw } from "../harness/rgw.ts";

const BUCKET = "pgbunker-faults";
const CHUNK = 5 * 1024 * 1024; // RGW's smallest multipart part
let rgw: Rgw;

beforeAll(async () => {
  rgw = await Rgw.start();
  await rgw.createBucket(BUCKET);
}, 120_000);

afterAll(async () => {
  await rgw?.stop();
});

objectStoreFaults("s3 (Ceph RGW, TLS)", () => ({
  service: "S3",
  chunk: CHUNK,
  engine: rgw,
  fresh: async ({ proxyPort, base }) => {
    // Through the proxy, with short delays and a short stall limit so the test stays quick.
    const client = new S3Http({ ...rgw.client(BUCKET).settings, ...(proxyPort === undefined ? {} : { port: proxyPort }), ioTimeoutMs: 2000, retry: { retries: 3, baseDelayMs: 20, maxDelayMs: 100 }, label: "repo1" });
    return { storage: new Storage(new S3Driver(client, { chunkSize: CHUNK }), base ?? "/faults"), place: `bucket '${BUCKET}'` };
  },
}));
