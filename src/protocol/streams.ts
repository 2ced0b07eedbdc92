/**
 * File streams of a protocol session: a read the remote sends (chunks, then the filter results)
 * and a write we send (chunks within the remote's credit window). Both are routed frames of their
 * request's id by the session (client.ts).
 */
import { err, type PgbError } from "../common/error.ts";
import type { Pending, ProtocolClient } from "./client.ts";
import { dataFrame, decodeCredit, decodeJson, encodeCredit, encodeFrame, FrameType, frameTypeName, type Frame } from "./frame.ts";

/** Largest DATA frame a writer sends. */
const MAX_DATA_FRAME = 1024 * 1024;

/** A file arriving from the remote: chunks in order, then filter results (or an error). */
export class ClientReadStream implements Pending {
  readonly #client: ProtocolClient;
  readonly #id: number;
  readonly #window: number;
  readonly #chunks: Uint8Array[] = [];
  #consumed = 0;
  #results: unknown;
  #ended = false;
  #error: PgbError | undefined;
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(client: ProtocolClient, id: number, window: number) {
    this.#client = client;
    this.#id = id;
    this.#window = window;
  }

  frame(f: Frame): void {
    if (f.type === FrameType.DATA) this.#chunks.push(f.payload);
    else if (f.type === FrameType.END) {
      this.#ended = true;
      this.#results = decodeJson<unknown>(f.payload);
      this.#client.release(this.#id);
    } else if (f.type === FrameType.ERROR) this.fail(this.#client.remoteError(f.payload));
    else this.fail(err("ProtocolError", `unexpected ${frameTypeName(f.type)} frame in a file stream from ${this.#client.peer}`));
    this.#wake?.();
  }

  fail(e: PgbError): void {
    if (this.#error || this.#ended) return;
    this.#error = e;
    this.#client.release(this.#id);
    this.#wake?.();
  }

  /** Next chunk, or null at the end. */
  async read(): Promise<Uint8Array | null> {
    for (;;) {
      const chunk = this.#chunks.shift();
      if (chunk) {
        this.#consumed += chunk.byteLength;
        if (!this.#ended && this.#consumed >= this.#window / 2) {
          this.#client.send(encodeCredit(this.#id, this.#consumed));
          this.#consumed = 0;
        }
        return chunk;
      }
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }

  /** What the remote's filters measured (available once read() returned null). */
  get results(): unknown {
    return this.#results;
  }

  /** Stop early: the remote stops sending; frames already on the way are dropped. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks.length = 0;
    if (this.#ended || this.#error) return;
    this.#client.release(this.#id);
    try {
      this.#client.send(encodeFrame(FrameType.CANCEL, this.#id));
    } catch {}
  }
}

/** A file going to the remote: write waits for credit, so at most one window is in flight. */
export class ClientWriteStream implements Pending {
  readonly #client: ProtocolClient;
  readonly #id: number;
  #credit: number;
  #error: PgbError | undefined;
  #done = false;
  #wake: (() => void) | undefined;

  constructor(client: ProtocolClient, id: number, window: number) {
    this.#client = client;
    this.#id = id;
    this.#credit = window;
  }

  get id(): number {
    return this.#id;
  }

  frame(f: Frame): void {
    if (f.type === FrameType.CREDIT) this.#credit += decodeCredit(f.payload);
    else if (f.type === FrameType.ERROR) this.fail(this.#client.remoteError(f.payload));
    else this.fail(err("ProtocolError", `unexpected ${frameTypeName(f.type)} frame in a write stream to ${this.#client.peer}`));
    this.#wake?.();
  }

  fail(e: PgbError): void {
    if (this.#error) return;
    this.#error = e;
    this.#client.release(this.#id);
    this.#wake?.();
  }

  get error(): PgbError | undefined {
    return this.#error;
  }

  async write(data: Uint8Array): Promise<void> {
    // Large buffers go as several frames, so credit (and the remote's memory) stays in steps.
    for (let pos = 0; pos < data.byteLength; pos += MAX_DATA_FRAME) {
      const chunk = data.subarray(pos, pos + MAX_DATA_FRAME);
      while (this.#credit <= 0 && !this.#error) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
      }
      if (this.#error) throw this.#error;
      this.#credit -= chunk.byteLength;
      this.#client.send(...dataFrame(this.#id, chunk));
    }
  }

  /** Finish the file on the remote (filters flushed, synced, renamed into place). */
  async close<T>(): Promise<T> {
    if (this.#error) throw this.#error;
    this.#done = true;
    try {
      return await this.#client.request<T>("writeClose", { stream: this.#id });
    } finally {
      this.#client.release(this.#id);
    }
  }

  /** Discard the file on the remote (its temp file is removed). */
  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    this.#client.release(this.#id);
    if (this.#error || !this.#client.alive) return;
    await this.#client.request("writeAbort", { stream: this.#id }).catch(() => {});
  }
}
