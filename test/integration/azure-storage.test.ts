/**
 * The Azure Blob driver against a real engine (Azurite over TLS, test/harness/azurite.ts): the
 * shared storage conformance suite, the object-store suite (continuation markers, staged blocks
 * with bounded memory, aborted writes leaving no blob, transient faults through the fault proxy),
 * then Azure's own: the block list, shared access signatures, permanent errors, TLS.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { AZURE_VERSION, AzureHttp } from "../../src/storage/azure/client.ts";
import { AzureDriver } from "../../src/storage/azure/driver.ts";
import { Storage } from "../../src/storage/storage.ts";
import { objectStoreBehaviour } from "../conformance/object-store.ts";
import { storageConformance, testBytes } from "../conformance/storage.ts";
import { Azurite } from "../harness/azurite.ts";
import { failure } from "../harness/failure.ts";

const CHUNK = 256 * 1024;
let az: Azurite;
let containers = 0;

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

objectStoreBehaviour("azure (Azurite, TLS)", () => ({
  service: "Azure",
  chunk: CHUNK,
  engine: az,
  fresh: async ({ pageSize, proxyPort, base }) => {
    const f = await fresh({ pageSize });
    const fast = proxyPort === undefined ? {} : { port: proxyPort, ioTimeoutMs: 2000, retry: { retries: 3, baseDelayMs: 20, maxDelayMs: 100 }, label: "repo1" };
    const client = new AzureHttp({ ...f.client.settings, ...fast });
    return { storage: new Storage(new AzureDriver(client, { chunkSize: CHUNK, listPageSize: pageSize }), base ?? "/repo/prefix"), place: `container '${f.container}'` };
  },
}));

describe("azure driver", () => {
  test("a large file's blocks are committed by one block list", async () => {
    const { storage: s, client } = await fresh();
    await s.put("big/file", testBytes(3 * CHUNK + 12345, 9));
    const list = await client.requestText({ method: "GET", blob: "repo/prefix/big/file", query: { comp: "blocklist", blocklisttype: "committed" } });
    expect(list.text.match(/<Block>/g)).toHaveLength(4);
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

  test("host-style URIs (ACCOUNT.endpoint) through repo-storage-host reach the same container as path style", async () => {
    const { storage: s, client } = await fresh();
    const hostStyle = new AzureHttp({ ...client.settings, uriStyle: "host", endpoint: "localhost", connectHost: "127.0.0.1" });
    await new Storage(new AzureDriver(hostStyle), "/repo/prefix").put("via-host-style", "hello");
    expect(new TextDecoder().decode((await s.get("via-host-style"))!)).toBe("hello");
  }, 60_000);

  test("TLS: without the CA the endpoint is refused with a hint; verify-tls=n accepts it", async () => {
    const { client } = await fresh();
    const e = await failure(new Storage(new AzureDriver(new AzureHttp({ ...client.settings, caFile: undefined, label: "repo1" })), "/p").put("f", "x"));
    expect(e.kind).toBe("HostConnectError");
    expect(e.hints.join(" ")).toContain("repo1-storage-ca-file");
    await new Storage(new AzureDriver(new AzureHttp({ ...client.settings, caFile: undefined, verifyTls: false })), "/p").put("f", "x");
  }, 60_000);
});
