/**
 * The serving side of the protocol (`pgbunker remote`): greets the client, then answers storage
 * requests against a local driver and database requests on sessions that stay open across calls
 * (a non-exclusive backup's start and stop must run on one session).
 *
 * Files stream in both directions within credit windows. Filters given with a read or a write run
 * here, where the bytes are, so a backup sends compressed bytes over the network. When the
 * client goes away (end of file, broken connection, silence longer than the protocol timeout)
 * every file still being written is aborted, so only whole files ever reach their final name.
 */
import { err, errorToWire, PgbError } from "../../common/error.ts";
import { logDebug, logWarn } from "../../common/log.ts";
import type { Db } from "../../postgres/client.ts";
import type { ReadOptions, StorageDriver, StorageRead, StorageWrite, WriteOptions } from "../../storage/storage.ts";
import { VERSION } from "../../version.ts";
import { PROTOCOL_NAME, PROTOCOL_REVISION, type Greeting, type OpenReply } from "../../protocol/client.ts";
import { dataFrame, decodeCredit, decodeJson, encodeCredit, encodeFrame, encodeJson, FrameDecoder, FrameType, frameTypeName, type Frame } from "../../protocol/frame.ts";
import type { Transport } from "../../protocol/transport.ts";

export interface ServerOptions {
  /** The driver served until `open` names another (a repository on an object store). */
  driver: StorageDriver;
  /** Called on the client's `open` with what it sent; returns the storage's base path (and driver). */
  open(params: Record<string, unknown>): Promise<{ base: string; timeout?: number; driver?: StorageDriver }>;
  /** Opens a database session; undefined (or absent) when this remote serves no database. */
  dbConnect?(): Promise<Db> | undefined;
  /** Seconds without a frame from the client before giving up (until `open` says otherwise). */
  timeout: number;
  /** Override the version announced (tests of the version check). */
  version?: string;
  hostname?: string;
}

/** Bytes a writer may send ahead of what the server has written. */
export const WRITE_WINDOW = 4 * 1024 * 1024;

interface ReadStreamState {
  read: StorageRead;
  credit: number;
  cancelled: boolean;
  wake?: () => void;
}

interface WriteStreamState {
  write: StorageWrite;
  /** Frames of one stream are applied in order. */
  chain: Promise<void>;
  failed?: PgbError;
}

export class ProtocolServer {
  readonly #transport: Transport;
  readonly #opts: ServerOptions;
  readonly #decoder = new FrameDecoder();
  readonly #reads = new Map<number, ReadStreamState>();
  readonly #writes = new Map<number, WriteStreamState>();
  readonly #sessions = new Map<number, Db>();
  #nextSession = 1;
  #timeoutMs: number;
  #driver: StorageDriver;
  #lastHeard = performance.now();
  #timer: ReturnType<typeof setInterval> | undefined;
  #finished = false;
  /** Nothing but `open` is served until an `open` succeeded (a TLS server decides there who may in). */
  #opened = false;
  #done!: Promise<{ clean: boolean; error?: PgbError }>;
  #resolveDone!: (r: { clean: boolean; error?: PgbError }) => void;

  constructor(transport: Transport, opts: ServerOptions) {
    this.#transport = transport;
    this.#opts = opts;
    this.#driver = opts.driver;
    this.#timeoutMs = opts.timeout * 1000;
    this.#done = new Promise((resolve) => (this.#resolveDone = resolve));
  }

  /** Serve until the client says goodbye or goes away; `clean` is false when it vanished. */
  serve(): Promise<{ clean: boolean; error?: PgbError }> {
    const greeting: Greeting = { name: PROTOCOL_NAME, version: this.#opts.version ?? VERSION, protocol: PROTOCOL_REVISION, pid: process.pid };
    this.#transport.start(
      (chunk) => this.#receive(chunk),
      (error) => this.#finish(false, error ? err("ProtocolError", `connection to the client was lost: ${error.message}`) : undefined),
    );
    this.#send(encodeJson(FrameType.GREETING, 0, greeting));
    this.#armTimer();
    return this.#done;
  }

  #armTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = setInterval(() => {
      if (performance.now() - this.#lastHeard > this.#timeoutMs)
        this.#finish(false, err("ProtocolTimeoutError", `no request from the client for ${this.#timeoutMs / 1000}s (protocol-timeout): giving up`));
    }, Math.max(20, Math.min(this.#timeoutMs / 4, 1000)));
  }

  #send(...parts: Uint8Array[]): void {
    if (!this.#finished) this.#transport.write(parts);
  }

  #sendError(id: number, e: unknown): void {
    this.#send(encodeJson(FrameType.ERROR, id, errorToWire(e)));
  }

  #receive(chunk: Uint8Array): void {
    this.#lastHeard = performance.now();
    try {
      this.#decoder.push(chunk, (f) => this.#frame(f));
    } catch (e) {
      this.#finish(false, e instanceof PgbError ? e : err("ProtocolError", String(e)));
    }
  }

  #frame(f: Frame): void {
    switch (f.type) {
      case FrameType.REQUEST: {
        const req = decodeJson<{ cmd: string } & Record<string, unknown>>(f.payload);
        this.#request(f.id, req).then(
          (result) => {
            if (result !== STREAMING) this.#send(encodeJson(FrameType.RESPONSE, f.id, result ?? null));
          },
          (e) => {
            this.#sendError(f.id, e);
            // A refused open ends the session: nothing else would be served on it.
            if (req.cmd === "open" && !this.#opened) void this.#finish(false, e instanceof PgbError ? e : undefined);
          },
        );
        return;
      }
      case FrameType.DATA:
        return this.#writeData(f.id, f.payload);
      case FrameType.CREDIT: {
        const s = this.#reads.get(f.id);
        if (s) {
          s.credit += decodeCredit(f.payload);
          s.wake?.();
        }
        return;
      }
      case FrameType.CANCEL: {
        const s = this.#reads.get(f.id);
        if (s) {
          s.cancelled = true;
          s.wake?.();
        }
        return;
      }
      case FrameType.PING:
        return this.#send(encodeFrame(FrameType.PONG, f.id));
      case FrameType.PONG:
        return;
      case FrameType.GOODBYE:
        void this.#finish(true);
        return;
      default:
        throw err("ProtocolError", `unexpected ${frameTypeName(f.type)} frame from the client`);
    }
  }

  async #request(id: number, req: { cmd: string } & Record<string, unknown>): Promise<unknown> {
    const d = this.#driver;
    const p = req as Record<string, any>;
    if (req.cmd !== "open" && !this.#opened) throw err("ProtocolError", `request '${req.cmd}' before the session was opened`, "the client must send 'open' first (and it must succeed).");
    switch (req.cmd) {
      case "open": {
        const { base, timeout, driver } = await this.#opts.open(p);
        if (driver) this.#driver = driver;
        this.#opened = true;
        if (timeout !== undefined) {
          this.#timeoutMs = timeout * 1000;
          this.#armTimer();
        }
        return { base, features: { ...this.#driver.features }, hostname: this.#opts.hostname ?? "" } satisfies OpenReply;
      }
      case "info": return d.info(p.path, p.opts);
      case "list": return d.list(p.path, p.opts);
      case "remove": return d.remove(p.path, p.opts);
      case "pathCreate": return d.pathCreate(p.path, p.opts);
      case "pathRemove": return d.pathRemove(p.path, p.opts);
      case "move": return d.move(p.from, p.to);
      case "pathSync": return d.pathSync(p.path);
      case "syncTree": return d.features.syncTree ? d.syncTree(p.path) : d.pathSync(p.path);
      case "linkCreate": return d.linkCreate(p.target, p.path);
      case "setAttributes": return d.setAttributes(p.path, p.attrs);
      case "truncate":
        if (!d.features.truncate) throw err("FeatureNotSupportedError", "the remote's storage cannot truncate files");
        return d.truncate(p.path, p.size);
      case "openRead": return this.#openRead(id, p.path, p.opts ?? {}, p.window);
      case "openWrite": return this.#openWrite(id, p.path, p.opts ?? {});
      case "writeClose": return this.#writeClose(p.stream);
      case "writeAbort": return this.#writeAbort(p.stream);
      case "dbOpen": return this.#dbOpen();
      case "dbQuery": return this.#session(p.session).query(p.sql);
      case "dbClose": return this.#dbClose(p.session);
      default:
        throw err("ProtocolError", `unknown request '${req.cmd}'`, "the client and the remote must run the same pgbunker version.");
    }
  }

  // ---- reads: pump filtered chunks while the client has credit ------------------------------

  async #openRead(id: number, path: string, opts: ReadOptions, window: number): Promise<unknown> {
    const read = await this.#driver.openRead(path, opts);
    if (!read) return null;
    const s: ReadStreamState = { read, credit: window, cancelled: false };
    this.#reads.set(id, s);
    // The answer goes out with the first chunk (and the end, for a small file): one write, one
    // packet, one wake-up of the client per small file.
    let first: Uint8Array | null;
    try {
      first = await read.read();
    } catch (e) {
      this.#reads.delete(id);
      await read.close().catch(() => {});
      throw e;
    }
    const opened = encodeJson(FrameType.RESPONSE, id, { open: true });
    if (first === null) {
      this.#reads.delete(id);
      this.#send(opened, encodeJson(FrameType.END, id, read.results()));
      await read.close();
      return STREAMING;
    }
    s.credit -= first.byteLength;
    this.#send(opened, ...dataFrame(id, first));
    void this.#pump(id, s);
    return STREAMING;
  }

  async #pump(id: number, s: ReadStreamState): Promise<void> {
    try {
      for (;;) {
        while (s.credit <= 0 && !s.cancelled && !this.#finished) await new Promise<void>((resolve) => (s.wake = resolve));
        s.wake = undefined;
        if (s.cancelled || this.#finished) break;
        const chunk = await s.read.read();
        if (chunk === null) {
          this.#send(encodeJson(FrameType.END, id, s.read.results()));
          break;
        }
        s.credit -= chunk.byteLength;
        // The chunk is valid until the next read: the transport writes it before returning.
        this.#send(...dataFrame(id, chunk));
      }
    } catch (e) {
      this.#sendError(id, e);
    } finally {
      this.#reads.delete(id);
      await s.read.close().catch(() => {});
    }
  }

  // ---- writes: apply chunks in order, grant credit back as they land ------------------------

  async #openWrite(id: number, path: string, opts: WriteOptions): Promise<unknown> {
    const write = await this.#driver.openWrite(path, opts);
    this.#writes.set(id, { write, chain: Promise.resolve() });
    return { window: WRITE_WINDOW };
  }

  #writeData(id: number, chunk: Uint8Array): void {
    const s = this.#writes.get(id);
    if (!s) return; // the stream already failed and the client was told
    s.chain = s.chain.then(async () => {
      if (s.failed) return;
      try {
        await s.write.write(chunk);
        this.#send(encodeCredit(id, chunk.byteLength));
      } catch (e) {
        s.failed = e instanceof PgbError ? e : err("FileWriteError", String(e));
        this.#writes.delete(id);
        await s.write.abort().catch(() => {});
        this.#sendError(id, s.failed);
      }
    });
  }

  async #writeClose(stream: number): Promise<unknown> {
    const s = this.#writes.get(stream);
    if (!s) throw err("ProtocolError", `write stream ${stream} is not open`);
    await s.chain;
    if (s.failed) throw s.failed;
    this.#writes.delete(stream);
    return s.write.close();
  }

  async #writeAbort(stream: number): Promise<void> {
    const s = this.#writes.get(stream);
    if (!s) return;
    this.#writes.delete(stream);
    await s.chain;
    await s.write.abort();
  }

  // ---- database sessions --------------------------------------------------------------------

  async #dbOpen(): Promise<{ session: number; description: string }> {
    const connecting = this.#opts.dbConnect?.();
    if (!connecting) throw err("ProtocolError", "this remote serves a repository: it has no database", "database requests go to the pgN-host remote.");
    const db = await connecting;
    const session = this.#nextSession++;
    this.#sessions.set(session, db);
    return { session, description: db.description };
  }

  #session(id: number): Db {
    const db = this.#sessions.get(id);
    if (!db) throw err("ProtocolError", `database session ${id} is not open`);
    return db;
  }

  async #dbClose(id: number): Promise<void> {
    const db = this.#sessions.get(id);
    this.#sessions.delete(id);
    await db?.close();
  }

  // ---- end of session -----------------------------------------------------------------------

  /**
   * The process is exiting (a signal): remove the temp files of unfinished writes now. Aborting a
   * local write removes its temp file before its first await, so this works from an exit handler.
   */
  abandon(): void {
    for (const s of this.#writes.values()) void s.write.abort().catch(() => {});
    this.#writes.clear();
  }

  /** Abort unfinished writes, close reads and database sessions, and report how it ended. */
  async #finish(clean: boolean, error?: PgbError): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#timer) clearInterval(this.#timer);
    if (!clean && this.#writes.size > 0) logWarn(`client went away: aborting ${this.#writes.size} unfinished file write(s)`);
    else if (error) logDebug(`remote: ${error.message}`);
    for (const s of this.#writes.values()) await s.chain.then(() => s.write.abort()).catch(() => {});
    this.#writes.clear();
    for (const s of this.#reads.values()) {
      s.cancelled = true;
      s.wake?.();
    }
    for (const db of this.#sessions.values()) await db.close().catch(() => {});
    this.#sessions.clear();
    this.#transport.close();
    this.#resolveDone({ clean, error });
  }
}

/** Marks a request whose answer was already sent (a stream's opening response). */
const STREAMING = Symbol("streaming");
