/**
 * Writing a file over SFTP as the posix driver writes one: to `<name>.pgbunker.tmp`, fsync'ed
 * (fsync@openssh.com), then renamed over the final name (posix-rename@openssh.com replaces it
 * atomically), then the directory fsync'ed. A write that fails or is abandoned removes its temp
 * file; one cut off with the connection leaves a temp name that nothing reads as data.
 *
 * The filter pipeline's sink is synchronous and SFTP writes answer later, so the sink sends each
 * piece at once (ssh2 copies it into its packet) and write() waits while more than IN_FLIGHT bytes
 * are unanswered: the window that hides the latency, and the bound on memory.
 */
import { err, PgbError } from "../../common/error.ts";
import type { FilterResult } from "../../filter/filter.ts";
import { Pipeline } from "../../filter/pipeline.ts";
import { bufferSizeFor } from "../collector.ts";
import { checkExpected, type StorageWrite, type WriteOptions } from "../storage.ts";
import type { SftpSession } from "./session.ts";
import { PIECE } from "./read.ts";

const IN_FLIGHT = 2 * 1024 * 1024;

export interface WriteCommit {
  /** Rename the temp file over the final name. */
  rename(from: string, to: string): Promise<void>;
  /** fsync a directory (after the rename). */
  pathSync(path: string): Promise<void>;
  /** The server can fsync files. */
  canSync: boolean;
}

export class SftpWrite implements StorageWrite {
  readonly #s: SftpSession;
  readonly #path: string;
  readonly #target: string;
  readonly #opts: WriteOptions;
  readonly #commit: WriteCommit;
  #handle: Buffer | undefined;
  readonly #pipeline: Pipeline;
  #position = 0;
  #inFlight = 0;
  #failed: PgbError | undefined;
  #wake: (() => void) | undefined;

  constructor(session: SftpSession, path: string, target: string, handle: Buffer, opts: WriteOptions, commit: WriteCommit) {
    this.#s = session;
    this.#path = path;
    this.#target = target;
    this.#handle = handle;
    this.#opts = opts;
    this.#commit = commit;
    const size = bufferSizeFor(opts.sizeHint === undefined ? Number.POSITIVE_INFINITY : opts.sizeHint + 1, opts.bufferSize);
    this.#pipeline = new Pipeline(opts.filters ?? [], (out) => this.#send(out), size);
  }

  /** Send the bytes now (in pieces ssh2 copies at once: the view is the filter's, valid only now). */
  #send(out: Uint8Array): void {
    const handle = this.#handle;
    if (!handle || this.#failed) return;
    const max = Math.min(PIECE, this.#s.maxWrite);
    for (let off = 0; off < out.byteLength; off += max) {
      const len = Math.min(max, out.byteLength - off);
      const piece = Buffer.from(out.buffer, out.byteOffset + off, len);
      this.#inFlight += len;
      const done = this.#s.request((cb) => this.#s.sftp.write(handle, piece, 0, len, this.#position, cb));
      this.#position += len;
      done.then(
        () => this.#settled(len),
        (e) => {
          this.#failed ??= this.#s.error(e, "write", this.#path);
          this.#settled(len);
        },
      );
    }
  }

  #settled(len: number): void {
    this.#inFlight -= len;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Wait until at most `limit` bytes are unanswered; report a failed write. */
  async #drain(limit: number): Promise<void> {
    while (this.#inFlight > limit && !this.#failed) await new Promise<void>((resolve) => (this.#wake = resolve));
    if (this.#failed) throw this.#failed;
  }

  async write(chunk: Uint8Array): Promise<void> {
    try {
      if (this.#failed) throw this.#failed;
      this.#pipeline.process(chunk);
      await this.#drain(IN_FLIGHT);
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  async close(): Promise<FilterResult[]> {
    const handle = this.#handle;
    if (handle === undefined) throw err("AssertError", `file '${this.#path}' is already closed`);
    const s = this.#s;
    try {
      this.#pipeline.end();
      await this.#drain(0);
      checkExpected(this.#path, this.#pipeline.results(), this.#opts.expect);
      if (this.#opts.mtime !== undefined) {
        const t = this.#opts.mtime;
        await s.call("write", this.#target, (cb) => s.sftp.futimes(handle, t, t, cb));
      }
      if (this.#opts.sync !== false && this.#commit.canSync) await s.call("sync", this.#target, (cb) => s.sftp.ext_openssh_fsync(handle, (e) => cb(e)));
      this.#handle = undefined;
      await s.call("write", this.#target, (cb) => s.sftp.close(handle, cb));
      if (this.#target !== this.#path) await this.#commit.rename(this.#target, this.#path);
    } catch (e) {
      await this.abort();
      throw e;
    }
    if ((this.#opts.syncPath ?? this.#opts.sync) !== false) await this.#commit.pathSync(this.#path.slice(0, this.#path.lastIndexOf("/")) || "/");
    return this.#pipeline.results();
  }

  async abort(): Promise<void> {
    this.#pipeline.free();
    const handle = this.#handle;
    this.#handle = undefined;
    if (this.#s.broken) return;
    if (handle) {
      // Unanswered writes may still land: the temp file is removed after them.
      await this.#drain(0).catch(() => {});
      await this.#s.request((cb) => this.#s.sftp.close(handle, cb)).catch(() => {});
    }
    await this.#s.request((cb) => this.#s.sftp.unlink(this.#target, cb)).catch(() => {});
  }
}
