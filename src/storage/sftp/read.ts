/**
 * Reading a file over SFTP with requests kept in flight: one request per round trip would make
 * a file's read time its size / piece × the latency. Up to AHEAD pieces are asked for ahead of
 * what the caller has taken, into slots of one buffer the reader owns (so memory is bounded by
 * that buffer, whatever the file size), and handed to the filter pipeline in file order.
 *
 * A slot is asked for again only once nothing can still see its bytes: after the pipeline has
 * copied them, or at the next read() when the chunk handed out was a view of it.
 */
import { err } from "../../common/error.ts";
import type { FilterResult } from "../../filter/filter.ts";
import { Pipeline } from "../../filter/pipeline.ts";
import { bufferSizeFor, Collector } from "../collector.ts";
import type { ReadOptions, StorageRead } from "../storage.ts";
import type { SftpSession } from "./session.ts";

/** Bytes per read request (OpenSSH serves up to 255KiB; smaller pieces keep more in flight). */
export const PIECE = 64 * 1024;
/** Requests in flight at most: PIECE × AHEAD is the read buffer of a large file. */
const AHEAD = 16;

interface Pending {
  slot: number;
  offset: number;
  length: number;
  done: Promise<number>;
}

export class SftpRead implements StorageRead {
  readonly #s: SftpSession;
  readonly #path: string;
  #handle: Buffer | undefined;
  readonly #slots: Buffer[];
  readonly #free: number[];
  readonly #pending: Pending[] = [];
  /** Slot the last chunk handed out may be a view of: reused at the next read. */
  #held: number | undefined;
  readonly #pipeline: Pipeline;
  readonly #collector: Collector;
  /** Offset of the next request. */
  #next: number;
  /** Where reading stops: the end of the range asked for, or of the file as it was opened. */
  readonly #end: number;
  #done = false;

  constructor(session: SftpSession, path: string, handle: Buffer, opts: ReadOptions, fileSize: number) {
    this.#s = session;
    this.#path = path;
    this.#handle = handle;
    const start = opts.offset ?? 0;
    this.#end = Math.min(fileSize, start + (opts.limit ?? Number.POSITIVE_INFINITY));
    this.#next = start;
    const want = this.#end - start + 1;
    const slots = Math.max(1, Math.min(AHEAD, Math.ceil(want / PIECE)));
    const pieceSize = Math.min(PIECE, bufferSizeFor(want));
    // Its own ArrayBuffer (never a pooled one): the collector knows its views by their buffer.
    const own = Buffer.from(new ArrayBuffer(pieceSize * slots));
    this.#slots = Array.from({ length: slots }, (_, i) => own.subarray(i * pieceSize, (i + 1) * pieceSize));
    this.#free = this.#slots.map((_, i) => i);
    this.#collector = new Collector(own);
    this.#pipeline = new Pipeline(opts.filters ?? [], this.#collector.sink, bufferSizeFor(want, opts.bufferSize));
  }

  #ask(): void {
    while (this.#free.length > 0 && this.#next < this.#end && this.#handle) {
      const slot = this.#free.shift()!;
      const buf = this.#slots[slot]!;
      const length = Math.min(buf.byteLength, this.#end - this.#next);
      const offset = this.#next;
      const handle = this.#handle;
      const done = this.#s.request<number>((cb) => this.#s.sftp.read(handle, buf, 0, length, offset, (e, n) => cb(e, n)));
      // A failure is reported when its turn comes; until then it must not be unhandled.
      done.catch(() => {});
      this.#pending.push({ slot, offset, length, done });
      this.#next += length;
    }
  }

  /** Wait for every request still out (their slots are written until they answer), then forget them. */
  async #drain(): Promise<void> {
    for (const p of this.#pending.splice(0)) {
      await p.done.catch(() => {});
      this.#free.push(p.slot);
    }
  }

  async read(): Promise<Uint8Array | null> {
    if (this.#held !== undefined) {
      this.#free.push(this.#held);
      this.#held = undefined;
    }
    try {
      while (this.#collector.empty && !this.#done) {
        this.#ask();
        const head = this.#pending.shift();
        if (!head) {
          this.#pipeline.end();
          this.#done = true;
          break;
        }
        let n: number;
        try {
          n = await head.done;
        } catch (e) {
          this.#free.push(head.slot);
          throw this.#s.error(e, "read", this.#path);
        }
        if (n < head.length) {
          // Short read: the file ended early (n = 0: it shrank since it was opened), or the server
          // sent less than asked. Ask again from where it stopped, once the requests beyond are in.
          await this.#drain();
          this.#next = n === 0 ? this.#end : head.offset + n;
        }
        // A plain Uint8Array view, never a Buffer: callers copy a chunk with slice(), which on a
        // Buffer would be another view of the slot.
        const slot = this.#slots[head.slot]!;
        if (n > 0) this.#pipeline.process(new Uint8Array(slot.buffer, slot.byteOffset, n));
        if (this.#collector.empty) this.#free.push(head.slot);
        else this.#held = head.slot;
      }
    } catch (e) {
      await this.close();
      throw e;
    }
    return this.#collector.empty ? null : this.#collector.take();
  }

  results(): FilterResult[] {
    return this.#pipeline.results();
  }

  async close(): Promise<void> {
    const handle = this.#handle;
    if (handle === undefined) return;
    this.#handle = undefined;
    await this.#drain();
    if (!this.#done) this.#pipeline.free();
    if (!this.#s.broken) await this.#s.request((cb) => this.#s.sftp.close(handle, cb)).catch(() => {});
  }
}

/** Open `path` for reading; null when it is missing and the caller said so. */
export async function openSftpRead(s: SftpSession, path: string, opts: ReadOptions): Promise<SftpRead | null> {
  let handle: Buffer;
  try {
    handle = await s.request<Buffer>((cb) => s.sftp.open(path, "r", cb));
  } catch (e) {
    const pe = s.error(e, "open-read", path);
    if (pe.kind === "FileMissingError" && opts.ignoreMissing) return null;
    throw pe;
  }
  const st = await s.call<import("ssh2").Stats>("info", path, (cb) => s.sftp.fstat(handle, cb)).catch(async (e) => {
    await s.request((cb) => s.sftp.close(handle, cb)).catch(() => {});
    throw e;
  });
  if (st.isDirectory()) {
    await s.request((cb) => s.sftp.close(handle, cb)).catch(() => {});
    throw err("FileOpenError", `unable to open '${path}' for read: it is a directory`);
  }
  return new SftpRead(s, path, handle, opts, st.size);
}
