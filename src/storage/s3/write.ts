/**
 * Writing an S3 object: a file that fits is one PUT on close (one chunk, or a file of known size up
 * to WHOLE_PUT_MAX: a WAL segment pushed by archive-push is one PUT even when it compresses to more
 * than a chunk). A larger one is a multipart upload: started before the first part, up to
 * PARTS_IN_FLIGHT parts uploading while the next fills (storage/object/chunked-write.ts does the
 * buffering), completed on close with the parts' ETags. An abort, a failed part or an `expect`
 * mismatch aborts the upload, so the engine keeps nothing.
 *
 * A write is durable when the PUT (or CompleteMultipartUpload) answers: no sync step follows.
 */
import { err } from "../../common/error.ts";
import { logDebug } from "../../common/log.ts";
import { ChunkedWrite } from "../object/chunked-write.ts";
import type { WriteOptions } from "../storage.ts";
import type { S3Http } from "./client.ts";
import { xmlEncode, xmlText } from "../http/xml.ts";

/** Parts of one upload sent at once. */
export const PARTS_IN_FLIGHT = 4;
/** Largest file held whole for one PUT when its size is known (the default WAL segment size). */
export const WHOLE_PUT_MAX = 16 * 1024 * 1024;

export class S3Write extends ChunkedWrite {
  readonly #client: S3Http;
  readonly #key: string;
  #uploadId: string | undefined;
  /** ETag of each part, by part number - 1. */
  readonly #etags: string[] = [];

  constructor(client: S3Http, key: string, path: string, chunkSize: number, opts: WriteOptions) {
    super(path, chunkSize, opts, { partsInFlight: PARTS_IN_FLIGHT, wholePutMax: WHOLE_PUT_MAX });
    this.#client = client;
    this.#key = key;
  }

  protected async putWhole(bytes: Uint8Array): Promise<void> {
    const res = await this.#client.request({ method: "PUT", key: this.#key, body: bytes, headers: this.#client.encryptionHeaders });
    await res.arrayBuffer();
  }

  /** CreateMultipartUpload: the parts need its id. */
  protected override async begin(): Promise<void> {
    const r = await this.#client.requestText({ method: "POST", key: this.#key, query: { uploads: "" }, headers: this.#client.encryptionHeaders });
    const id = xmlText(r.text, "UploadId");
    if (!id) throw err("ProtocolError", `${this.#client.describe({ method: "POST", key: this.#key })}: no UploadId in the answer to CreateMultipartUpload`);
    this.#uploadId = id;
  }

  protected async putChunk(bytes: Uint8Array, index: number): Promise<void> {
    const part = index + 1;
    const res = await this.#client.request({ method: "PUT", key: this.#key, query: { partNumber: String(part), uploadId: this.#uploadId! }, body: bytes });
    await res.arrayBuffer();
    const etag = res.headers.get("etag");
    if (!etag) throw err("ProtocolError", `${this.#client.describe({ method: "PUT", key: this.#key })}: part ${part} answered without an ETag`);
    this.#etags[index] = etag;
  }

  protected async commit(): Promise<void> {
    const parts = this.#etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${xmlEncode(e)}</ETag></Part>`).join("");
    const body = new TextEncoder().encode(`<CompleteMultipartUpload>${parts}</CompleteMultipartUpload>`);
    const r = await this.#client.requestText({ method: "POST", key: this.#key, query: { uploadId: this.#uploadId! }, body });
    // CompleteMultipartUpload may answer 200 and still fail: the error is in the body.
    const code = xmlText(r.text, "Code");
    if (code) throw err("ProtocolError", `${this.#client.describe({ method: "POST", key: this.#key })}: completing the multipart upload failed (${code}: ${xmlText(r.text, "Message") ?? ""})`);
    this.#uploadId = undefined;
    logDebug(`S3 multipart upload of '${this.#key}' in bucket '${this.#client.bucket}' completed: ${this.#etags.length} parts`);
  }

  /** AbortMultipartUpload (the base waited for the parts on their way first). */
  protected async discard(): Promise<void> {
    const id = this.#uploadId;
    this.#uploadId = undefined;
    if (id === undefined) return;
    const res = await this.#client.request({ method: "DELETE", key: this.#key, query: { uploadId: id }, accept: [404] });
    await res.arrayBuffer();
  }
}
