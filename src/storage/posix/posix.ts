/**
 * Local file system driver. Synchronous system calls inside async methods: the data path is a
 * tight loop (read into one reusable buffer → filters → write), with no per-chunk allocation
 * beyond what a filter itself emits.
 */
import {
  constants,
  chmodSync, chownSync, closeSync, existsSync, fstatSync, fsyncSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, opendirSync, openSync,
  readdirSync, readlinkSync, readSync, renameSync, rmSync, rmdirSync, statSync, symlinkSync, truncateSync, unlinkSync,
  utimesSync, type Dir, type Dirent, type Stats,
} from "node:fs";
import { dirname } from "node:path";
import { err, fromSystemError } from "../../common/error.ts";
import { fsyncPath } from "../../common/fs.ts";
import { groupId, groupName, isRoot, userId, userName } from "../../common/user.ts";
import { errnoName, syncFileSystem } from "../../native/helper.ts";
import { FileSink } from "./file-sink.ts";
import type { FilterResult } from "../../filter/filter.ts";
import { Pipeline } from "../../filter/pipeline.ts";
import { bufferSizeFor, Collector } from "../collector.ts";
import { checkExpected, TEMP_EXT, type ListOptions, type ReadOptions, type StorageDriver, type StorageInfo, type StorageRead, type StorageWrite, type WriteOptions } from "../storage.ts";

const FILE_MODE = 0o640;
const PATH_MODE = 0o750;

function typeOf(st: Stats): StorageInfo["type"] {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "path";
  if (st.isSymbolicLink()) return "link";
  return "special";
}

/** owners: false leaves user/group out, so that /etc/passwd and /etc/group are read only when wanted. */
export function statToInfo(name: string, path: string, st: Stats, owners = true): StorageInfo {
  const type = typeOf(st);
  return {
    name,
    type,
    size: type === "file" ? st.size : 0,
    mtime: Math.floor(st.mtimeMs / 1000),
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    user: owners ? userName(st.uid) : undefined,
    group: owners ? groupName(st.gid) : undefined,
    linkDestination: type === "link" ? readlinkSync(path) : undefined,
  };
}

class PosixRead implements StorageRead {
  readonly #path: string;
  #fd: number | undefined;
  readonly #buf: Uint8Array;
  readonly #pipeline: Pipeline;
  readonly #collector: Collector;
  #position: number;
  #remaining: number;
  #done = false;

  constructor(path: string, fd: number, opts: ReadOptions, fileSize: number) {
    this.#path = path;
    this.#fd = fd;
    const want = Math.min(opts.limit ?? Number.POSITIVE_INFINITY, fileSize + 1);
    const size = bufferSizeFor(want, opts.bufferSize);
    this.#buf = new Uint8Array(size);
    this.#collector = new Collector(this.#buf);
    this.#pipeline = new Pipeline(opts.filters ?? [], this.#collector.sink, size);
    this.#position = opts.offset ?? 0;
    this.#remaining = opts.limit ?? Number.POSITIVE_INFINITY;
  }

  async read(): Promise<Uint8Array | null> {
    try {
      while (this.#collector.empty && !this.#done) {
        const want = Math.min(this.#buf.byteLength, this.#remaining);
        let n = 0;
        if (want > 0) {
          try {
            n = readSync(this.#fd!, this.#buf, 0, want, this.#position);
          } catch (e) {
            throw fromSystemError(e, "read", this.#path);
          }
        }
        if (n === 0) {
          this.#pipeline.end();
          this.#done = true;
          break;
        }
        this.#position += n;
        this.#remaining -= n;
        this.#pipeline.process(this.#buf.subarray(0, n));
      }
    } catch (e) {
      await this.close();
      throw e;
    }
    return this.#collector.empty ? null : this.#collector.take();
  }

  results(): FilterResult[] {
    return this.#pipeline.results();
  }

  async close(): Promise<void> {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
    if (!this.#done) this.#pipeline.free();
  }
}

class PosixWrite implements StorageWrite {
  readonly #path: string;
  readonly #target: string;
  readonly #opts: WriteOptions;
  #fd: number | undefined;
  readonly #pipeline: Pipeline;
  readonly #sink: FileSink;

  constructor(path: string, target: string, fd: number, opts: WriteOptions) {
    this.#path = path;
    this.#target = target;
    this.#fd = fd;
    this.#opts = opts;
    const size = bufferSizeFor(opts.sizeHint === undefined ? Number.POSITIVE_INFINITY : opts.sizeHint + 1, opts.bufferSize);
    // Files made durable later (sync: false) start their write-back as they are written; direct:
    // false is written through, unstaged (file-sink.ts says why).
    this.#sink = new FileSink(fd, path, { writeback: opts.sync === false, through: opts.direct === false, start: opts.offset });
    this.#pipeline = new Pipeline(opts.filters ?? [], (out) => this.#sink.write(out), size);
  }

  async write(chunk: Uint8Array): Promise<void> {
    try {
      this.#pipeline.process(chunk);
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  async close(): Promise<FilterResult[]> {
    const fd = this.#fd;
    if (fd === undefined) throw err("AssertError", `file '${this.#path}' is already closed`);
    try {
      this.#pipeline.end();
      this.#sink.finish();
      checkExpected(this.#path, this.#pipeline.results(), this.#opts.expect);
      if (this.#opts.sync !== false) fsyncSync(fd);
    } catch (e) {
      await this.abort();
      throw fromSystemError(e, "write", this.#path);
    }
    closeSync(fd);
    this.#fd = undefined;
    try {
      applyAttributes(this.#target, this.#opts);
      if (this.#target !== this.#path) renameSync(this.#target, this.#path);
    } catch (e) {
      try {
        unlinkSync(this.#target);
      } catch {}
      throw fromSystemError(e, "move", this.#target);
    }
    if ((this.#opts.syncPath ?? this.#opts.sync) !== false) fsyncPath(dirname(this.#path));
    return this.#pipeline.results();
  }

  async abort(): Promise<void> {
    this.#pipeline.free();
    this.#sink.release();
    if (this.#fd !== undefined) {
      closeSync(this.#fd);
      this.#fd = undefined;
    }
    // A piece of a file written in parallel leaves the file to whoever writes the whole.
    if (this.#opts.offset !== undefined) return;
    try {
      unlinkSync(this.#target);
    } catch {}
  }
}

function applyAttributes(path: string, a: { mode?: number; user?: string; group?: string; mtime?: number; followLink?: boolean }): void {
  if (a.user !== undefined || a.group !== undefined) {
    if (isRoot()) {
      const uid = a.user === undefined ? -1 : userId(a.user);
      const gid = a.group === undefined ? -1 : groupId(a.group);
      // A user or group that does not exist here keeps the current owner (pgBackRest does the same
      // and warns once at the command level).
      if (uid !== undefined && gid !== undefined) (a.followLink === false ? lchownSync : chownSync)(path, uid, gid);
    }
  }
  if (a.mode !== undefined && a.followLink !== false) chmodSync(path, a.mode);
  if (a.mtime !== undefined) (a.followLink === false ? lutimesSync : utimesSync)(path, a.mtime, a.mtime);
}

export class PosixDriver implements StorageDriver {
  readonly features = { link: true, pathSync: true, owner: isRoot(), hardLink: true, truncate: true, syncTree: true, move: true, path: true, attributes: true };

  async info(path: string, opts: { ignoreMissing?: boolean; followLink?: boolean } = {}): Promise<StorageInfo | null> {
    try {
      const st = opts.followLink ? statSync(path) : lstatSync(path);
      return statToInfo(path, path, st);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT" && opts.ignoreMissing) return null;
      throw fromSystemError(e, "info", path);
    }
  }

  async list(path: string, opts: ListOptions = {}): Promise<StorageInfo[] | null> {
    let names: string[];
    try {
      names = readdirSync(path);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT" && opts.ignoreMissing) return null;
      throw fromSystemError(e, "path-open", path);
    }
    const out: StorageInfo[] = [];
    for (const name of names) {
      const full = `${path}/${name}`;
      try {
        out.push(statToInfo(name, full, lstatSync(full), opts.owners !== false));
      } catch (e) {
        // Removed between readdir and lstat (PostgreSQL drops temp files all the time): skip it.
        if ((e as { code?: string }).code !== "ENOENT") throw fromSystemError(e, "info", full);
      }
    }
    return out;
  }

  async *listBatches(path: string, opts: ListOptions, batch: number): AsyncGenerator<StorageInfo[]> {
    let dir: Dir;
    try {
      dir = opendirSync(path);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT" && opts.ignoreMissing) return;
      throw fromSystemError(e, "path-open", path);
    }
    try {
      for (;;) {
        const out: StorageInfo[] = [];
        let ent: Dirent | null = null;
        while (out.length < batch && (ent = dir.readSync()) !== null) {
          const full = `${path}/${ent.name}`;
          try {
            out.push(statToInfo(ent.name, full, lstatSync(full), opts.owners !== false));
          } catch (e) {
            // Removed between readdir and lstat (PostgreSQL drops temp files all the time): skip it.
            if ((e as { code?: string }).code !== "ENOENT") throw fromSystemError(e, "info", full);
          }
        }
        if (out.length) yield out;
        if (ent === null) return;
      }
    } finally {
      dir.closeSync();
    }
  }

  async openRead(path: string, opts: ReadOptions = {}): Promise<StorageRead | null> {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT" && opts.ignoreMissing) return null;
      throw fromSystemError(e, "open-read", path);
    }
    const st = fstatSync(fd);
    if (st.isDirectory()) {
      closeSync(fd);
      throw err("FileOpenError", `unable to open '${path}' for read: it is a directory`);
    }
    return new PosixRead(path, fd, opts, st.size);
  }

  async openWrite(path: string, opts: WriteOptions = {}): Promise<StorageWrite> {
    const target = opts.atomic === false || opts.offset !== undefined ? path : `${path}${TEMP_EXT}`;
    const mode = opts.mode ?? FILE_MODE;
    // A piece at an offset must not truncate what the other pieces wrote.
    const flags = opts.offset !== undefined ? constants.O_WRONLY | constants.O_CREAT : "w";
    let fd: number;
    try {
      fd = openSync(target, flags, mode);
    } catch (e) {
      if ((e as { code?: string }).code !== "ENOENT" || opts.pathCreate === false) throw fromSystemError(e, "open-write", target);
      this.#mkdirp(dirname(target), opts.pathMode ?? PATH_MODE);
      try {
        fd = openSync(target, flags, mode);
      } catch (e2) {
        throw fromSystemError(e2, "open-write", target);
      }
    }
    return new PosixWrite(path, target, fd, { ...opts, mode: opts.mode });
  }

  #mkdirp(path: string, mode: number): void {
    try {
      mkdirSync(path, { recursive: true, mode });
    } catch (e) {
      throw fromSystemError(e, "path-create", path);
    }
  }

  async remove(path: string, opts: { ignoreMissing?: boolean } = {}): Promise<void> {
    try {
      unlinkSync(path);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT" && opts.ignoreMissing !== false) return;
      throw fromSystemError(e, "remove", path);
    }
  }

  async pathCreate(path: string, opts: { mode?: number; parents?: boolean; errorOnExists?: boolean } = {}): Promise<void> {
    try {
      // mkdir -p succeeds on an existing directory: create the parents, then the path itself alone.
      if (opts.errorOnExists && (opts.parents ?? true)) mkdirSync(dirname(path), { recursive: true, mode: opts.mode ?? PATH_MODE });
      mkdirSync(path, { recursive: (opts.parents ?? true) && !opts.errorOnExists, mode: opts.mode ?? PATH_MODE });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "EEXIST" && !opts.errorOnExists && statSync(path).isDirectory()) return;
      if (code === "EEXIST") throw err("PathExistsError", `unable to create path '${path}': it already exists`);
      throw fromSystemError(e, "path-create", path);
    }
  }

  async pathRemove(path: string, opts: { recurse?: boolean; ignoreMissing?: boolean } = {}): Promise<void> {
    try {
      if (opts.recurse) rmSync(path, { recursive: true, force: opts.ignoreMissing !== false });
      else rmdirSync(path);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT" && opts.ignoreMissing !== false) return;
      throw fromSystemError(e, "remove", path);
    }
  }

  async move(from: string, to: string): Promise<void> {
    try {
      renameSync(from, to);
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT" && lstatSafe(from)) {
        this.#mkdirp(dirname(to), PATH_MODE);
        renameSync(from, to);
      } else throw fromSystemError(e, "move", from);
    }
    fsyncPath(dirname(to));
  }

  async pathSync(path: string): Promise<void> {
    fsyncPath(path);
  }

  async syncTree(path: string): Promise<void> {
    const rc = syncFileSystem(path);
    if (rc !== 0) throw err("PathSyncError", `unable to sync the file system holding '${path}': ${errnoName(rc)}`);
  }

  async linkCreate(target: string, path: string): Promise<void> {
    try {
      symlinkSync(target, path);
    } catch (e) {
      throw fromSystemError(e, "link", path);
    }
  }

  async hardLink(existing: string, path: string): Promise<void> {
    try {
      rmSync(path, { force: true });
      linkSync(existing, path);
    } catch (e) {
      // ENOENT: the new link's directory is missing (create it), or the file linked to is (an error).
      if ((e as { code?: string }).code !== "ENOENT" || !existsSync(existing)) throw fromSystemError(e, "link", existing);
      this.#mkdirp(dirname(path), PATH_MODE);
      try {
        linkSync(existing, path);
      } catch (e2) {
        throw fromSystemError(e2, "link", path);
      }
    }
  }

  async truncate(path: string, size: number): Promise<void> {
    try {
      truncateSync(path, size);
    } catch (e) {
      throw fromSystemError(e, "write", path);
    }
  }

  async setAttributes(path: string, attrs: { mode?: number; user?: string; group?: string; mtime?: number; followLink?: boolean }): Promise<void> {
    try {
      applyAttributes(path, attrs);
    } catch (e) {
      throw fromSystemError(e, "info", path);
    }
  }
}

function lstatSafe(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** The process-wide local driver (stateless, so one is enough). */
export const posix = new PosixDriver();
