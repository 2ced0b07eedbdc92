/**
 * Writing a GCS object: a file that fits in one chunk is one media upload; a larger one is a
 * resumable upload: a session is opened, each full chunk is sent with its Content-Range as it
 * fills (GCS wants multiples of 256 KiB but for the last), strictly one after the other (a session
 * takes its bytes in order: one chunk in flight while the next fills), and the last chunk, which
 * names the total size, makes the object. Before it, no object exists under the
 * name; an aborted write cancels the session (DELETE of the upload).
 */
import { err } from "../../common/error.ts";
import { logDebug } from "../../common/log.ts";
import { ChunkedWrite } from "../object/chunked-write.ts";
import type { WriteOptions } from "../storage.ts";
import type { GcsHttp } from "./client.ts";

export class GcsWrite extends ChunkedWrite {
  readonly #client: GcsHttp;
  readonly #key: string;
  #uploadId: string | undefined;

  constructor(client: GcsHttp, key: string, path: string, chunkSize: number, opts: WriteOptions) {
    super(path, chunkSize, opts, { partsInFlight: 1 });
    this.#client = client;
    this.#key = key;
  }

  protected async putWhole(bytes: Uint8Array): Promise<void> {
    const res = await this.#client.request({ method: "POST", object: "", upload: true, query: { uploadType: "media", name: this.#key }, body: bytes, headers: { "content-type": "application/octet-stream" } });
    await res.arrayBuffer();
  }

  /** Open the resumable session the chunks go to. */
  protected override async begin(): Promise<void> {
    const r = await this.#client.request({ method: "POST", object: "", upload: true, query: { uploadType: "resumable", name: this.#key } });
    await r.arrayBuffer();
    this.#uploadId = r.headers.get("x-guploader-uploadid") ?? new URL(r.headers.get("location") ?? "http://x/").searchParams.get("upload_id") ?? undefined;
    if (!this.#uploadId) throw err("ProtocolError", `${this.#client.describe({ method: "POST", object: this.#key })}: no upload id in the answer to a resumable upload`);
  }

  protected async putChunk(bytes: Uint8Array, _index: number, offset: number, last: boolean): Promise<void> {
    const end = offset + bytes.byteLength;
    // A chunk that is not the last must be acknowledged with 308 (Resume Incomplete).
    const res = await this.#client.request({
      method: "PUT", object: "", upload: true, query: { uploadType: "resumable", name: this.#key, upload_id: this.#uploadId! },
      headers: { "content-range": `bytes ${offset}-${end - 1}/${last ? end : "*"}` }, body: bytes, accept: [308],
    });
    await res.arrayBuffer();
    if (last !== (res.status !== 308)) throw err("ProtocolError", `${this.#client.describe({ method: "PUT", object: this.#key })}: chunk at ${offset} answered HTTP ${res.status}, expected ${last ? "200" : "308"}`);
  }

  protected async commit(chunks: number, size: number): Promise<void> {
    logDebug(`GCS resumable upload of '${this.#key}' in bucket '${this.#client.bucket}' completed: ${chunks} chunks, ${size} bytes`);
  }

  protected async discard(): Promise<void> {
    const id = this.#uploadId;
    this.#uploadId = undefined;
    if (id === undefined) return;
    // 499 is GCS's answer to a cancelled session.
    const res = await this.#client.request({ method: "DELETE", object: "", upload: true, query: { uploadType: "resumable", name: this.#key, upload_id: id }, accept: [404, 410, 499] });
    await res.arrayBuffer();
  }
}
