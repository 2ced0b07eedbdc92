/**
 * A fault-injecting TCP proxy in front of an object-store harness (RGW, Azurite, the GCS server):
 * real sockets, real TLS. It terminates TLS with the engine's own certificate (signed by the
 * harness CA, so clients verify it as they would the engine) and relays the bytes, untouched, to
 * the engine's port (plain HTTP, or TLS again for an engine that serves only HTTPS); the signed
 * Host header is the one the client sent, so signatures stay valid.
 *
 * Faults are armed for the next connections or bytes:
 * - failNext(n): the next n connections answer their first request with HTTP 503 SlowDown and close;
 * - resetAfter(bytes): the connection whose response passes `bytes` is reset mid-body;
 * - stallNext(): the next connection is accepted and never answered (a silent peer);
 * - freeze(): nothing is relayed any more, on any connection, old or new (a hung engine);
 * - hold() / release(): nothing more the clients send is passed on, on open connections or new
 *   ones (accepted, bytes kept), until release() passes it all on (an engine that is down and comes
 *   back while the client waits: no retry is spent);
 * - pauseUploadAfter(bytes): once `bytes` of requests have gone upstream, the rest of that
 *   connection's request is kept back (the engine holds a partial body); the promise it returns
 *   resolves then.
 * Arming a fault first drops the connections open now, so the client's next request opens a new one.
 */
import { readFileSync } from "node:fs";

/** What the proxy stands in front of. */
export interface ProxyTarget {
  /** The engine's TLS key and certificate (PEM files), which the proxy presents. */
  readonly tlsKeyFile: string;
  readonly tlsCertFile: string;
  /** Where the proxy relays to, on 127.0.0.1. */
  readonly upstreamPort: number;
  /** The upstream port speaks TLS (its certificate is not checked: it is the harness's own). */
  readonly upstreamTls?: boolean;
}

interface Conn {
  client: Bun.Socket<Conn>;
  upstream?: Bun.Socket<Conn>;
  /** Client bytes that came before the upstream connection opened. */
  early: Uint8Array[];
  toClient: Uint8Array[];
  toUpstream: Uint8Array[];
  mode: "relay" | "fail" | "stall";
  /** fail mode: the 503 was sent (the rest of the request is ignored). */
  answered: boolean;
  closed: boolean;
  /** pauseUploadAfter hit this connection: its request bytes are no longer passed on. */
  paused: boolean;
  /** Client bytes kept back by hold(). */
  held: Uint8Array[];
}

const SLOW_DOWN = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>injected by the fault proxy</Message></Error>";

function flush(socket: Bun.Socket<Conn> | undefined, queue: Uint8Array[]): void {
  if (!socket) return;
  while (queue.length) {
    const head = queue[0]!;
    const n = socket.write(head);
    if (n < 0) return;
    if (n < head.byteLength) {
      queue[0] = head.subarray(n);
      return;
    }
    queue.shift();
  }
}

export class FaultProxy {
  readonly port: number;
  /** What was injected so far. */
  readonly served = { failed: 0, resets: 0, stalled: 0, held: 0 };
  #failNext = 0;
  #stallNext = 0;
  #resetAfter: number | undefined;
  #relayed = 0;
  #frozen = false;
  #hold = false;
  readonly #held: Conn[] = [];
  #pause: { left: number; hit: () => void } | undefined;
  readonly #target: ProxyTarget;
  readonly #conns = new Set<Conn>();
  readonly #server: Bun.TCPSocketListener<Conn>;

  private constructor(target: ProxyTarget) {
    const self = this;
    this.#target = target;
    this.#server = Bun.listen<Conn>({
      hostname: "127.0.0.1",
      port: 0,
      tls: { key: readFileSync(target.tlsKeyFile, "utf8"), cert: readFileSync(target.tlsCertFile, "utf8") },
      socket: {
        open(client) {
          const c: Conn = { client, early: [], toClient: [], toUpstream: [], mode: "relay", answered: false, closed: false, paused: false, held: [] };
          client.data = c;
          self.#conns.add(c);
          if (self.#failNext > 0) {
            self.#failNext--;
            c.mode = "fail";
            return;
          }
          if (self.#frozen || self.#stallNext > 0) {
            if (!self.#frozen) self.#stallNext--;
            self.served.stalled++;
            c.mode = "stall";
            return;
          }
          if (self.#hold) {
            self.served.held++;
            self.#held.push(c);
            return;
          }
          self.#connect(c);
        },
        data(client, chunk) {
          const c = client.data;
          if (c.mode === "stall") return;
          if (c.mode === "fail") {
            // Answer the first request with a 503 and close: the client sees a throttling engine.
            if (!c.answered && !c.closed) {
              c.answered = true;
              self.served.failed++;
              const body = new TextEncoder().encode(SLOW_DOWN);
              const head = `HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: ${body.byteLength}\r\nConnection: close\r\n\r\n`;
              c.toClient.push(new TextEncoder().encode(head), body);
              flush(client, c.toClient);
              client.end();
            }
            return;
          }
          if (self.#frozen || c.paused) return;
          let copy = new Uint8Array(chunk);
          const pause = self.#pause;
          if (pause && copy.byteLength >= pause.left) {
            // Pass what fits under the limit and keep back the rest of this request.
            copy = copy.subarray(0, pause.left);
            c.paused = true;
            self.#pause = undefined;
            pause.hit();
          } else if (pause) pause.left -= copy.byteLength;
          if (self.#hold) c.held.push(copy);
          else if (!c.upstream) c.early.push(copy);
          else {
            c.toUpstream.push(copy);
            flush(c.upstream, c.toUpstream);
          }
        },
        drain(client) {
          flush(client, client.data.toClient);
        },
        close(client) {
          self.#close(client.data);
        },
        error(client) {
          self.#close(client.data);
        },
      },
    });
    this.port = this.#server.port;
  }

  /** Open the upstream connection of an accepted client connection and pass on what it sent so far. */
  #connect(c: Conn): void {
    const self = this;
    void Bun.connect<Conn>({
      hostname: "127.0.0.1",
      port: self.#target.upstreamPort,
      tls: self.#target.upstreamTls ? { rejectUnauthorized: false } : undefined,
      data: c,
      socket: {
        open(up) {
          c.upstream = up;
          c.toUpstream.push(...c.early.splice(0));
          flush(up, c.toUpstream);
        },
        data(_up, chunk) {
          self.#relay(c, chunk);
        },
        drain(up) {
          flush(up, c.toUpstream);
        },
        close() {
          self.#close(c);
        },
        error() {
          self.#close(c);
        },
      },
    }).catch(() => self.#close(c));
  }

  static start(target: ProxyTarget): FaultProxy {
    return new FaultProxy(target);
  }

  #relay(c: Conn, chunk: Uint8Array): void {
    if (this.#frozen) return;
    if (this.#resetAfter !== undefined && this.#relayed + chunk.byteLength > this.#resetAfter) {
      // Pass what fits under the limit, then reset both sides (RST, not a clean close).
      const keep = this.#resetAfter - this.#relayed;
      this.#resetAfter = undefined;
      this.#relayed = 0;
      this.served.resets++;
      if (keep > 0) c.client.write(chunk.subarray(0, keep));
      c.client.terminate();
      c.upstream?.terminate();
      this.#close(c);
      return;
    }
    if (this.#resetAfter !== undefined) this.#relayed += chunk.byteLength;
    c.toClient.push(new Uint8Array(chunk));
    flush(c.client, c.toClient);
  }

  #close(c: Conn): void {
    if (c.closed) return;
    c.closed = true;
    this.#conns.delete(c);
    c.client.end();
    c.upstream?.end();
  }

  /** Drop every open connection (idle keep-alive ones too). */
  cut(): void {
    for (const c of [...this.#conns]) {
      c.client.terminate();
      c.upstream?.terminate();
      this.#close(c);
    }
  }

  failNext(n: number): void {
    this.cut();
    this.#failNext = n;
  }

  stallNext(n = 1): void {
    this.cut();
    this.#stallNext = n;
  }

  resetAfter(bytes: number): void {
    this.cut();
    this.#resetAfter = bytes;
    this.#relayed = 0;
  }

  /** Relay nothing more, on open connections and new ones (until stop). */
  freeze(): void {
    this.#frozen = true;
  }

  /** Pass nothing more on (new connections wait unconnected) until release(). */
  hold(): void {
    this.#hold = true;
  }

  /** Pass on what hold() kept, connect the connections it kept waiting, and relay as before. */
  release(): void {
    this.#hold = false;
    for (const c of this.#conns) {
      if (c.closed || !c.held.length) continue;
      if (c.upstream) {
        c.toUpstream.push(...c.held.splice(0));
        flush(c.upstream, c.toUpstream);
      } else c.early.push(...c.held.splice(0));
    }
    for (const c of this.#held.splice(0)) if (!c.closed) this.#connect(c);
  }

  /** Let `bytes` more request bytes through, then keep back the rest of that connection's request. */
  pauseUploadAfter(bytes: number): Promise<void> {
    this.cut();
    return new Promise((hit) => {
      this.#pause = { left: bytes, hit };
    });
  }

  stop(): void {
    this.cut();
    this.#server.stop(true);
  }
}
