/**
 * Writing an object: complete or absent, never partial. The (filtered) bytes gather in a buffer of
 * repoN-storage-upload-chunk-size; a file that fits is one PUT on close. A larger one becomes a
 * multipart upload: each full chunk is uploaded as a part as soon as it fills (memory stays at one
 * chunk, plus the one write that overfilled it), and close completes the upload. An abort, a
 * failed part or an `expect` mismatch aborts the upload, so the engine keeps nothing.
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

export class S3Write implements StorageWrite {
  readonly #client: S3Http;
  readonly #key: string;
  /** The storage path (for messages). */
  readonly #path: string;
  readonly #opts: WriteOptions;
  readonly #chunkSize: number;
  readonly #pipeline: Pipeline;
  #buf: Uint8Array;
  #len = 0;
  #uploadId: string | undefined;
  readonly #etags: string[] = [];
  #closed = false;
  /** Most bytes held at once (tests check the bound). */
  peakBuffered = 0;

  constructor(client: S3Http, key: string, path: string, chunkSize: number, opts: WriteOptions) {
    this.#client = client;
    this.#key = key;
    this.#path = path;
    this.#opts = opts;
    this.#chunkSize = chunkSize;
    // A small file gets a small buffer; it grows up to the chunk size as bytes come.
    this.#buf = new Uint8Array(Math.min(chunkSize, Math.max(64 * 1024, (opts.sizeHint ?? 0) + 1)));
    this.#pipeline = new Pipeline(opts.filters ?? [], (out) => this.#append(out), opts.bufferSize ?? 1024 * 1024);
  }

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
    if (this.#closed) throw err("AssertError", `write to '${this.#path}' after close`);
    try {
      this.#pipeline.process(chunk);
      while (this.#len >= this.#chunkSize) await this.#uploadPart(this.#chunkSize);
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /** Upload the first `n` buffered bytes as the next part (starting the upload if need be). */
  async #uploadPart(n: number): Promise<void> {
    if (this.#uploadId === undefined) {
      const r = await this.#client.requestText({ method: "POST", key: this.#key, query: { uploads: "" }, headers: this.#client.encryptionHeaders });
      this.#uploadId = xmlText(r.text, "UploadId");
      if (!this.#uploadId) throw err("ProtocolError", `${this.#client.describe({ method: "POST", key: this.#key })}: no UploadId in the answer to CreateMultipartUpload`);
    }
    const part = this.#etags.length + 1;
    const res = await this.#client.request({ method: "PUT", key: this.#key, query: { partNumber: String(part), uploadId: this.#uploadId }, body: this.#buf.subarray(0, n) });
    await res.arrayBuffer();
    const etag = res.headers.get("etag");
    if (!etag) throw err("ProtocolError", `${this.#client.describe({ method: "PUT", key: this.#key })}: part ${part} answered without an ETag`);
    this.#etags.push(etag);
    this.#buf.copyWithin(0, n, this.#len);
    this.#len -= n;
  }

  async close(): Promise<FilterResult[]> {
    if (this.#closed) throw err("AssertError", `file '${this.#path}' is already closed`);
    try {
      this.#pipeline.end();
      while (this.#len >= this.#chunkSize) await this.#uploadPart(this.#chunkSize);
      checkExpected(this.#path, this.#pipeline.results(), this.#opts.expect);
      if (this.#uploadId === undefined) {
        const res = await this.#client.request({ method: "PUT", key: this.#key, body: this.#buf.subarray(0, this.#len), headers: this.#client.encryptionHeaders });
        await res.arrayBuffer();
      } else {
        if (this.#len > 0) await this.#uploadPart(this.#len);
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
    if (id !== undefined) {
      const res = await this.#client.request({ method: "DELETE", key: this.#key, query: { uploadId: id }, accept: [404] });
      await res.arrayBuffer();
    }
  }
}
