/**
 * Writing a block blob: a file that fits in one chunk is one Put Blob; a larger one is staged as
 * blocks (Put Block, up to BLOCKS_IN_FLIGHT at once while the next fills: a block list names its
 * blocks in order whatever order they were staged in) and made the blob by Put Block List on close. Until
 * that commit the blob does not exist (or keeps its old content); staged blocks that are never
 * committed are dropped by the service (after a week), so an aborted write leaves nothing.
 */
import { logDebug } from "../../common/log.ts";
import { ChunkedWrite } from "../object/chunked-write.ts";
import type { WriteOptions } from "../storage.ts";
import type { AzureHttp } from "./client.ts";

/** Blocks of one blob staged at once. */
export const BLOCKS_IN_FLIGHT = 4;

export class AzureWrite extends ChunkedWrite {
  readonly #client: AzureHttp;
  readonly #key: string;
  /** Block ids must all have one length within a blob: a per-write random stem + a fixed-width index. */
  readonly #stem = crypto.randomUUID().slice(0, 8);
  /** Block id of each block, by index (blocks answer in any order). */
  readonly #ids: string[] = [];

  constructor(client: AzureHttp, key: string, path: string, chunkSize: number, opts: WriteOptions) {
    super(path, chunkSize, opts, { partsInFlight: BLOCKS_IN_FLIGHT });
    this.#client = client;
    this.#key = key;
  }

  protected async putWhole(bytes: Uint8Array): Promise<void> {
    const res = await this.#client.request({ method: "PUT", blob: this.#key, body: bytes, headers: { "x-ms-blob-type": "BlockBlob" } });
    await res.arrayBuffer();
  }

  protected async putChunk(bytes: Uint8Array, index: number): Promise<void> {
    const id = Buffer.from(`${this.#stem}-${String(index).padStart(6, "0")}`).toString("base64");
    const res = await this.#client.request({ method: "PUT", blob: this.#key, query: { comp: "block", blockid: id }, body: bytes });
    await res.arrayBuffer();
    this.#ids[index] = id;
  }

  protected async commit(chunks: number): Promise<void> {
    const xml = `<?xml version="1.0" encoding="utf-8"?><BlockList>${this.#ids.map((id) => `<Latest>${id}</Latest>`).join("")}</BlockList>`;
    const res = await this.#client.request({ method: "PUT", blob: this.#key, query: { comp: "blocklist" }, body: new TextEncoder().encode(xml) });
    await res.arrayBuffer();
    logDebug(`Azure block list of '${this.#key}' in container '${this.#client.container}' committed: ${chunks} blocks`);
  }

  /** Uncommitted blocks are not the blob and expire by themselves: nothing to undo. */
  protected async discard(): Promise<void> {}
}
