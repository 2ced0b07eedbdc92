import { writevSync } from "node:fs";
import { concatBytes } from "../common/bytes.ts";

/**
 * A byte pipe between protocol peers: an SSH channel (client side), stdin/stdout (the remote), or
 * an in-process pair (tests). The protocol above does its own flow control with credits, so a
 * transport only needs to accept bytes, deliver bytes, and say when it closed.
 */

export interface Transport {
  /**
   * Send the parts, in order, as one message. The transport writes them at once or copies them:
   * the caller may reuse their memory as soon as write returns.
   */
  write(parts: readonly Uint8Array[]): void;
  /**
   * Receive bytes. Each chunk belongs to the receiver: the transport never reuses its memory.
   * Close is reported once, with an error when the transport failed rather than ended.
   */
  start(onData: (chunk: Uint8Array) => void, onClose: (error?: Error) => void): void;
  /** End the session (the peer sees end-of-file). */
  close(): void;
  /** Lines the peer wrote to stderr (SSH), for error messages. */
  diagnostics?(): string;
}

/**
 * The link under a transport failed (the network dropped, sshd went away), as opposed to the peer
 * ending its side: a close reported with this error is not the remote command's doing, and the
 * messages above must not send the user to check that command.
 */
export class LinkLostError extends Error {
  /** `host:port` of the link. */
  readonly where: string;
  /** What kind of link it was, for messages: `SSH`. */
  readonly link: string;

  constructor(link: string, where: string, cause: string) {
    super(cause);
    this.name = "LinkLostError";
    this.link = link;
    this.where = where;
  }
}

/**
 * Two connected in-process transports (unit tests): what one writes the other receives, on a
 * later tick, in the chunk sizes written (optionally split to exercise reassembly).
 */
export function transportPair(opts: { splitAt?: number } = {}): [Transport, Transport] {
  const a = new PipeEnd(opts.splitAt);
  const b = new PipeEnd(opts.splitAt);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

class PipeEnd implements Transport {
  peer!: PipeEnd;
  #onData: ((chunk: Uint8Array) => void) | undefined;
  #onClose: ((error?: Error) => void) | undefined;
  #queue: Uint8Array[] = [];
  #closed = false;
  readonly #splitAt: number | undefined;
  /** Bytes written in total (tests check that back-pressure bounds what is in flight). */
  written = 0;

  constructor(splitAt?: number) {
    this.#splitAt = splitAt;
  }

  write(parts: readonly Uint8Array[]): void {
    if (this.#closed) return;
    const data = concatBytes(parts);
    this.written += data.byteLength;
    const peer = this.peer;
    const pieces: Uint8Array[] = [];
    const step = this.#splitAt ?? data.byteLength;
    for (let pos = 0; pos < data.byteLength; pos += step) pieces.push(data.subarray(pos, pos + step));
    queueMicrotask(() => {
      for (const p of pieces) peer.#deliver(p);
    });
  }

  #deliver(chunk: Uint8Array): void {
    if (this.#closed) return;
    if (this.#onData) this.#onData(chunk);
    else this.#queue.push(chunk);
  }

  start(onData: (chunk: Uint8Array) => void, onClose: (error?: Error) => void): void {
    this.#onData = onData;
    this.#onClose = onClose;
    for (const c of this.#queue.splice(0)) onData(c);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const peer = this.peer;
    queueMicrotask(() => {
      this.#onClose?.();
      peer.#end();
    });
  }

  /** The peer closed: report end-of-file once. */
  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose?.();
  }

  /** Simulate a broken connection: both ends see an error. */
  fail(message: string): void {
    if (this.#closed) return;
    this.#closed = true;
    const e = new Error(message);
    this.#onClose?.(e);
    this.peer.#fail(e);
  }

  #fail(e: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose?.(e);
  }
}

/**
 * Write every byte of the parts to a file descriptor with writev, synchronously: nothing is
 * buffered (so the caller's buffers are free on return) and a full pipe simply holds the writer
 * back. The remote does nothing else meanwhile, and the protocol's credits bound each write.
 */
export function writeFully(fd: number, parts: readonly Uint8Array[]): void {
  const queue = parts.filter((p) => p.byteLength > 0);
  while (queue.length > 0) {
    let n: number;
    try {
      n = writevSync(fd, queue);
    } catch (e) {
      // A descriptor someone made non-blocking: wait for the reader instead of spinning.
      if ((e as { code?: string }).code === "EAGAIN") {
        Bun.sleepSync(1);
        continue;
      }
      throw e;
    }
    while (n > 0) {
      const head = queue[0]!;
      if (n >= head.byteLength) {
        n -= head.byteLength;
        queue.shift();
      } else {
        queue[0] = head.subarray(n);
        n = 0;
      }
    }
  }
}

/** The remote's side: frames arrive on stdin and leave on stdout (written synchronously). */
export function stdioTransport(): Transport {
  let onCloseCb: ((error?: Error) => void) | undefined;
  let closed = false;
  const finish = (e?: Error) => {
    if (closed) return;
    closed = true;
    onCloseCb?.(e);
  };
  return {
    write(parts) {
      if (closed) return;
      try {
        writeFully(1, parts);
      } catch (e) {
        // The client went away while we were writing (EPIPE): the same as end-of-file.
        finish(e as Error);
      }
    },
    start(onData, onClose) {
      onCloseCb = onClose;
      process.stdin.on("data", (chunk: Uint8Array) => onData(chunk));
      process.stdin.on("end", () => finish());
      process.stdin.on("error", (e: Error) => finish(e));
      process.stdin.resume();
    },
    close() {
      finish();
      process.stdin.pause();
    },
  };
}
