/**
 * What a driver's read hands out: the output of its filter pipeline for one read call (posix and
 * sftp read into one buffer of their own and run the pipeline over it).
 */
/** Smallest read/write buffer a driver sizes for a small file. */
export const MIN_BUFFER = 16 * 1024;
const DEFAULT_BUFFER = 1024 * 1024;

/**
 * The buffer for `want` bytes (a file's size + 1, or Infinity when unknown): small files get small
 * buffers, whole MIN_BUFFERs, never more than buffer-size. A 1MiB buffer (and codec buffers sized
 * from it) for every 8KiB relation file would be most of a backup's allocation work.
 */
export function bufferSizeFor(want: number, bufferSize = DEFAULT_BUFFER): number {
  return Math.min(bufferSize, Math.max(MIN_BUFFER, Math.ceil(want / MIN_BUFFER) * MIN_BUFFER));
}

/**
 * Collects what a pipeline emits for one read call, without allocating per chunk. A filter's
 * output view is valid only during the sink call (the filter reuses its buffer for the next
 * output, even within one process call), so it is copied into one accumulation buffer that the
 * reader keeps and reuses for every read (the chunk a read returns is valid until the next read,
 * as StorageRead promises). A view of the reader's own buffer (no filters, or only filters that
 * pass bytes through: sha1, size, page-checksum) stays valid until the next read as it is: when it
 * is the only part, it is handed out with no copy at all.
 */
export class Collector {
  readonly #own: ArrayBufferLike;
  #acc = new Uint8Array(0);
  #accLen = 0;
  #view: Uint8Array | undefined;

  constructor(own: Uint8Array) {
    this.#own = own.buffer;
  }

  readonly sink = (out: Uint8Array) => {
    if (out.byteLength === 0) return;
    if (out.buffer === this.#own && this.#accLen === 0 && this.#view === undefined) {
      this.#view = out;
      return;
    }
    if (this.#view !== undefined) {
      const v = this.#view;
      this.#view = undefined;
      this.#append(v);
    }
    this.#append(out);
  };

  #append(part: Uint8Array): void {
    const need = this.#accLen + part.byteLength;
    if (need > this.#acc.byteLength) {
      const grown = new Uint8Array(Math.max(need, this.#acc.byteLength * 2, MIN_BUFFER));
      grown.set(this.#acc.subarray(0, this.#accLen));
      this.#acc = grown;
    }
    this.#acc.set(part, this.#accLen);
    this.#accLen = need;
  }

  get empty(): boolean {
    return this.#view === undefined && this.#accLen === 0;
  }

  take(): Uint8Array {
    if (this.#view !== undefined) {
      const v = this.#view;
      this.#view = undefined;
      return v;
    }
    const out = this.#acc.subarray(0, this.#accLen);
    this.#accLen = 0;
    return out;
  }
}

