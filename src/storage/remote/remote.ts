/**
 * Storage on another host, reached through a `pgbunker remote` (protocol/client.ts). Every
 * driver call becomes one request; files stream in chunks within a credit window.
 *
 * Filters run where they shrink what crosses the network: a read runs its filters on the remote
 * up to the first decompress/decrypt (a backup's sha1 → size → page-checksum → compress all run
 * next to the data files, so compressed bytes travel), and the rest here; a write runs its
 * filters here up to the last compress/encrypt (archive-push compresses before sending) and the
 * rest on the remote. Results come back in the order of the filters given, as from a local driver.
 *
 * Bytes that would still cross uncompressed (compress-type=none, a plain read of an uncompressed
 * file) are lz4-compressed for the trip when network compression is on (compress-level-network,
 * as pgBackRest compresses network traffic when the repository is not compressed). A stored file
 * that is compressed already (.lz4, .gz, ...) is sent as it is.
 */
import { err } from "../../common/error.ts";
import { compressTypeOfName } from "../../filter/compress.ts";
import type { FilterResult, FilterSpec } from "../../filter/filter.ts";
import { Pipeline } from "../../filter/pipeline.ts";
import type { ClientReadStream, ClientWriteStream, ProtocolClient } from "../../protocol/client.ts";
import {
  STORAGE_FEATURES, type ReadOptions, type StorageDriver, type StorageFeatures, type StorageInfo, type StorageRead, type StorageWrite,
  type WriteOptions,
} from "../storage.ts";

const EXPANDING = new Set(["decompress", "decrypt"]);
const SHRINKING = new Set(["compress", "encrypt"]);

/** Filters that only carry bytes over the network: their results are not the caller's. */
const TRANSIT = "network";
const TRANSIT_COMPRESS: FilterSpec = { type: "compress", compressType: "lz4", level: 1, id: TRANSIT };
const TRANSIT_DECOMPRESS: FilterSpec = { type: "decompress", compressType: "lz4", id: TRANSIT };

/** Whether bytes the sender's filters produce would cross uncompressed and are worth compressing. */
function worthCompressing(path: string, all: readonly FilterSpec[], onSender: readonly FilterSpec[]): boolean {
  if (onSender.some((f) => SHRINKING.has(f.type))) return false;
  return all.length > 0 || compressTypeOfName(path) === "none";
}

function callerResults(results: readonly FilterResult[]): FilterResult[] {
  return results.filter((r) => r.id !== TRANSIT);
}

/** Split a read's filters: [run on the remote, run here]. */
export function splitReadFilters(filters: readonly FilterSpec[]): [FilterSpec[], FilterSpec[]] {
  const cut = filters.findIndex((f) => EXPANDING.has(f.type));
  return cut === -1 ? [[...filters], []] : [filters.slice(0, cut), filters.slice(cut)];
}

/** Split a write's filters: [run here, run on the remote]. */
export function splitWriteFilters(filters: readonly FilterSpec[]): [FilterSpec[], FilterSpec[]] {
  let last = -1;
  filters.forEach((f, i) => {
    if (SHRINKING.has(f.type)) last = i;
  });
  return [filters.slice(0, last + 1), filters.slice(last + 1)];
}

export interface RemoteDriverOptions {
  /** Compress what would cross the network uncompressed (compress-level-network > 0). */
  networkCompress?: boolean;
}

export class RemoteDriver implements StorageDriver {
  readonly features: StorageFeatures;
  readonly #client: ProtocolClient;
  readonly #networkCompress: boolean;

  /**
   * `features`: what the remote's driver reported at open (a flag an older remote lacks is false).
   * Hard links are never offered: the protocol has no request for them.
   */
  constructor(client: ProtocolClient, features: Readonly<Record<string, boolean>>, opts: RemoteDriverOptions = {}) {
    this.#client = client;
    const has = Object.fromEntries(STORAGE_FEATURES.map((f) => [f, features[f] === true])) as Record<keyof StorageFeatures, boolean>;
    this.features = { ...has, hardLink: false };
    this.#networkCompress = opts.networkCompress ?? false;
  }

  get client(): ProtocolClient {
    return this.#client;
  }

  get broken(): boolean {
    return !this.#client.alive;
  }

  info(path: string, opts?: { ignoreMissing?: boolean; followLink?: boolean }): Promise<StorageInfo | null> {
    return this.#client.request("info", { path, opts });
  }

  list(path: string, opts?: { ignoreMissing?: boolean }): Promise<StorageInfo[] | null> {
    return this.#client.request("list", { path, opts });
  }

  async openRead(path: string, opts: ReadOptions = {}): Promise<StorageRead | null> {
    const [remote, local] = splitReadFilters(opts.filters ?? []);
    if (this.#networkCompress && worthCompressing(path, opts.filters ?? [], remote)) {
      remote.push(TRANSIT_COMPRESS);
      local.unshift(TRANSIT_DECOMPRESS);
    }
    const stream = await this.#client.openReadStream("openRead", { path, opts: { ...opts, filters: remote } });
    return stream && new RemoteRead(stream, local, opts.bufferSize);
  }

  async openWrite(path: string, opts: WriteOptions = {}): Promise<StorageWrite> {
    // `expect` is checked where the file is committed, against the last size/sha1 results: with
    // it, every filter runs on the remote.
    const [local, remote] = opts.expect ? [[], [...(opts.filters ?? [])]] : splitWriteFilters(opts.filters ?? []);
    if (this.#networkCompress && worthCompressing(path, opts.filters ?? [], local)) {
      local.push(TRANSIT_COMPRESS);
      remote.unshift(TRANSIT_DECOMPRESS);
    }
    const stream = await this.#client.openWriteStream("openWrite", { path, opts: { ...opts, filters: remote } });
    return new RemoteWrite(stream, local, opts.bufferSize);
  }

  remove(path: string, opts?: { ignoreMissing?: boolean }): Promise<void> {
    return this.#client.request("remove", { path, opts });
  }

  pathCreate(path: string, opts?: { mode?: number; parents?: boolean; errorOnExists?: boolean }): Promise<void> {
    return this.#client.request("pathCreate", { path, opts });
  }

  pathRemove(path: string, opts?: { recurse?: boolean; ignoreMissing?: boolean }): Promise<void> {
    return this.#client.request("pathRemove", { path, opts });
  }

  move(from: string, to: string): Promise<void> {
    return this.#client.request("move", { from, to });
  }

  pathSync(path: string): Promise<void> {
    return this.#client.request("pathSync", { path });
  }

  linkCreate(target: string, path: string): Promise<void> {
    return this.#client.request("linkCreate", { target, path });
  }

  /** Make a whole tree durable on the remote (its file system sync, or a directory fsync). */
  syncTree(path: string): Promise<void> {
    return this.#client.request("syncTree", { path });
  }

  setAttributes(path: string, attrs: Parameters<StorageDriver["setAttributes"]>[1]): Promise<void> {
    return this.#client.request("setAttributes", { path, attrs });
  }

  truncate(path: string, size: number): Promise<void> {
    return this.#client.request("truncate", { path, size });
  }

  hardLink(): Promise<void> {
    throw err("FeatureNotSupportedError", "hard links cannot be made through a remote host");
  }

}

/** Chunks from the remote, through the filters that run here (if any). */
class RemoteRead implements StorageRead {
  readonly #stream: ClientReadStream;
  readonly #pipeline: Pipeline | undefined;
  #out: Uint8Array[] = [];
  #done = false;

  constructor(stream: ClientReadStream, local: FilterSpec[], bufferSize?: number) {
    this.#stream = stream;
    // Local filter output is a view valid only during the sink call: keep a copy.
    this.#pipeline = local.length ? new Pipeline(local, (out) => this.#out.push(out.slice()), bufferSize) : undefined;
  }

  async read(): Promise<Uint8Array | null> {
    if (!this.#pipeline) return this.#stream.read();
    try {
      while (this.#out.length === 0 && !this.#done) {
        const chunk = await this.#stream.read();
        if (chunk === null) {
          this.#pipeline.end();
          this.#done = true;
        } else this.#pipeline.process(chunk);
      }
    } catch (e) {
      await this.close();
      throw e;
    }
    return this.#out.shift() ?? null;
  }

  results(): FilterResult[] {
    const remote = (this.#stream.results as FilterResult[] | undefined) ?? [];
    return callerResults(this.#pipeline ? [...remote, ...this.#pipeline.results()] : remote);
  }

  async close(): Promise<void> {
    this.#stream.close();
    if (this.#pipeline && !this.#done) this.#pipeline.free();
  }
}

/** Bytes to the remote, through the filters that run here first (if any). */
class RemoteWrite implements StorageWrite {
  readonly #stream: ClientWriteStream;
  readonly #pipeline: Pipeline | undefined;
  #out: Uint8Array[] = [];
  #closed = false;

  constructor(stream: ClientWriteStream, local: FilterSpec[], bufferSize?: number) {
    this.#stream = stream;
    this.#pipeline = local.length ? new Pipeline(local, (out) => this.#out.push(out.slice()), bufferSize) : undefined;
  }

  async write(chunk: Uint8Array): Promise<void> {
    try {
      if (!this.#pipeline) return await this.#stream.write(chunk);
      this.#pipeline.process(chunk);
      await this.#flush();
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  async #flush(): Promise<void> {
    for (let c = this.#out.shift(); c; c = this.#out.shift()) await this.#stream.write(c);
  }

  async close(): Promise<FilterResult[]> {
    if (this.#closed) throw err("AssertError", "remote file is already closed");
    try {
      if (this.#pipeline) {
        this.#pipeline.end();
        await this.#flush();
      }
      const remote = await this.#stream.close<FilterResult[]>();
      this.#closed = true;
      return callerResults(this.#pipeline ? [...this.#pipeline.results(), ...remote] : remote);
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  async abort(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#pipeline?.free();
    await this.#stream.abort();
  }
}
