/**
 * What every chunked object-store driver (Azure, GCS; S3 for the faults) must do beyond the storage conformance
 * suite, on its real engine: listing across small pages, staged uploads holding a bounded pool of
 * chunks and invisible until committed, aborted uploads leaving nothing, and transient faults injected by the
 * fault proxy (503 throttling, a reset mid-download, a silent peer) retried or resumed with the
 * bytes identical, and given up on clearly when they do not clear.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { logSetForwarder } from "../../src/common/log.ts";
import type { ChunkedWrite } from "../../src/storage/object/chunked-write.ts";
import type { Storage } from "../../src/storage/storage.ts";
import { failure } from "../harness/failure.ts";
import { FaultProxy, type ProxyTarget } from "../harness/fault-proxy.ts";
import { testBytes } from "./storage.ts";

export interface FreshStore {
  storage: Storage;
  /** How messages name the bucket or container: "container 'x'". */
  place: string;
}

export interface ObjectStoreTarget {
  /** "Azure", "GCS": starts the retry log lines. */
  service: string;
  /** The upload chunk size the stores are made with (a write of more is staged in chunks). */
  chunk: number;
  engine: ProxyTarget;
  /** A fresh, empty bucket or container rooted at `base`; through the proxy's port when given, with quick retries. */
  fresh(opts: { pageSize?: number; proxyPort?: number; base?: string }): Promise<FreshStore>;
}

const sha1 = (d: Uint8Array) => new Bun.CryptoHasher("sha1").update(d).digest("hex");

export function objectStoreBehaviour(name: string, target: () => ObjectStoreTarget): void {
  describe(`object store: ${name}`, () => {
    test("listing follows continuation across 7-entry pages, files and prefixes; pathRemove deletes them all", async () => {
      const { storage: s } = await target().fresh({ pageSize: 7 });
      const names = Array.from({ length: 60 }, (_, i) => `f${String(i).padStart(3, "0")}`);
      await Promise.all(names.map((n) => s.put(`many/${n}`, n)));
      await s.put("many/sub/x", "x");
      expect(await s.names("many")).toEqual([...names, "sub"].sort());
      await s.pathRemove("many", { recurse: true });
      expect(await s.names("many")).toEqual([]);
      expect(await s.exists("many")).toBe(false);
    }, 60_000);

    test("a file larger than the chunk size is staged from a pool of partsInFlight + 1 chunk buffers, invisible until close; bytes identical", async () => {
      const { chunk } = target();
      const { storage: s } = await target().fresh({});
      const data = testBytes(3 * chunk + 12345, 9);
      const w = (await s.openWrite("big/file")) as ChunkedWrite;
      for (let pos = 0; pos < data.byteLength; pos += 64 * 1024) await w.write(data.subarray(pos, pos + 64 * 1024));
      expect(await s.exists("big/file")).toBe(false);
      await w.close();
      // One chunk filling, the others uploading; the buffers are reused chunk after chunk (4 chunks here).
      expect(w.peakBuffered).toBeLessThanOrEqual((w.maxPartsInFlight + 1) * chunk + 64 * 1024);
      expect(w.peakBuffers).toBeLessThanOrEqual(w.maxPartsInFlight + 1);
      expect(w.peakParts).toBeLessThanOrEqual(w.maxPartsInFlight);
      expect(sha1((await s.get("big/file"))!)).toBe(sha1(data));
      expect((await s.info("big/file"))!.size).toBe(data.byteLength);
    }, 60_000);

    test("an aborted or mismatched staged write leaves no object", async () => {
      const { chunk } = target();
      const { storage: s } = await target().fresh({});
      const w = await s.openWrite("part/aborted");
      await w.write(testBytes(2 * chunk + 100, 1));
      await w.abort();
      const e = await failure(s.put("part/mismatch", testBytes(2 * chunk + 100, 2), { filters: [{ type: "sha1" }], expect: { sha1: "0".repeat(40) } }));
      expect(e.kind).toBe("ChecksumError");
      expect(await s.names("part")).toEqual([]);
    }, 60_000);

    objectStoreFaults(name, target);
  });
}

/** The fault cases alone (S3 runs its own multipart cases in s3-storage.test.ts, and only these here). */
export function objectStoreFaults(name: string, target: () => ObjectStoreTarget): void {
  describe(`transient faults through the fault proxy: ${name}`, () => {
    let proxy: FaultProxy;
    let s: Storage;
    let place: string;
    const logged: string[] = [];
    beforeAll(async () => {
      proxy = FaultProxy.start(target().engine);
      ({ storage: s, place } = await target().fresh({ proxyPort: proxy.port, base: "/faults" }));
      logSetForwarder((level, message) => logged.push(`${level}: ${message}`));
    });
    afterEach(() => {
      logged.length = 0;
    });
    afterAll(() => {
      logSetForwarder(undefined);
      proxy?.stop();
    });

    test("503 twice: the upload is retried with backoff, logged, and lands whole", async () => {
      const data = testBytes(100_000, 1);
      proxy.failNext(2);
      await s.put("throttled", data);
      expect(proxy.served.failed).toBe(2);
      expect(logged.filter((l) => l.startsWith(`warn: ${target().service} `) && l.includes(`in ${place}: HTTP 503`))).toHaveLength(2);
      expect(sha1((await s.get("throttled"))!)).toBe(sha1(data));
    });

    test("a staged write survives a 503 between chunks", async () => {
      const { chunk } = target();
      const data = testBytes(3 * chunk, 4);
      const w = await s.openWrite("staged");
      await w.write(data.subarray(0, chunk + 1));
      proxy.failNext(1);
      await w.write(data.subarray(chunk + 1));
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
      expect(logged.some((l) => l.startsWith(`warn: ${target().service} GET 'faults/big' in ${place}: body interrupted at byte`) && l.includes("resume 1 of 3"))).toBe(true);
    });

    test("a silent peer times out after io-timeout and the request is sent again", async () => {
      await s.put("quiet", "after the stall");
      proxy.stallNext(1);
      expect(new TextDecoder().decode((await s.get("quiet"))!)).toBe("after the stall");
      expect(proxy.served.stalled).toBe(1);
      expect(logged.some((l) => l.includes("no response within 2s"))).toBe(true);
    });

    test("throttling that does not clear gives up after the retries, naming the place and object; nothing is stored", async () => {
      proxy.failNext(100);
      const e = await failure(s.put("never", "x"));
      proxy.failNext(0);
      expect(e.kind).toBe("ProtocolError");
      expect(e.message).toContain(`'faults/never' in ${place}: HTTP 503`);
      expect(e.message).toContain("gave up after 4 attempts");
      expect(await s.exists("never")).toBe(false);
    });
  });
}
