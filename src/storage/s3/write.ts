/**
 * Writing an object: complete or absent, never partial. The (filtered) bytes gather in a buffer; a
 * file that fits is one PUT on close. A file fits when it is at most repoN-storage-upload-chunk-size,
 * or at most its expected size (`sizeHint`) up to WHOLE_PUT_MAX: a WAL segment pushed by
 * archive-push is one PUT even when it compresses to more than a chunk.
 *
 * A larger file becomes a multipart upload. Each full chunk is sent as a part as soon as it fills
 * and the filters go on producing the next one meanwhile: up to PARTS_IN_FLIGHT parts upload at
 * once (fetch runs them on Bun's HTTP thread, overlapping compression on this one), so memory stays
 * at about (PARTS_IN_FLIGHT + 1) chunks. Close sends the last part, waits for all and completes the
 * upload. An abort, a failed part or an `expect` mismatch aborts the upload, so the engine keeps
 * nothing.
 *
 * A write is durable when the PUT (or CompleteMultipartUpload) answers: no sync step follows.
 */
import { err } from "../../common/error.ts";
import { logDebug } from "../../common/log.ts";
import type { FilterResult } from "../../filter/filter.ts";
import { Pipeline } from "../../filter/pipeline.ts";
import { checkExpected, type StorageWrite, type WriteOptions } from "../storage.ts";
import type { S3Http } from "./client.ts";
import { xmlEncode, xmlText } from "../http/xml.ts";

/** Parts of one upload sent at once. */
export const PARTS_IN_FLIGHT = 4;
/** Largest file held whole for one PUT when its size is known (the default WAL segment size). */
export const WHOLE_PUT_MAX = 16 * 1024 * 1024;

export class S3Write implements StorageWrite {
  readonly #client: S3Http;
  readonly #key: string;
  /** The storage path (for messages). */
  readonly #path: string;
  readonly #opts: WriteOptions;
  readonly #chunkSize: number;
  /** Up to this many bytes the file is still one PUT. */
  readonly #putLimit: number;
  readonly #pipeline: Pipeline;
  #buf: Uint8Array;
  #len = 0;
  #uploadId: string | undefined;
  /** ETag of each part, by part number - 1. */
  readonly #etags: string[] = [];
  #parts = 0;
  readonly #inFlight = new Set<Promise<void>>();
  /** Bytes of the parts being uploaded. */
  #inFlightBytes = 0;
  /** The first part that failed (every later step rethrows it). */
  #failure: unknown;
  #closed = false;
  /** Most bytes held at once, buffered and uploading (tests check the bound). */
  peakBuffered = 0;
  /** Most parts uploading at once (tests check they overlap, and the bound). */
  peakParts = 0;

  /** Parts uploading now. */
  get partsInFlight(): number {
    return this.#inFlight.size;
  }

  constructor(client: S3Http, key: string, path: string, chunkSize: number, opts: WriteOptions) {
    this.#client = client;
    this.#key = key;
    this.#path = path;
    this.#opts = opts;
    this.#chunkSize = chunkSize;
    this.#putLimit = Math.max(chunkSize, Math.min(opts.sizeHint ?? 0, WHOLE_PUT_MAX));
    // A small file gets a small buffer; it grows as bytes come.
    this.#buf = new Uint8Array(Math.min(this.#putLimit, Math.max(64 * 1024, (opts.sizeHint ?? 0) + 1)));
    this.#pipeline = new Pipeline(opts.filters ?? [], (out) => this.#append(out), opts.bufferSize ?? 1024 * 1024);
  }

  #append(out: Uint8Array): void {
    const need = this.#len + out.byteLength;
    if (need > this.#buf.byteLength) {
      const cap = this.#uploadId === undefined ? this.#putLimit : this.#chunkSize;
      const grown = new Uint8Array(Math.max(need, Math.min(cap, this.#buf.byteLength * 2)));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(out, this.#len);
    this.#len = need;
    this.peakBuffered = Math.max(this.peakBuffered, this.#len + this.#inFlightBytes);
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#closed) throw err("AssertError", `write to '${this.#path}' after close`);
    try {
      this.#pipeline.process(chunk);
      // Still one PUT while the file fits; past that, every full chunk goes up as a part.
      if (this.#uploadId !== undefined || this.#len > this.#putLimit) await this.#sendFullChunks();
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  async #sendFullChunks(): Promise<void> {
    while (this.#len >= this.#chunkSize) await this.#sendPart(this.#chunkSize);
  }

  /**
   * Start uploading the first `n` buffered bytes as the next part (starting the upload if need
   * be), once fewer than PARTS_IN_FLIGHT are on their way. The part's bytes leave the buffer: the
   * remainder moves to a new one, the part's memory goes when its upload answers.
   */
  async #sendPart(n: number): Promise<void> {
    // Started once, and awaited: the parts need its id, and a failure to start is the write's own.
    this.#uploadId ??= await this.#create();
    while (this.#inFlight.size >= PARTS_IN_FLIGHT) await Promise.race(this.#inFlight);
    if (this.#failure !== undefined) throw this.#failure;
    const body = this.#buf.subarray(0, n);
    const rest = new Uint8Array(Math.max(this.#chunkSize, this.#len - n));
    rest.set(this.#buf.subarray(n, this.#len));
    this.#buf = rest;
    this.#len -= n;
    const part = ++this.#parts;
    this.#inFlightBytes += n;
    const p: Promise<void> = this.#upload(part, body)
      .catch((e: unknown) => {
        this.#failure ??= e;
      })
      .finally(() => {
        this.#inFlight.delete(p);
        this.#inFlightBytes -= n;
      });
    this.#inFlight.add(p);
    this.peakParts = Math.max(this.peakParts, this.#inFlight.size);
  }

  async #create(): Promise<string> {
    const r = await this.#client.requestText({ method: "POST", key: this.#key, query: { uploads: "" }, headers: this.#client.encryptionHeaders });
    const id = xmlText(r.text, "UploadId");
    if (!id) throw err("ProtocolError", `${this.#client.describe({ method: "POST", key: this.#key })}: no UploadId in the answer to CreateMultipartUpload`);
    return id;
  }

  async #upload(part: number, body: Uint8Array): Promise<void> {
    const res = await this.#client.request({ method: "PUT", key: this.#key, query: { partNumber: String(part), uploadId: this.#uploadId! }, body });
    await res.arrayBuffer();
    const etag = res.headers.get("etag");
    if (!etag) throw err("ProtocolError", `${this.#client.describe({ method: "PUT", key: this.#key })}: part ${part} answered without an ETag`);
    this.#etags[part - 1] = etag;
  }

  /** Wait for every part on its way; the first failure is thrown. */
  async #settle(): Promise<void> {
    while (this.#inFlight.size) await Promise.race(this.#inFlight);
    if (this.#failure !== undefined) throw this.#failure;
  }

  async close(): Promise<FilterResult[]> {
    if (this.#closed) throw err("AssertError", `file '${this.#path}' is already closed`);
    try {
      this.#pipeline.end();
      if (this.#uploadId !== undefined || this.#len > this.#putLimit) await this.#sendFullChunks();
      checkExpected(this.#path, this.#pipeline.results(), this.#opts.expect);
      if (this.#uploadId === undefined) {
        const res = await this.#client.request({ method: "PUT", key: this.#key, body: this.#buf.subarray(0, this.#len), headers: this.#client.encryptionHeaders });
        await res.arrayBuffer();
      } else {
        if (this.#len > 0) await this.#sendPart(this.#len);
        await this.#settle();
        await this.#complete();
      }
    } catch (e) {
      await this.abort();
      throw e;
    }
    this.#closed = true;
    this.#release();
    return this.#pipeline.results();
  }

  async #complete(): Promise<void> {
    const parts = this.#etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${xmlEncode(e)}</ETag></Part>`).join("");
    const body = new TextEncoder().encode(`<CompleteMultipartUpload>${parts}</CompleteMultipartUpload>`);
    const r = await this.#client.requestText({ method: "POST", key: this.#key, query: { uploadId: this.#uploadId! }, body });
    // CompleteMultipartUpload may answer 200 and still fail: the error is in the body.
    const code = xmlText(r.text, "Code");
    if (code) throw err("ProtocolError", `${this.#client.describe({ method: "POST", key: this.#key })}: completing the multipart upload failed (${code}: ${xmlText(r.text, "Message") ?? ""})`);
    logDebug(`S3 multipart upload of '${this.#key}' in bucket '${this.#client.bucket}' completed: ${this.#etags.length} parts`);
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
    const id = this.#uploadId;
    this.#uploadId = undefined;
    if (id === undefined) return;
    // Parts still uploading would otherwise land after the abort and be kept by the engine.
    while (this.#inFlight.size) await Promise.race(this.#inFlight);
    const res = await this.#client.request({ method: "DELETE", key: this.#key, query: { uploadId: id }, accept: [404] });
    await res.arrayBuffer();
  }
}
