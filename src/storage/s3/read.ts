/**
 * Reading an object: one streamed GET (a Range for offset/limit), through the read's filters. A
 * connection lost or stalled mid-body is resumed with a Range from the next byte, pinned to the
 * same object version by If-Match on its ETag, up to the retry policy's count; each resume is
 * logged.
 */
import { err, PgbError } from "../../common/error.ts";
import { logWarn } from "../../common/log.ts";
import type { FilterResult } from "../../filter/filter.ts";
import { Pipeline } from "../../filter/pipeline.ts";
import { concatBytes } from "../../common/bytes.ts";
import type { ReadOptions, StorageRead } from "../storage.ts";
import { timeout, type S3Http } from "./client.ts";
import { backoffMs, DEFAULT_RETRY } from "./retry.ts";

/** Open a GET of key from `offset`; null when the object is missing (404). */
export async function openObject(client: S3Http, key: string, offset: number, limit: number | undefined, etag?: string): Promise<Response | null> {
  const headers: Record<string, string> = {};
  if (offset > 0 || limit !== undefined) headers.range = `bytes=${offset}-${limit === undefined ? "" : offset + limit - 1}`;
  if (etag) headers["if-match"] = etag;
  const res = await client.request({ method: "GET", key, headers, accept: [404, 416] });
  if (res.status === 404) {
    await res.arrayBuffer();
    return null;
  }
  return res;
}

export class S3Read implements StorageRead {
  readonly #client: S3Http;
  readonly #key: string;
  readonly #pipeline: Pipeline;
  readonly #out: Uint8Array[] = [];
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  readonly #etag: string | undefined;
  /** Next object byte to read (for a resume). */
  #position: number;
  #remaining: number | undefined;
  #resumes = 0;
  #done = false;

  constructor(client: S3Http, key: string, res: Response, opts: ReadOptions) {
    this.#client = client;
    this.#key = key;
    this.#etag = res.headers.get("etag") ?? undefined;
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
    const ms = this.#client.settings.ioTimeoutMs ?? 60_000;
    const policy = { ...DEFAULT_RETRY, ...this.#client.settings.retry };
    for (;;) {
      try {
        const r = await timeout(this.#reader!.read(), ms, () => `no data within ${ms / 1000}s`);
        return r.done ? null : r.value;
      } catch (e) {
        if (e instanceof PgbError) throw e;
        const what = `${this.#client.describe({ method: "GET", key: this.#key })}: body interrupted at byte ${this.#position}: ${(e as Error).message}`;
        if (this.#resumes >= policy.retries) throw err("FileReadError", `${what} (gave up after ${this.#resumes} resumes)`);
        this.#resumes++;
        void this.#reader!.cancel().catch(() => {});
        const delay = backoffMs(policy, this.#resumes);
        logWarn(`S3 ${what}: resume ${this.#resumes} of ${policy.retries} in ${delay}ms`);
        await Bun.sleep(delay);
        if (this.#remaining === 0) return null;
        const res = await openObject(this.#client, this.#key, this.#position, this.#remaining, this.#etag);
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
