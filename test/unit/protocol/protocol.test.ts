import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { err } from "../../../src/common/error.ts";
import type { Db, Row } from "../../../src/postgres/client.ts";
import { ProtocolClient } from "../../../src/protocol/client.ts";
import { RemoteDb } from "../../../src/postgres/remote-db.ts";
import { encodeCredit, encodeFrame, encodeJson, FrameDecoder, FrameType, type Frame } from "../../../src/protocol/frame.ts";
import { ProtocolServer } from "../../../src/command/remote/server.ts";
import { transportPair, type Transport } from "../../../src/protocol/transport.ts";
import { posix } from "../../../src/storage/posix/posix.ts";
import { VERSION } from "../../../src/version.ts";
import { testBytes } from "../../conformance/storage.ts";
import { pipeRemote } from "./pipe.ts";
import { failure } from "../../harness/failure.ts";
import { scratchDirs } from "../../harness/scratch.ts";

const dir = scratchDirs("pgbunker-proto-");

describe("frames", () => {
  test("encode/decode round trip, whatever the chunking", () => {
    const frames = [
      encodeJson(FrameType.REQUEST, 1, { cmd: "info", path: "/x" }),
      encodeFrame(FrameType.DATA, 2, testBytes(100_000)),
      encodeFrame(FrameType.PING, 0),
      encodeJson(FrameType.RESPONSE, 0xffffffff, [1, 2, 3]),
    ];
    const all = new Uint8Array(frames.reduce((n, f) => n + f.byteLength, 0));
    let pos = 0;
    for (const f of frames) {
      all.set(f, pos);
      pos += f.byteLength;
    }
    for (const step of [1, 3, 9, 4096, all.byteLength]) {
      const d = new FrameDecoder();
      const got: Frame[] = [];
      for (let i = 0; i < all.byteLength; i += step) d.push(all.subarray(i, i + step), (f) => got.push({ ...f, payload: f.payload.slice() }));
      expect(got.map((f) => [f.type, f.id, f.payload.byteLength])).toEqual([
        [FrameType.REQUEST, 1, frames[0]!.byteLength - 9],
        [FrameType.DATA, 2, 100_000],
        [FrameType.PING, 0, 0],
        [FrameType.RESPONSE, 0xffffffff, 7],
      ]);
      expect(Bun.hash(got[1]!.payload)).toBe(Bun.hash(testBytes(100_000)));
      expect(d.buffered).toBe(0);
    }
  });

  test("bytes that are not frames (a shell banner) are refused with what was received", () => {
    const d = new FrameDecoder();
    const e = (() => {
      try {
        d.push(new TextEncoder().encode("Welcome to host db1!\n"), () => {});
      } catch (x) {
        return x as { kind: string; message: string };
      }
    })();
    expect(e?.kind).toBe("ProtocolError");
    expect(e?.message).toContain("'Welcome to host db1!\\n'");
  });
});

describe("session", () => {
  test("a remote of another version is refused with both versions named", async () => {
    const [c, s] = transportPair();
    void new ProtocolServer(s, { driver: posix, open: async () => ({ base: "/" }), timeout: 5, version: "0.0.1" }).serve();
    const e = await failure(ProtocolClient.connect(c, { peer: "host 'db1'", timeout: 5 }));
    expect(e.kind).toBe("ProtocolError");
    expect(e.code).toBe(39);
    expect(e.message).toMatch(/pgbunker remote on host 'db1' is version 0\.0\.1 \(protocol 1\), expected version \d+\.\d+\.\d+/);
    expect(e.hints.join()).toContain("same pgbunker version");
  });

  test("a peer that is not pgbunker, or exits at once, or never answers", async () => {
    const [c1, s1] = transportPair();
    s1.start(() => {}, () => {});
    s1.write([new TextEncoder().encode("bash: line 1: /opt/pgbunker: No such file or directory\n")]);
    const e1 = await failure(ProtocolClient.connect(c1, { peer: "p", timeout: 5 }));
    expect(e1.kind).toBe("ProtocolError");
    expect(e1.message).toContain("No such file or directory");

    const [c2, s2] = transportPair();
    s2.start(() => {}, () => {});
    s2.close();
    const e2 = await failure(ProtocolClient.connect(c2, { peer: "p", timeout: 5, commandHint: "check repo1-host-cmd" }));
    expect(e2.message).toContain("exited before the protocol started");
    expect(e2.hints).toEqual(["check repo1-host-cmd"]);

    const [c3, s3] = transportPair();
    s3.start(() => {}, () => {});
    const t0 = performance.now();
    const e3 = await failure(ProtocolClient.connect(c3, { peer: "p", timeout: 0.2 }));
    expect(e3.kind).toBe("ProtocolTimeoutError");
    expect(e3.code).toBe(66);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  test("a peer that stops answering mid-session: ProtocolTimeoutError, not a hang", async () => {
    const [c, s] = transportPair();
    const decoder = new FrameDecoder();
    let answered = 0;
    s.start((chunk) => decoder.push(chunk, (f) => {
      // Answer the first request, then go silent (no PONG either).
      if (f.type === FrameType.REQUEST && answered++ === 0) s.write([encodeJson(FrameType.RESPONSE, f.id, "ok")]);
    }), () => {});
    s.write([encodeJson(FrameType.GREETING, 0, { name: "pgbunker", version: VERSION, protocol: 1 })]);
    const client = await ProtocolClient.connect(c, { peer: "p", timeout: 0.3 });
    expect(await client.request<string>("x")).toBe("ok");
    const e = await failure(client.request("y"));
    expect(e.kind).toBe("ProtocolTimeoutError");
    expect(client.alive).toBe(false);
    expect((await failure(client.request("z"))).kind).toBe("ProtocolTimeoutError");
  });

  test("an idle session stays up past the timeout (keep-alive), and the server gives up on a silent client", async () => {
    const r = await pipeRemote(dir(), { timeout: 0.3 });
    await Bun.sleep(900);
    expect(r.client.alive).toBe(true);
    expect(await r.storage.exists("")).toBe(true);
    // A client that goes silent (no pings): the server ends the session on its own.
    const [c, s] = transportPair();
    const server = new ProtocolServer(s, { driver: posix, open: async () => ({ base: "/" }), timeout: 0.2 });
    c.start(() => {}, () => {});
    const result = await server.serve();
    expect(result.clean).toBe(false);
    expect(result.error?.kind).toBe("ProtocolTimeoutError");
    await r.client.close();
    expect((await r.served).clean).toBe(true);
  });

  test("errors raised on the remote keep their kind, code and hints", async () => {
    const r = await pipeRemote(dir());
    const e = await failure(r.storage.get("missing/file"));
    expect(e.kind).toBe("FileMissingError");
    expect(e.code).toBe(55);
    expect(e.message).toMatch(/^raised from remote on test pipe: unable to open missing file '.*\/missing\/file' for read$/);
    const u = await failure(r.client.request("noSuchRequest"));
    expect(u.kind).toBe("ProtocolError");
    expect(u.hints.join()).toContain("same pgbunker version");
    await r.client.close();
  });

  test("nothing is served before a successful open; a refused open ends the session (what a TLS server relies on)", async () => {
    const [clientEnd, serverEnd] = transportPair();
    const server = new ProtocolServer(serverEnd, {
      driver: posix,
      timeout: 30,
      open: async (p) => {
        if (p.stanza !== "ok") throw err("AccessError", `access denied for stanza '${String(p.stanza)}'`);
        return { base: dir() };
      },
    });
    const served = server.serve();
    const client = await ProtocolClient.connect(clientEnd, { peer: "test pipe", timeout: 30 });
    const early = await failure(client.request("list", { path: "/" }));
    expect([early.kind, early.message]).toEqual(["ProtocolError", "raised from remote on test pipe: request 'list' before the session was opened"]);
    const refused = await failure(client.request("open", { stanza: "intruder" }));
    expect([refused.kind, refused.code]).toEqual(["AccessError", 105]);
    expect((await served).clean).toBe(false);
    await Bun.sleep(0);
    expect(client.alive).toBe(false);
  });
});

describe("streams", () => {
  test("back-pressure: a reader that stops consuming holds the remote to one window", async () => {
    const base = dir();
    const r = await pipeRemote(base);
    await r.storage.put("big", testBytes(40 * 1024 * 1024));
    const sent = () => (r.serverEnd as unknown as { written: number }).written;
    const before = sent();
    const rd = (await r.storage.openRead("big", { bufferSize: 256 * 1024 }))!;
    await rd.read();
    await Bun.sleep(200);
    const inFlight = sent() - before;
    // 4 MiB window + one chunk of overshoot + framing, far below the 40 MiB file.
    expect(inFlight).toBeLessThan(5 * 1024 * 1024);
    expect(inFlight).toBeGreaterThan(3 * 1024 * 1024);
    let total = 256 * 1024;
    for (let c = await rd.read(); c; c = await rd.read()) total += c.byteLength;
    expect(total).toBe(40 * 1024 * 1024);
    await rd.close();
    await r.client.close();
  });

  test("network compression: uncompressed bytes cross lz4-compressed; stored compressed files cross as they are", async () => {
    const base = dir();
    const plain = new Uint8Array(8 * 1024 * 1024).map((_, i) => (i >> 10) & 0xff);
    for (const networkCompress of [false, true]) {
      const r = await pipeRemote(base, { networkCompress });
      const down = () => (r.serverEnd as unknown as { written: number }).written;
      const up = () => (r.clientEnd as unknown as { written: number }).written;
      let before = up();
      await r.storage.put(`plain-${networkCompress}`, plain);
      const sentUp = up() - before;
      before = down();
      const back = (await r.storage.get(`plain-${networkCompress}`, { filters: [{ type: "sha1" }] }))!;
      const sentDown = down() - before;
      expect(Bun.hash(back)).toBe(Bun.hash(plain));
      if (networkCompress) {
        expect(sentUp).toBeLessThan(plain.byteLength / 10);
        expect(sentDown).toBeLessThan(plain.byteLength / 10);
      } else {
        expect(sentUp).toBeGreaterThan(plain.byteLength);
        expect(sentDown).toBeGreaterThan(plain.byteLength);
      }
      // A stored .lz4 file read raw (restore): no second compression on the way (these bytes
      // would shrink by half: they cross whole).
      await r.storage.put(`stored-${networkCompress}.lz4`, testBytes(1024 * 1024));
      before = down();
      await r.storage.get(`stored-${networkCompress}.lz4`);
      expect(down() - before).toBeGreaterThan(1024 * 1024);
      await r.client.close();
    }
  });

  test("a write waits for credit: a remote that stops granting holds the writer to one window", async () => {
    const [c, s] = transportPair();
    const decoder = new FrameDecoder();
    let dataBytes = 0;
    s.start((chunk) => decoder.push(chunk, (f) => {
      if (f.type === FrameType.REQUEST) s.write([encodeJson(FrameType.RESPONSE, f.id, { window: 1024 * 1024 })]);
      if (f.type === FrameType.DATA) dataBytes += f.payload.byteLength;
    }), () => {});
    s.write([encodeJson(FrameType.GREETING, 0, { name: "pgbunker", version: VERSION, protocol: 1 })]);
    const client = await ProtocolClient.connect(c, { peer: "p", timeout: 5 });
    const w = await client.openWriteStream("openWrite", { path: "/x" });
    const chunk = testBytes(256 * 1024);
    for (let i = 0; i < 4; i++) await w.write(chunk);
    const fifth = w.write(chunk).then(() => "written");
    expect(await Promise.race([fifth, Bun.sleep(200).then(() => "waiting")])).toBe("waiting");
    expect(dataBytes).toBe(1024 * 1024);
    // One credit frame releases it.
    s.write([encodeCredit(w.id, 256 * 1024)]);
    expect(await fifth).toBe("written");
    await client.close();
  });

  test("connection lost mid-write: the client gets ProtocolError and the remote removes the temp file", async () => {
    const base = dir();
    const r = await pipeRemote(base);
    const w = await r.storage.openWrite("sub/partial");
    await w.write(testBytes(2 * 1024 * 1024));
    await Bun.sleep(50);
    expect(readdirSync(join(base, "sub"))).toEqual(["partial.pgbunker.tmp"]);
    (r.clientEnd as unknown as { fail(m: string): void }).fail("connection reset by peer");
    const e = await failure((async () => {
      for (;;) await w.write(testBytes(1024 * 1024));
    })());
    expect(e.kind).toBe("ProtocolError");
    expect(e.message).toContain("connection reset by peer");
    const served = await r.served;
    expect(served.clean).toBe(false);
    expect(readdirSync(join(base, "sub"))).toEqual([]);
    expect((await failure(r.storage.info("sub"))).kind).toBe("ProtocolError");
  });

  test("a write that fails on the remote (disk error) reaches the writer, and nothing is left", async () => {
    const base = dir();
    const r = await pipeRemote(base);
    const w = await r.storage.openWrite("f", { filters: [{ type: "decompress", compressType: "lz4" }] });
    const e = await failure((async () => {
      await w.write(new TextEncoder().encode("this is not an lz4 frame"));
      await Bun.sleep(50);
      await w.write(new Uint8Array(10));
      await w.close();
    })());
    expect(e.message).toContain("raised from remote");
    expect(readdirSync(base)).toEqual([]);
    // The session is still usable.
    await r.storage.put("g", "ok");
    expect(await r.storage.names("")).toEqual(["g"]);
    await r.client.close();
  });
});

class FakeDb implements Db {
  static opened = 0;
  static closed = 0;
  readonly description = "fake";
  readonly #id = ++FakeDb.opened;
  inBackup = false;
  async query(sql: string): Promise<Row[]> {
    if (sql === "start") this.inBackup = true;
    if (sql === "stop") {
      if (!this.inBackup) throw err("DbQueryError", "non-exclusive backup is not in progress", "start and stop must use one session");
      this.inBackup = false;
    }
    return [{ session: String(this.#id), sql }];
  }
  async close(): Promise<void> {
    FakeDb.closed++;
  }
}

describe("database sessions", () => {
  test("a session stays open across queries; errors come back; sessions close with the connection", async () => {
    const r = await pipeRemote(dir(), { dbConnect: async () => new FakeDb() });
    const a = await RemoteDb.open(r.client);
    const b = await RemoteDb.open(r.client);
    expect(a.description).toBe("fake on test pipe");
    expect((await a.query("start"))[0]!.session).toBe("1");
    expect((await b.query("x"))[0]!.session).toBe("2");
    expect((await a.query("stop"))[0]).toEqual({ session: "1", sql: "stop" });
    const e = await failure(b.query("stop"));
    expect(e.kind).toBe("DbQueryError");
    expect(e.hints).toEqual(["start and stop must use one session"]);
    await a.close();
    expect(FakeDb.closed).toBe(1);
    (r.clientEnd as Transport).close();
    await r.served;
    expect(FakeDb.closed).toBe(2);
  });

  test("a repository remote has no database", async () => {
    const r = await pipeRemote(dir());
    const e = await failure(RemoteDb.open(r.client));
    expect(e.kind).toBe("ProtocolError");
    expect(e.message).toContain("has no database");
    await r.client.close();
  });
});
