/**
 * The calling side of the protocol: one session with one `pgbunker remote` over a Transport.
 *
 * Requests are concurrent (each has an id; the answer carries it back). A file is a stream on
 * its request's id: DATA frames flow within a credit window the receiver grants as it consumes,
 * so a slow consumer holds the sender back instead of growing a buffer. Errors come back with
 * their kind and code. The session fails as a whole when the peer goes silent for longer than
 * the protocol timeout (a PING every few seconds keeps an idle peer answering) or the
 * transport closes.
 */
import { err, errorFromWire, PgbError, type WireError } from "../common/error.ts";
import { logDebug } from "../common/log.ts";
import { VERSION } from "../version.ts";
import {
  decodeJson, encodeFrame, encodeJson, foreignBytes, FrameDecoder, FrameType, frameTypeName, printable, type Frame,
} from "./frame.ts";
import { ClientReadStream, ClientWriteStream } from "./streams.ts";
import { LinkLostError, type Transport } from "./transport.ts";

export { ClientReadStream, ClientWriteStream };

export const PROTOCOL_NAME = "pgbunker";
/** Bumped when frames or requests change incompatibly (the version check covers releases). */
export const PROTOCOL_REVISION = 1;

export interface Greeting {
  name: string;
  version: string;
  protocol: number;
  /** Process id of the remote (for logs and diagnostics). */
  pid?: number;
}

/** What the client learns when it opens the session. */
export interface OpenReply {
  /** Base path of the storage this remote serves (repoN-path or pgN-path on this host). */
  base: string;
  /** The served driver's StorageFeatures (plain flags: the protocol does not know the storage contract). */
  features: Record<string, boolean>;
  /** The remote's host name, for messages. */
  hostname: string;
}

export interface ClientOptions {
  /** Who the peer is, for messages: `repository host 'backup1'`. */
  peer: string;
  /** Seconds the peer may stay silent while we wait for it (protocol-timeout). */
  timeout: number;
  /** The version the peer must run (default: ours). */
  version?: string;
  /** Hint added when the peer is not a pgbunker remote at all (which option names its command). */
  commandHint?: string;
}

/** Bytes a reader lets the remote send ahead of what it has consumed. */
export const READ_WINDOW = 4 * 1024 * 1024;

/** Who receives the frames of one request id (a request, or a stream after its answer). */
export interface Pending {
  frame(f: Frame): void;
  fail(e: PgbError): void;
}

export class ProtocolClient {
  readonly peer: string;
  #greeting: Greeting | undefined;
  readonly #opts: ClientOptions;
  readonly #transport: Transport;
  readonly #decoder = new FrameDecoder();
  readonly #pending = new Map<number, Pending>();
  readonly #timeoutMs: number;
  #nextId = 1;
  #lastHeard = performance.now();
  #lastSent = performance.now();
  #timer: ReturnType<typeof setInterval> | undefined;
  #failure: PgbError | undefined;
  #closing = false;
  readonly #closeListeners: ((e?: PgbError) => void)[] = [];
  /** Settles the handshake (set until the greeting has been checked). */
  #handshake: { resolve: () => void; reject: (e: PgbError) => void } | undefined;

  private constructor(transport: Transport, opts: ClientOptions) {
    this.#transport = transport;
    this.#opts = opts;
    this.peer = opts.peer;
    this.#timeoutMs = opts.timeout * 1000;
  }

  /** Start the transport, wait for the remote's greeting, and check that it runs our version. */
  static async connect(transport: Transport, opts: ClientOptions): Promise<ProtocolClient> {
    const client = new ProtocolClient(transport, opts);
    await client.#start();
    return client;
  }

  get greeting(): Greeting {
    return this.#greeting!;
  }

  #start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.#handshakeFailed(err(
        "ProtocolTimeoutError",
        `timed out after ${this.#opts.timeout}s waiting for the pgbunker remote on ${this.peer} to start`,
        ["the remote command did not answer: check that it runs on that host and does not wait for input.", "raise protocol-timeout if the host is only slow."],
      )), this.#timeoutMs);
      this.#handshake = {
        resolve: () => {
          clearTimeout(timer);
          this.#handshake = undefined;
          this.#startTimer();
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          this.#handshake = undefined;
          this.#failure = e;
          this.#transport.close();
          reject(e);
        },
      };
      this.#transport.start((chunk) => this.#receive(chunk), (error) => this.#closed(error));
    });
  }

  #handshakeFailed(e: PgbError): void {
    this.#handshake?.reject(e);
  }

  /** The first frame must be a greeting from a pgbunker remote of our version. */
  #greet(f: Frame): void {
    if (f.type !== FrameType.GREETING) throw foreignBytes(this.#decoder.head);
    const g = decodeJson<Greeting>(f.payload);
    if (g?.name !== PROTOCOL_NAME) throw foreignBytes(this.#decoder.head);
    const want = this.#opts.version ?? VERSION;
    if (g.version !== want || g.protocol !== PROTOCOL_REVISION)
      throw err(
        "ProtocolError",
        `pgbunker remote on ${this.peer} is version ${g.version} (protocol ${g.protocol}), expected version ${want} (protocol ${PROTOCOL_REVISION})`,
        "install the same pgbunker version on every host of the cluster and its repository.",
      );
    this.#greeting = g;
    this.#handshake?.resolve();
  }

  get alive(): boolean {
    return this.#failure === undefined && !this.#closing;
  }

  /** Called once when the session ends (error when it broke). */
  onClose(fn: (e?: PgbError) => void): void {
    this.#closeListeners.push(fn);
  }

  #startTimer(): void {
    const pingMs = Math.max(50, Math.min(this.#timeoutMs / 3, 30_000));
    const tick = Math.max(20, Math.min(pingMs / 2, 1000));
    this.#timer = setInterval(() => {
      const now = performance.now();
      if (this.#pending.size > 0 && now - this.#lastHeard > this.#timeoutMs) {
        this.#fail(err(
          "ProtocolTimeoutError",
          `timed out after ${this.#timeoutMs / 1000}s waiting for the pgbunker remote on ${this.peer}`,
          "the remote host or the network stopped answering; raise protocol-timeout if the remote is only slow.",
        ));
        this.#transport.close();
        return;
      }
      if (now - this.#lastSent > pingMs) this.#send(encodeFrame(FrameType.PING, 0));
    }, tick);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  #send(...parts: Uint8Array[]): void {
    if (this.#failure) throw this.#failure;
    this.#lastSent = performance.now();
    this.#transport.write(parts);
  }

  #receive(chunk: Uint8Array): void {
    this.#lastHeard = performance.now();
    try {
      this.#decoder.push(chunk, (f) => (this.#greeting ? this.#frame(f) : this.#greet(f)));
    } catch (e) {
      const pe = e instanceof PgbError ? e : err("ProtocolError", `invalid data from ${this.peer}: ${(e as Error).message}`);
      if (this.#handshake) return this.#handshake.reject(pe);
      this.#fail(pe);
      this.#transport.close();
    }
  }

  #frame(f: Frame): void {
    this.#lastHeard = performance.now();
    if (f.type === FrameType.PONG || f.type === FrameType.PING) {
      if (f.type === FrameType.PING) this.#send(encodeFrame(FrameType.PONG, f.id));
      return;
    }
    const p = this.#pending.get(f.id);
    if (!p) {
      // A late frame for a stream the caller already closed (data in flight when it cancelled).
      logDebug(`protocol: ignoring ${frameTypeName(f.type)} frame for closed id ${f.id} from ${this.peer}`);
      return;
    }
    p.frame(f);
  }

  #closed(error?: Error): void {
    const said = this.#transport.diagnostics?.().trim();
    if (this.#handshake && error instanceof LinkLostError)
      return this.#handshake.reject(err(
        "HostConnectError",
        `connection to ${error.where} lost during the ${error.link} handshake with the pgbunker remote on ${this.peer}: ${error.message}${said ? `\n${said}` : ""}`,
        [`check the network and sshd on ${error.where.replace(/:\d+$/, "")}: the remote command never got to answer.`, "job-retry retries a job whose connection was lost (a backup or restore file, a verify)."],
      ));
    if (this.#handshake) {
      const head = this.#decoder.head;
      const heard = head.byteLength > 0 ? `; it sent ${printable(head)}` : "";
      return this.#handshake.reject(err(
        "ProtocolError",
        `pgbunker remote on ${this.peer} exited before the protocol started${said ? `: ${said}` : heard}${error ? ` (${error.message})` : ""}`,
        this.#opts.commandHint ?? "check that pgbunker is installed on that host.",
      ));
    }
    if (this.#closing && !error) return this.#fail(err("ProtocolError", `connection to ${this.peer} is closed`));
    this.#fail(err(
      "ProtocolError",
      `connection to the pgbunker remote on ${this.peer} was lost${error ? `: ${error.message}` : ""}${said ? `\n${said}` : ""}`,
      "check the network and the remote host; run the command again (a backup resumes where it stopped).",
    ));
  }

  #fail(e: PgbError): void {
    if (this.#failure) return;
    this.#failure = e;
    if (this.#timer) clearInterval(this.#timer);
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.fail(e);
    for (const fn of this.#closeListeners) fn(this.#closing ? undefined : e);
  }

  /** Rebuild an error raised on the remote, with its kind and code. */
  remoteError(payload: Uint8Array): PgbError {
    return errorFromWire(decodeJson<WireError>(payload), `remote on ${this.peer}`);
  }

  #register(p: Pending): number {
    if (this.#failure) throw this.#failure;
    const id = this.#nextId++;
    if (this.#nextId > 0xffffffff) this.#nextId = 1;
    this.#pending.set(id, p);
    return id;
  }

  /** One request, one answer. */
  request<T>(cmd: string, params: Record<string, unknown> = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let id = 0;
      id = this.#register({
        frame: (f) => {
          this.#pending.delete(id);
          if (f.type === FrameType.RESPONSE) resolve(decodeJson<T>(f.payload));
          else if (f.type === FrameType.ERROR) reject(this.remoteError(f.payload));
          else reject(err("ProtocolError", `unexpected ${frameTypeName(f.type)} frame answering '${cmd}' from ${this.peer}`));
        },
        fail: reject,
      });
      this.#send(encodeJson(FrameType.REQUEST, id, { cmd, ...params }));
    });
  }

  /**
   * Open a stream the remote sends (a file read): resolves with the stream, or null when the
   * remote answered null (missing file with ignoreMissing).
   */
  openReadStream(cmd: string, params: Record<string, unknown>, window = READ_WINDOW): Promise<ClientReadStream | null> {
    return this.#openStream(cmd, { window, ...params }, (id, answer) => (answer === null ? null : new ClientReadStream(this, id, window)));
  }

  /** Open a stream we send (a file write); the remote answers with its credit window. */
  async openWriteStream(cmd: string, params: Record<string, unknown>): Promise<ClientWriteStream> {
    return (await this.#openStream(cmd, params, (id, answer) => new ClientWriteStream(this, id, (answer as { window: number }).window)))!;
  }

  /**
   * A request whose answer opens a stream on the same id. The stream is registered while the
   * answer is handled, before any DATA that follows it in the same chunk is dispatched.
   */
  #openStream<S extends Pending>(cmd: string, params: Record<string, unknown>, make: (id: number, answer: unknown) => S | null): Promise<S | null> {
    return new Promise((resolve, reject) => {
      let id = 0;
      id = this.#register({
        frame: (f) => {
          this.#pending.delete(id);
          if (f.type !== FrameType.RESPONSE)
            return reject(f.type === FrameType.ERROR ? this.remoteError(f.payload) : err("ProtocolError", `unexpected ${frameTypeName(f.type)} frame opening a stream`));
          const stream = make(id, decodeJson<unknown>(f.payload));
          if (stream) this.#pending.set(id, stream);
          resolve(stream);
        },
        fail: reject,
      });
      this.#send(encodeJson(FrameType.REQUEST, id, { cmd, ...params }));
    });
  }

  /** Internal for streams. */
  send(...parts: Uint8Array[]): void {
    this.#send(...parts);
  }

  /** Internal for streams: stop routing frames of this id. */
  release(id: number): void {
    this.#pending.delete(id);
  }

  get failure(): PgbError | undefined {
    return this.#failure;
  }

  /** End the session: the remote finishes what it was doing and exits. */
  async close(): Promise<void> {
    if (this.#closing || this.#failure) return;
    this.#closing = true;
    try {
      this.#transport.write([encodeFrame(FrameType.GOODBYE, 0)]);
    } catch {}
    this.#transport.close();
    this.#fail(err("ProtocolError", `connection to ${this.peer} is closed`));
  }
}
