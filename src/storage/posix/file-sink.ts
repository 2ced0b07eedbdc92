/**
 * How the posix driver puts bytes into a file it writes: staged, then large files with direct I/O.
 *
 * Every new page-cache page costs more than the copy into it on a virtual machine that returns
 * freed memory to its host: writing a new 2 GiB file through the page cache took 5.4s of kernel
 * CPU on the benchmark machine, overwriting cached pages 0.3s, with O_DIRECT 0.3s
 * (bench/RESULTS.md). A backup or restore writes gigabytes of new files, and its output is not
 * read again soon (keeping it cached only evicts what PostgreSQL uses). So output is staged in an
 * aligned buffer; once a file fills one (STAGE bytes) it switches to O_DIRECT and writes whole
 * aligned chunks, and the unaligned tail goes through the page cache. Small files (info files,
 * manifests, most relation forks) never switch. Durability is unchanged: O_DIRECT does not flush
 * metadata or the drive's cache, so fsync/syncTree still follow. Only local file systems get
 * O_DIRECT (DIRECT_FS); one that refuses it (or a write it rejects) keeps the buffered path.
 *
 * A direct write returns only once the device has the data, so full stages go to this thread's
 * background writer (native/pgbunker.c) while the next stage is filled: two stages per file, the
 * device's time hidden behind decompression and hashing (1 GiB restore from a cold cache: median
 * 3.05s → 2.7s).
 * Every write names its offset (pwrite), so the background and foreground writes need no order.
 *
 * Buffered writes of files made durable later (`writeback`) start their write-back as they go
 * (sync_file_range), so the final sync finds little left to write.
 *
 * A file written `through` (WriteOptions.direct: false: archive-push's WAL) goes as it comes, with
 * no stage and no direct I/O: a short-lived process (archive-push runs once per WAL segment) writes
 * it once and syncs it at once, so the two 1 MiB stages would be fresh memory faulted in (and the
 * bytes copied into them) for nothing. Measured on one push of a 16 MiB segment (2.2 MB lz4): 540
 * fewer page faults, ~8 ms less CPU (bench/RESULTS.md). Restore's large files, also synced at
 * close, keep the stages: they are what direct I/O is for.
 */
import { constants, writeSync } from "node:fs";
import { ptr } from "bun:ffi";
import { fromSystemError } from "../../common/error.ts";
import { backgroundWriter, errnoError } from "../../native/helper.ts";
import { fileSystemType, setFileFlag, startWriteback } from "../../native/libc.ts";

/** Staging buffer size: also the size of each direct write. */
export const STAGE = 1024 * 1024;
/** Direct I/O alignment (offsets, lengths, memory): a 4 KiB logical block covers every device. */
const ALIGN = 4096;
const WRITEBACK_AFTER = 4 * 1024 * 1024;
const O_DIRECT = constants.O_DIRECT ?? 0;

/**
 * File systems where direct I/O is plain block I/O: ext4, XFS, btrfs (and tmpfs, where it is a
 * copy like any other). Anywhere else, notably NFS/CIFS repositories, a direct write becomes a
 * synchronous round trip to the server with no client-side write-back to batch it: those files
 * stay buffered.
 */
const DIRECT_FS = new Set([0xef53, 0x58465342, 0x9123683e, 0x01021994]);

function directWanted(fd: number): boolean {
  if (O_DIRECT === 0) return false;
  const type = fileSystemType(fd);
  return type !== undefined && DIRECT_FS.has(type) && setFileFlag(fd, O_DIRECT, true);
}

/** Staging buffers of this thread, reused file after file (a new buffer is new memory to fault in). */
const pool: Uint8Array[] = [];

function takeStage(): Uint8Array {
  const reused = pool.pop();
  if (reused) return reused;
  const raw = new Uint8Array(STAGE + ALIGN);
  const skew = ptr(raw) % ALIGN;
  return raw.subarray(skew === 0 ? 0 : ALIGN - skew, (skew === 0 ? 0 : ALIGN - skew) + STAGE);
}

type Writer = NonNullable<ReturnType<typeof backgroundWriter>>;

/**
 * The sink whose stage this thread's background writer holds. Two files written in turn by one
 * thread share the writer: before one hands over a stage, the other's write is waited for and its
 * error, if any, kept for that other file (reported by its next write or finish).
 */
let writerOwner: FileSink | undefined;

export class FileSink {
  readonly #fd: number;
  readonly #path: string;
  readonly #writeback: boolean;
  /** The stage being filled. */
  #stage: Uint8Array | undefined;
  /** The other stage: with the background writer while this sink is writerOwner, else free. */
  #spare: Uint8Array | undefined;
  /** An error of a background write, found while another file waited for the writer. */
  #failed: Error | undefined;
  #staged = 0;
  /** undefined: not decided yet (the file has not filled a stage). */
  #direct: boolean | undefined;
  /** Bytes handed to the file so far: the offset of the next write. */
  #written = 0;
  #writtenBack = 0;
  #wroteDirect = false;

  readonly #through: boolean;

  /** start: the file offset of the first byte written (a piece of a file written in parallel). */
  constructor(fd: number, path: string, opts: { writeback: boolean; through?: boolean; start?: number }) {
    this.#fd = fd;
    this.#path = path;
    this.#writeback = opts.writeback;
    this.#through = opts.through ?? false;
    this.#written = this.#writtenBack = opts.start ?? 0;
  }

  /** Whether the file's bulk went through O_DIRECT (tests, diagnostics). */
  get direct(): boolean {
    return this.#wroteDirect;
  }

  write(out: Uint8Array): void {
    if (this.#through) {
      this.#put(out);
      return;
    }
    this.#stage ??= takeStage();
    let pos = 0;
    while (pos < out.byteLength) {
      const n = Math.min(out.byteLength - pos, STAGE - this.#staged);
      this.#stage.set(n === out.byteLength ? out : out.subarray(pos, pos + n), this.#staged);
      this.#staged += n;
      pos += n;
      if (this.#staged === STAGE) {
        this.#direct ??= directWanted(this.#fd);
        const writer = this.#direct ? backgroundWriter() : null;
        if (writer) this.#putBackground(writer);
        else this.#put(this.#stage);
        this.#staged = 0;
      }
    }
  }

  /** Write what is staged: its aligned part directly, the tail through the page cache. */
  finish(): void {
    this.#settle();
    if (this.#stage && this.#staged > 0) {
      const aligned = this.#direct ? this.#staged - (this.#staged % ALIGN) : 0;
      if (aligned > 0) this.#put(this.#stage.subarray(0, aligned));
      if (this.#direct) this.#buffered();
      if (this.#staged > aligned) this.#put(this.#stage.subarray(aligned, this.#staged));
      this.#staged = 0;
    }
    if (this.#writeback && this.#written > this.#writtenBack) this.#startWriteback();
    this.release();
  }

  /** Return the staging buffers (after finish, or when the write is abandoned). */
  release(): void {
    // A stage with the background writer is not reused before the writer is done with it.
    if (writerOwner === this) {
      backgroundWriter()!.writeWait();
      writerOwner = undefined;
    }
    if (this.#stage) pool.push(this.#stage);
    if (this.#spare) pool.push(this.#spare);
    this.#stage = undefined;
    this.#spare = undefined;
  }

  #buffered(): void {
    setFileFlag(this.#fd, O_DIRECT, false);
    this.#direct = false;
  }

  /** Hand the full stage to the background writer and go on filling the other one. */
  #putBackground(writer: Writer): void {
    if (writerOwner !== undefined && writerOwner !== this) writerOwner.#collect(writer);
    if (this.#failed) throw this.#failed;
    const full = this.#stage!;
    const rc = writer.writeStart(this.#fd, full, STAGE, this.#written);
    // writeStart returned: the previous background write (of #spare) is finished.
    if (rc !== 0) {
      writer.writeWait(); // clears the error: it is reported here, not to the next file
      writerOwner = undefined;
      throw this.#error(rc);
    }
    writerOwner = this;
    this.#wroteDirect = true;
    this.#written += STAGE;
    this.#stage = this.#spare ?? takeStage();
    this.#spare = full;
  }

  /** Wait for this file's background write; an error is kept in #failed. */
  #collect(writer: Writer): void {
    const rc = writer.writeWait();
    writerOwner = undefined;
    if (rc !== 0) this.#failed ??= this.#error(rc);
  }

  /** Wait for this file's background write, if any, and report its error. */
  #settle(): void {
    if (writerOwner === this) this.#collect(backgroundWriter()!);
    if (this.#failed) throw this.#failed;
  }

  #put(buf: Uint8Array): void {
    let off = 0;
    while (off < buf.byteLength) {
      let n: number;
      try {
        n = writeSync(this.#fd, buf, off, buf.byteLength - off, this.#written + off);
      } catch (e) {
        // A file system may accept the flag and still refuse the write: go on buffered.
        if (this.#direct && (e as { code?: string }).code === "EINVAL") {
          this.#buffered();
          continue;
        }
        throw fromSystemError(e, "write", this.#path);
      }
      off += n;
    }
    if (this.#direct) this.#wroteDirect = true;
    this.#written += buf.byteLength;
    if (this.#writeback && !this.#direct && this.#written - this.#writtenBack >= WRITEBACK_AFTER) this.#startWriteback();
  }

  #startWriteback(): void {
    startWriteback(this.#fd, this.#writtenBack, this.#written - this.#writtenBack);
    this.#writtenBack = this.#written;
  }

  /** A -errno from the background writer as the error a failed writeSync would have given. */
  #error(rc: number): Error {
    return fromSystemError(errnoError(rc, "write"), "write", this.#path);
  }
}
