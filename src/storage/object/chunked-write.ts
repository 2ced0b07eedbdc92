/**
 * Writing an object in chunks, complete or absent: the (filtered) bytes gather in a buffer; a
 * file that fits is one upload on close. It fits when it is at most repoN-storage-upload-chunk-size,
 * or, for a driver that allows it (`wholePutMax`), at most its expected size (`sizeHint`) up to that
 * limit: S3 sends a WAL segment as one PUT even when it compresses to more than a chunk.
 *
 * A larger file is staged chunk by chunk and committed on close; before the commit the engine shows
 * no object under the key. Each full chunk is sent as soon as the next byte shows it is not the
 * last (GCS names the total size on the last chunk, so the last one always carries bytes), and the
 * filters go on filling the next chunk meanwhile: up to the driver's `partsInFlight` chunks upload at
 * once (fetch runs them on Bun's HTTP thread, overlapping compression on this one). A driver whose
 * chunks must arrive in order (GCS resumable) says 1: its chunks go one after the other, still
 * overlapping the filling of the next.
 *
 * Memory: the chunk buffers come from a pool of this write, at most partsInFlight + 1 buffers (one
 * filling, the others uploading), reused part after part rather than allocated per part. An abort,
 * a failed chunk or an `expect` mismatch waits for the chunks on their way (a part landing after the
 * abort would be kept by S3) and discards what was staged.
 *
 * A driver says how: S3 starts a multipart upload and completes it with the parts' ETags; Azure
 * stages blocks and commits a block list; GCS streams a resumable upload whose last chunk commits it.
 */
import { err } from "../../common/error.ts";
import type { FilterResult } from "../../filter/filter.ts";
import { Pipeline } from "../../filter/pipeline.ts";
import { checkExpected, type StorageWrite, type WriteOptions } from "../storage.ts";

/** How a driver's staged upload may go. */
export interface ChunkedWriteLimits {
  /** Chunks uploading at once (1: strictly one after the other). */
  partsInFlight: number;
  /** Largest file held whole for one upload when its size is known (`sizeHint`); 0: one chunk. */
  wholePutMax?: number;
}

export abstract class ChunkedWrite implements StorageWrite {
  /** The storage path (for messages). */
  protected readonly path: string;
  readonly #opts: WriteOptions;
  readonly #chunkSize: number;
  /** Up to this many bytes the file is still one upload. */
  readonly #putLimit: number;
  /** Most chunks uploading at once. */
  readonly maxPartsInFlight: number;
  readonly #pipeline: Pipeline;
  /** The buffer filling now, and its bytes. */
  #buf: Uint8Array;
  #len = 0;
  /** Chunk buffers not in use (returned by answered chunks), and how many buffers exist. */
  readonly #free: Uint8Array[] = [];
  #buffers = 1;
  /** begin() was called: from then on an abort discards. */
  #begun = false;
  /** Chunks staged (started) so far, and their bytes. */
  #chunks = 0;
  #staged = 0;
  readonly #inFlight = new Set<Promise<void>>();
  /** Bytes of the chunks uploading. */
  #inFlightBytes = 0;
  /** The first chunk that failed (every later step rethrows it). */
  #failure: unknown;
  #closed = false;
  /** Most bytes held at once, filling and uploading (tests check the bound). */
  peakBuffered = 0;
  /** Most chunks uploading at once (tests check they overlap, and the bound). */
  peakParts = 0;
  /** Most chunk buffers existing at once (tests check the pool: at most partsInFlight + 1). */
  peakBuffers = 1;

  /** Chunks uploading now. */
  get partsInFlight(): number {
    return this.#inFlight.size;
  }

  constructor(path: string, chunkSize: number, opts: WriteOptions, limits: ChunkedWriteLimits) {
    this.path = path;
    this.#opts = opts;
    this.#chunkSize = chunkSize;
    this.maxPartsInFlight = Math.max(1, limits.partsInFlight);
    this.#putLimit = Math.max(chunkSize, Math.min(opts.sizeHint ?? 0, limits.wholePutMax ?? 0));
    // A small file gets a small buffer; it grows as bytes come.
    this.#buf = new Uint8Array(Math.min(this.#putLimit, Math.max(64 * 1024, (opts.sizeHint ?? 0) + 1)));
    this.#pipeline = new Pipeline(opts.filters ?? [], (out) => this.#append(out), opts.bufferSize ?? 1024 * 1024);
  }

  /** The whole object in one request (it fitted). */
  protected abstract putWhole(bytes: Uint8Array): Promise<void>;
  /** Before the first chunk, awaited (S3 starts its multipart upload, GCS opens its session). */
  protected async begin(): Promise<void> {}
  /**
   * Stage chunk number `index` (0-based), which starts at object byte `offset`; `last` when no
   * more follow. Up to partsInFlight run at once: a driver keeps per-chunk results by index.
   */
  protected abstract putChunk(bytes: Uint8Array, index: number, offset: number, last: boolean): Promise<void>;
  /** Make the staged chunks the object (after every chunk answered). */
  protected abstract commit(chunks: number, size: number): Promise<void>;
  /** Forget staged chunks (the object was never committed); called after begin(), even a failed one. */
  protected abstract discard(): Promise<void>;

  #append(out: Uint8Array): void {
    const need = this.#len + out.byteLength;
    if (need > this.#buf.byteLength) {
      // Before staging the buffer may grow to the whole-upload limit, after that to a chunk (and
      // past either by the one output that overfilled it).
      const cap = this.#begun ? this.#chunkSize : this.#putLimit;
      const grown = new Uint8Array(Math.max(need, Math.min(cap, this.#buf.byteLength * 2)));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(out, this.#len);
    this.#len = need;
    this.peakBuffered = Math.max(this.peakBuffered, this.#len + this.#inFlightBytes);
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#closed) throw err("AssertError", `write to '${this.path}' after close`);
    try {
      this.#pipeline.process(chunk);
      await this.#stageFull();
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /** Still one upload while the file fits; past that, every chunk known not to be the last goes. */
  async #stageFull(): Promise<void> {
    if (!this.#begun && this.#len <= this.#putLimit) return;
    while (this.#len > this.#chunkSize) await this.#stage(this.#chunkSize, false);
  }

  /**
   * Start uploading the first `n` buffered bytes as the next chunk (beginning the upload if need
   * be), once fewer than partsInFlight are on their way. The chunk keeps its buffer until it
   * answers; the remainder moves to a buffer from the pool.
   */
  async #stage(n: number, last: boolean): Promise<void> {
    if (!this.#begun) {
      this.#begun = true;
      // Awaited: the chunks need what it starts, and a failure to start is the write's own.
      await this.begin();
    }
    while (this.#inFlight.size >= this.maxPartsInFlight) await Promise.race(this.#inFlight);
    if (this.#failure !== undefined) throw this.#failure;
    const body = this.#buf;
    const rest = this.#len - n;
    const next = this.#take(rest);
    next.set(body.subarray(n, this.#len));
    this.#buf = next;
    this.#len = rest;
    const index = this.#chunks++;
    const offset = this.#staged;
    this.#staged += n;
    this.#inFlightBytes += n;
    const p: Promise<void> = this.putChunk(body.subarray(0, n), index, offset, last)
      .catch((e: unknown) => {
        this.#failure ??= e;
      })
      .finally(() => {
        this.#inFlight.delete(p);
        this.#inFlightBytes -= n;
        // Answered: fetch is done with the bytes, the buffer can take the next chunk.
        this.#free.push(body);
      });
    this.#inFlight.add(p);
    this.peakParts = Math.max(this.peakParts, this.#inFlight.size);
  }

  /**
   * A buffer for the next chunk holding at least `rest` bytes. Called with fewer than partsInFlight
   * chunks uploading, so at most partsInFlight buffers are in use and the pool never needs more
   * than partsInFlight + 1.
   */
  #take(rest: number): Uint8Array {
    const size = Math.max(this.#chunkSize, rest);
    const pooled = this.#free.pop();
    // A pooled buffer is at least a chunk; only a remainder past a chunk (one overfilling output) needs a larger one.
    if (pooled !== undefined && pooled.byteLength >= size) return pooled;
    if (pooled === undefined) this.peakBuffers = Math.max(this.peakBuffers, ++this.#buffers);
    return new Uint8Array(size);
  }

  /** Wait for every chunk on its way; the first failure is thrown. */
  async #settle(): Promise<void> {
    while (this.#inFlight.size) await Promise.race(this.#inFlight);
    if (this.#failure !== undefined) throw this.#failure;
  }

  async close(): Promise<FilterResult[]> {
    if (this.#closed) throw err("AssertError", `file '${this.path}' is already closed`);
    try {
      this.#pipeline.end();
      await this.#stageFull();
      checkExpected(this.path, this.#pipeline.results(), this.#opts.expect);
      if (!this.#begun) await this.putWhole(this.#buf.subarray(0, this.#len));
      else {
        // Strictly more than a chunk was staged each time, so the last chunk carries bytes.
        await this.#stage(this.#len, true);
        await this.#settle();
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
    this.#free.length = 0;
  }

  async abort(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#pipeline.free();
    // Chunks still uploading would otherwise land after the discard (and S3 would keep the parts).
    while (this.#inFlight.size) await Promise.race(this.#inFlight);
    this.#release();
    if (this.#begun) await this.discard();
  }
}
