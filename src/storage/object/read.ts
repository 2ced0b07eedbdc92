/**
 * Reading an object from any HTTP object store: one streamed GET (a Range for offset/limit),
 * through the read's filters. A connection lost or stalled mid-body is resumed with a Range from
 * the next byte, pinned to the same object version by its ETag (If-Match), up to the retry
 * policy's count; each resume is logged. The driver supplies how to (re)open a GET.
 */
import { err, PgbError } from "../../common/error.ts";
import { logWarn } from "../../common/log.ts";
import type { FilterResult } from "../../filter/filter.ts";
import { Pipeline } from "../../filter/pipeline.ts";
import { concatBytes } from "../../common/bytes.ts";
import type { ReadOptions, StorageRead } from "../storage.ts";
import { backoffMs, DEFAULT_RETRY, type RetryPolicy, timeout } from "../http/retry.ts";

export interface ObjectSource {
  /** "S3", "Azure": starts each log line. */
  service: string;
  /** "GET 'key' in bucket 'b'": names the object in messages. */
  what: string;
  ioTimeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** GET from `offset` (at most `limit` bytes), only of the version `pin` names; null when it is gone. */
  reopen(offset: number, limit: number | undefined, pin: string | undefined): Promise<Response | null>;
  /** What names the version read (default: the ETag; GCS: the generation). */
  pinOf?(res: Response): string | undefined;
}

export class ObjectRead implements StorageRead {
  readonly #src: ObjectSource;
  readonly #pipeline: Pipeline;
  readonly #out: Uint8Array[] = [];
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  readonly #etag: string | undefined;
  /** Next object byte to read (for a resume). */
  #position: number;
  #remaining: number | undefined;
  #resumes = 0;
  #done = false;

  /** `res` is the answer to the first GET (2xx, or 416 when the range starts past the end). */
  constructor(src: ObjectSource, res: Response, opts: ReadOptions) {
    this.#src = src;
    this.#etag = src.pinOf ? src.pinOf(res) : (res.headers.get("etag") ?? undefined);
    this.#position = opts.offset ?? 0;
    this.#remaining = opts.limit;
    // 416: the range starts past the end: nothing to read.
    if (res.status === 416 || opts.limit === 0) {
      void res.body?.cancel();
      this.#reader = undefined;
    } else this.#reader = res.body?.getReader() as ReadableStreamDefaultReader<Uint8Array> | undefined;
    this.#pipeline = new Pipeline(opts.filters ?? [], (b) => this.#out.push(b.slice()), opts.bufferSize ?? 1024 * 1024);
  }

  async read(): Promise<Uint8Array | null> {
    try {
      while (this.#out.length === 0 && !this.#done) {
        const chunk = this.#reader ? await this.#next() : null;
        if (chunk === null) {
          this.#pipeline.end();
          this.#done = true;
          break;
        }
        this.#position += chunk.byteLength;
        if (this.#remaining !== undefined) this.#remaining -= chunk.byteLength;
        this.#pipeline.process(chunk);
      }
    } catch (e) {
      await this.close();
      throw e;
    }
    if (this.#out.length === 0) return null;
    const parts = this.#out.splice(0);
    return parts.length === 1 ? parts[0]! : concatBytes(parts);
  }

  /** The next body chunk, resuming the GET after a lost or stalled connection. */
  async #next(): Promise<Uint8Array | null> {
    const ms = this.#src.ioTimeoutMs ?? 60_000;
    const policy = { ...DEFAULT_RETRY, ...this.#src.retry };
    for (;;) {
      try {
        const r = await timeout(this.#reader!.read(), ms, () => `no data within ${ms / 1000}s`);
        return r.done ? null : r.value;
      } catch (e) {
        if (e instanceof PgbError) throw e;
        const what = `${this.#src.what}: body interrupted at byte ${this.#position}: ${(e as Error).message}`;
        if (this.#resumes >= policy.retries) throw err("FileReadError", `${what} (gave up after ${this.#resumes} resumes)`);
        this.#resumes++;
        void this.#reader!.cancel().catch(() => {});
        const delay = backoffMs(policy, this.#resumes);
        logWarn(`${this.#src.service} ${what}: resume ${this.#resumes} of ${policy.retries} in ${delay}ms`);
        await Bun.sleep(delay);
        if (this.#remaining === 0) return null;
        const res = await this.#src.reopen(this.#position, this.#remaining, this.#etag);
        if (!res || res.status === 416) throw err("FileReadError", `${what}: the object is gone or changed since the read began`);
        this.#reader = res.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
      }
    }
  }

  results(): FilterResult[] {
    return this.#pipeline.results();
  }

  async close(): Promise<void> {
    const r = this.#reader;
    this.#reader = undefined;
    if (r) await r.cancel().catch(() => {});
    if (!this.#done) {
      this.#done = true;
      this.#pipeline.free();
    }
  }
}

/** The headers of a ranged, version-pinned GET: Range for offset/limit, If-Match for the ETag. */
export function rangeHeaders(offset: number, limit: number | undefined, etag?: string): Record<string, string> {
  const headers: Record<string, string> = {};
  if (offset > 0 || limit !== undefined) headers.range = `bytes=${offset}-${limit === undefined ? "" : offset + limit - 1}`;
  if (etag) headers["if-match"] = etag;
  return headers;
}

/** 404 means the object is missing: drain the answer and say so with null. */
export async function unlessMissing(res: Response): Promise<Response | null> {
  if (res.status !== 404) return res;
  await res.arrayBuffer();
  return null;
}
