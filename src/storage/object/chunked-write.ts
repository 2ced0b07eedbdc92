/**
 * Writing an object in chunks, complete or absent: the (filtered) bytes gather in a buffer of
 * repoN-storage-upload-chunk-size; a file that fits is one upload on close. A larger one is
 * staged chunk by chunk as each fills (memory stays at one chunk, plus the one write that
 * overfilled it) and committed on close; before the commit the engine shows no object under the
 * key. An abort, a failed chunk or an `expect` mismatch discards what was staged.
 *
 * A driver says how: Azure stages blocks and commits a block list; GCS streams a resumable
 * upload whose last chunk commits it. (S3's multipart write is s3/write.ts.)
 */
import { err } from "../../common/error.ts";
import type { FilterResult } from "../../filter/filter.ts";
import { Pipeline } from "../../filter/pipeline.ts";
import { checkExpected, type StorageWrite, type WriteOptions } from "../storage.ts";

export abstract class ChunkedWrite implements StorageWrite {
  /** The storage path (for messages). */
  protected readonly path: string;
  readonly #opts: WriteOptions;
  readonly #chunkSize: number;
  readonly #pipeline: Pipeline;
  #buf: Uint8Array;
  #len = 0;
  /** Chunks staged so far, and their bytes. */
  #chunks = 0;
  #staged = 0;
  #closed = false;
  /** Most bytes held at once (tests check the bound). */
  peakBuffered = 0;

  constructor(path: string, chunkSize: number, opts: WriteOptions) {
    this.path = path;
    this.#opts = opts;
    this.#chunkSize = chunkSize;
    // A small file gets a small buffer; it grows up to the chunk size as bytes come.
    this.#buf = new Uint8Array(Math.min(chunkSize, Math.max(64 * 1024, (opts.sizeHint ?? 0) + 1)));
    this.#pipeline = new Pipeline(opts.filters ?? [], (out) => this.#append(out), opts.bufferSize ?? 1024 * 1024);
  }

  /** The whole object in one request (it fitted in one chunk). */
  protected abstract putWhole(bytes: Uint8Array): Promise<void>;
  /** Stage chunk number `index` (0-based), which starts at object byte `offset`; `last` when no more follow. */
  protected abstract putChunk(bytes: Uint8Array, index: number, offset: number, last: boolean): Promise<void>;
  /** Make the staged chunks the object (after the last one was staged). */
  protected abstract commit(chunks: number, size: number): Promise<void>;
  /** Forget staged chunks (the object was never committed). */
  protected abstract discard(): Promise<void>;

  #append(out: Uint8Array): void {
    const need = this.#len + out.byteLength;
    if (need > this.#buf.byteLength) {
      const grown = new Uint8Array(Math.max(need, Math.min(this.#chunkSize, this.#buf.byteLength * 2)));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(out, this.#len);
    this.#len = need;
    this.peakBuffered = Math.max(this.peakBuffered, this.#len);
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#closed) throw err("AssertError", `write to '${this.path}' after close`);
    try {
      this.#pipeline.process(chunk);
      // Strictly more than a chunk: the last chunk must carry bytes (GCS ends on it).
      while (this.#len > this.#chunkSize) await this.#stage(this.#chunkSize, false);
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  async #stage(n: number, last: boolean): Promise<void> {
    await this.putChunk(this.#buf.subarray(0, n), this.#chunks, this.#staged, last);
    this.#chunks++;
    this.#staged += n;
    this.#buf.copyWithin(0, n, this.#len);
    this.#len -= n;
  }

  async close(): Promise<FilterResult[]> {
    if (this.#closed) throw err("AssertError", `file '${this.path}' is already closed`);
    try {
      this.#pipeline.end();
      while (this.#len > this.#chunkSize) await this.#stage(this.#chunkSize, false);
      checkExpected(this.path, this.#pipeline.results(), this.#opts.expect);
      if (this.#chunks === 0) await this.putWhole(this.#buf.subarray(0, this.#len));
      else {
        await this.#stage(this.#len, true);
        await this.commit(this.#chunks, this.#staged);
      }
    } catch (e) {
      await this.abort();
      throw e;
    }
    this.#closed = true;
    this.#release();
    return this.#pipeline.results();
  }

  #release(): void {
    this.#buf = new Uint8Array(0);
    this.#len = 0;
  }

  async abort(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#pipeline.free();
    this.#release();
    if (this.#chunks > 0) await this.discard();
  }
}
