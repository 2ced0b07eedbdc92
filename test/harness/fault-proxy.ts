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
 * - freeze(): nothing is relayed any more, on any connection, old or new (a hung engine).
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
  readonly served = { failed: 0, resets: 0, stalled: 0 };
  #failNext = 0;
  #stallNext = 0;
  #resetAfter: number | undefined;
  #relayed = 0;
  #frozen = false;
  readonly #conns = new Set<Conn>();
  readonly #server: Bun.TCPSocketListener<Conn>;

  private constructor(target: ProxyTarget) {
    const self = this;
    this.#server = Bun.listen<Conn>({
      hostname: "127.0.0.1",
      port: 0,
      tls: { key: readFileSync(target.tlsKeyFile, "utf8"), cert: readFileSync(target.tlsCertFile, "utf8") },
      socket: {
        open(client) {
          const c: Conn = { client, early: [], toClient: [], toUpstream: [], mode: "relay", answered: false, closed: false };
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
          void Bun.connect<Conn>({
            hostname: "127.0.0.1",
            port: target.upstreamPort,
            tls: target.upstreamTls ? { rejectUnauthorized: false } : undefined,
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
          const copy = new Uint8Array(chunk);
          if (self.#frozen) return;
          if (!c.upstream) c.early.push(copy);
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

  stop(): void {
    this.cut();
    this.#server.stop(true);
  }
}
