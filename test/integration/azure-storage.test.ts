/**
 * The Azure Blob driver against a real engine (Azurite over TLS, test/harness/azurite.ts): the
 * shared storage conformance suite, then what only the object store has: listing with
 * continuation markers, staged blocks with bounded memory committed by a block list, aborted
 * writes leaving no blob, shared access signatures, permanent errors that fail at once, and
 * transient faults (503, a reset mid-download, a silent peer) injected by the fault proxy.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { logSetForwarder } from "../../src/common/log.ts";
import { AZURE_VERSION, AzureHttp } from "../../src/storage/azure/client.ts";
import { AzureDriver } from "../../src/storage/azure/driver.ts";
import type { AzureWrite } from "../../src/storage/azure/write.ts";
import { Storage } from "../../src/storage/storage.ts";
import { storageConformance, testBytes } from "../conformance/storage.ts";
import { Azurite } from "../harness/azurite.ts";
import { failure } from "../harness/failure.ts";
import { FaultProxy } from "../harness/fault-proxy.ts";

const CHUNK = 256 * 1024;
let az: Azurite;
let containers = 0;
const sha1 = (d: Uint8Array) => new Bun.CryptoHasher("sha1").update(d).digest("hex");

beforeAll(async () => {
  az = await Azurite.start();
}, 120_000);
afterAll(async () => {
  await az?.stop();
});

async function fresh(opts: { pageSize?: number } = {}): Promise<{ storage: Storage; client: AzureHttp; container: string }> {
  const container = `pgbunker-test-${++containers}`;
  await az.createContainer(container);
  const client = az.client(container);
  return { storage: new Storage(new AzureDriver(client, { chunkSize: CHUNK, listPageSize: opts.pageSize }), "/repo/prefix", { role: "repository" }), client, container };
}

storageConformance("azure (Azurite, TLS)", async () => ({ storage: (await fresh()).storage, cleanup: async () => {} }));

/** An account SAS (Microsoft's documented string to sign for version 2020-12-06 and later). */
function accountSas(permissions: string): string {
  const expiry = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, "Z");
  const p = { sv: AZURE_VERSION, ss: "b", srt: "sco", sp: permissions, se: expiry, spr: "https" };
  const toSign = [az.account, p.sp, p.ss, p.srt, "", p.se, "", p.spr, p.sv, "", ""].join("\n");
  const sig = createHmac("sha256", Buffer.from(az.key, "base64")).update(toSign, "utf8").digest("base64");
  return new URLSearchParams({ ...p, sig }).toString();
}

describe("azure driver: object-store behaviour", () => {
  test("listing follows continuation markers (7-blob pages), files and prefixes; pathRemove deletes them all", async () => {
    const { storage: s } = await fresh({ pageSize: 7 });
    const names = Array.from({ length: 60 }, (_, i) => `f${String(i).padStart(3, "0")}`);
    await Promise.all(names.map((n) => s.put(`many/${n}`, n)));
    await s.put("many/sub/x", "x");
    expect(await s.names("many")).toEqual([...names, "sub"].sort());
    await s.pathRemove("many", { recurse: true });
    expect(await s.names("many")).toEqual([]);
    expect(await s.exists("many")).toBe(false);
  }, 60_000);

  test("a file larger than the block size is staged in blocks holding about one block, committed by a block list; bytes identical", async () => {
    const { storage: s, client } = await fresh();
    const data = testBytes(3 * CHUNK + 12345, 9);
    const w = (await s.openWrite("big/file")) as AzureWrite;
    for (let pos = 0; pos < data.byteLength; pos += 64 * 1024) await w.write(data.subarray(pos, pos + 64 * 1024));
    // Staged but not committed: the blob does not exist yet.
    expect(await s.exists("big/file")).toBe(false);
    await w.close();
    expect(w.peakBuffered).toBeLessThanOrEqual(CHUNK + 64 * 1024);
    expect(sha1((await s.get("big/file"))!)).toBe(sha1(data));
    expect((await s.info("big/file"))!.size).toBe(data.byteLength);
    const list = await client.requestText({ method: "GET", blob: "repo/prefix/big/file", query: { comp: "blocklist", blocklisttype: "committed" } });
    expect(list.text.match(/<Block>/g)).toHaveLength(4);
  }, 60_000);

  test("an aborted or mismatched staged write leaves no blob", async () => {
    const { storage: s } = await fresh();
    const w = await s.openWrite("part/aborted");
    await w.write(testBytes(2 * CHUNK + 100, 1));
    await w.abort();
    const e = await failure(s.put("part/mismatch", testBytes(2 * CHUNK + 100, 2), { filters: [{ type: "sha1" }], expect: { sha1: "0".repeat(40) } }));
    expect(e.kind).toBe("ChecksumError");
    expect(await s.names("part")).toEqual([]);
  }, 60_000);

  test("a shared access signature (repo-azure-key-type=sas) reads and writes; a read-only one cannot write", async () => {
    const { storage: s, client } = await fresh();
    await s.put("by-key", "written with the shared key");
    const sas = new Storage(new AzureDriver(new AzureHttp({ ...client.settings, keyType: "sas", key: accountSas("rwdlac") })), "/repo/prefix");
    expect(new TextDecoder().decode((await sas.get("by-key"))!)).toBe("written with the shared key");
    await sas.put("by-sas", "written with a SAS");
    expect(await s.names("")).toEqual(["by-key", "by-sas"]);
    const readOnly = new Storage(new AzureDriver(new AzureHttp({ ...client.settings, keyType: "sas", key: accountSas("rl"), label: "repo1" })), "/repo/prefix");
    const e = await failure(readOnly.put("denied", "x"));
    expect(e.kind).toBe("AccessError");
    expect(e.message).toContain("HTTP 403");
  }, 60_000);

  test("permanent errors fail at once: a wrong key (403) and a missing container name the container, blob and option", async () => {
    const { storage: s, client, container } = await fresh();
    await s.put("here", "x");
    const wrong = new AzureHttp({ ...client.settings, key: Buffer.from("not the key").toString("base64"), label: "repo1" });
    const started = Date.now();
    const denied = await failure(new Storage(new AzureDriver(wrong), "/repo/prefix").get("here"));
    expect(Date.now() - started).toBeLessThan(3000); // no backoff retries
    expect(denied.kind).toBe("AccessError");
    expect(denied.message).toContain(`GET 'repo/prefix/here' in container '${container}' failed: HTTP 403`);
    expect(denied.hints.join(" ")).toContain("repo1-azure-key");
    const noContainer = new AzureHttp({ ...client.settings, container: "no-such-container", label: "repo1" });
    const missing = await failure(new Storage(new AzureDriver(noContainer), "/p").put("f", "x"));
    expect(missing.kind).toBe("PathMissingError");
    expect(missing.message).toContain("in container 'no-such-container' failed: HTTP 404 (ContainerNotFound");
    expect(missing.hints.join(" ")).toContain("repo1-azure-container");
  }, 60_000);

  test("TLS: without the CA the endpoint is refused with a hint; verify-tls=n accepts it", async () => {
    const { client } = await fresh();
    const e = await failure(new Storage(new AzureDriver(new AzureHttp({ ...client.settings, caFile: undefined, label: "repo1" })), "/p").put("f", "x"));
    expect(e.kind).toBe("HostConnectError");
    expect(e.hints.join(" ")).toContain("repo1-storage-ca-file");
    await new Storage(new AzureDriver(new AzureHttp({ ...client.settings, caFile: undefined, verifyTls: false })), "/p").put("f", "x");
  }, 60_000);
});

describe("azure driver: transient faults through the fault proxy", () => {
  let proxy: FaultProxy;
  let s: Storage;
  let container: string;
  const logged: string[] = [];
  beforeAll(async () => {
    const f = await fresh();
    container = f.container;
    proxy = FaultProxy.start(az);
    const client = new AzureHttp({ ...f.client.settings, port: proxy.port, ioTimeoutMs: 2000, retry: { retries: 3, baseDelayMs: 20, maxDelayMs: 100 }, label: "repo1" });
    s = new Storage(new AzureDriver(client, { chunkSize: CHUNK }), "/faults");
    logSetForwarder((level, message) => logged.push(`${level}: ${message}`));
  });
  afterEach(() => {
    logged.length = 0;
  });
  afterAll(() => {
    logSetForwarder(undefined);
    proxy?.stop();
  });

  test("503 twice: the Put Blob is retried with backoff, logged, and lands whole", async () => {
    const data = testBytes(100_000, 1);
    proxy.failNext(2);
    await s.put("throttled", data);
    expect(proxy.served.failed).toBe(2);
    expect(logged.filter((l) => l.startsWith(`warn: Azure PUT 'faults/throttled' in container '${container}': HTTP 503`))).toHaveLength(2);
    expect(sha1((await s.get("throttled"))!)).toBe(sha1(data));
  });

  test("a staged write survives a 503 between blocks", async () => {
    const data = testBytes(3 * CHUNK, 4);
    const w = await s.openWrite("staged");
    await w.write(data.subarray(0, CHUNK + 1));
    proxy.failNext(1);
    await w.write(data.subarray(CHUNK + 1));
    await w.close();
    expect(proxy.served.failed).toBeGreaterThan(0);
    expect(sha1((await s.get("staged"))!)).toBe(sha1(data));
  });

  test("a connection reset mid-download is resumed from the next byte; the bytes are identical", async () => {
    const data = testBytes(3 * 1024 * 1024, 2);
    await s.put("big", data);
    proxy.resetAfter(1024 * 1024);
    const got = (await s.get("big", { bufferSize: 256 * 1024 }))!;
    expect(proxy.served.resets).toBe(1);
    expect(sha1(got)).toBe(sha1(data));
    expect(logged.some((l) => /^warn: Azure GET 'faults\/big' in container '[^']+': body interrupted at byte \d+: .*resume 1 of 3/.test(l))).toBe(true);
  });

  test("a silent peer times out after io-timeout and the request is sent again", async () => {
    await s.put("quiet", "after the stall");
    proxy.stallNext(1);
    expect(new TextDecoder().decode((await s.get("quiet"))!)).toBe("after the stall");
    expect(proxy.served.stalled).toBe(1);
    expect(logged.some((l) => l.includes("no response within 2s"))).toBe(true);
  });

  test("throttling that does not clear gives up after the retries, naming container and blob; nothing is stored", async () => {
    proxy.failNext(100);
    const e = await failure(s.put("never", "x"));
    proxy.failNext(0);
    expect(e.kind).toBe("ProtocolError");
    expect(e.message).toContain(`PUT 'faults/never' in container '${container}': HTTP 503`);
    expect(e.message).toContain("gave up after 4 attempts");
    expect(await s.exists("never")).toBe(false);
  });
});
