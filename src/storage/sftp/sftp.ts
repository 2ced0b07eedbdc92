/**
 * SFTP repository driver (repoN-type=sftp): the repository is a directory on an SSH server,
 * reached with the `sftp` subsystem (npm `ssh2`). It behaves like posix over the wire: renames,
 * symlinks, directories, modes and times; atomic writes by temp file and rename.
 *
 * What it can do depends on the server's OpenSSH extensions, found when the session opens:
 * fsync@openssh.com gives file and directory durability (pathSync), hardlink@openssh.com hard
 * links. SFTP cannot sync a whole tree (syncTree) nor set owners here (the repository's owner is
 * the SSH user), so bulk writers sync each file as it closes.
 */
import type { FileEntryWithStats, Stats } from "ssh2";
import { err } from "../../common/error.ts";
import type { SshTarget } from "../../protocol/ssh.ts";
import { TEMP_EXT, type ReadOptions, type StorageDriver, type StorageFeatures, type StorageInfo, type StorageRead, type StorageWrite, type WriteOptions } from "../storage.ts";
import { openSftpRead } from "./read.ts";
import { isMissing, SftpSession } from "./session.ts";
import { SftpWrite, type WriteCommit } from "./write.ts";

const FILE_MODE = 0o640;
const PATH_MODE = 0o750;
/** Requests in flight while removing a tree. */
const REMOVE_PARALLEL = 16;

const S_IFMT = 0o170000;
const TYPES: Record<number, StorageInfo["type"]> = { 0o100000: "file", 0o040000: "path", 0o120000: "link" };

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

/** Run `work` over `items`, at most `limit` at a time. */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

export class SftpDriver implements StorageDriver {
  readonly features: StorageFeatures;
  readonly #s: SftpSession;
  /** uid/gid → name, from listings and users-groups-by-id@openssh.com. */
  readonly #users = new Map<number, string>();
  readonly #groups = new Map<number, string>();
  /** What a write needs of the driver to commit. */
  readonly #commit: WriteCommit;

  private constructor(session: SftpSession) {
    this.#s = session;
    const fsync = session.has("fsync@openssh.com");
    this.features = { link: true, pathSync: fsync, owner: false, hardLink: session.has("hardlink@openssh.com"), truncate: true, syncTree: false, move: true, path: true, attributes: true };
    this.#commit = { rename: (from, to) => this.#rename(from, to), pathSync: (path) => this.pathSync(path), canSync: fsync };
  }

  static async open(target: SshTarget, timeout: number): Promise<SftpDriver> {
    return new SftpDriver(await SftpSession.open(target, timeout));
  }

  get broken(): boolean {
    return this.#s.broken;
  }

  async close(): Promise<void> {
    this.#s.close();
  }

  async #toInfo(name: string, path: string, st: Stats | FileEntryWithStats["attrs"]): Promise<StorageInfo> {
    const type = TYPES[st.mode & S_IFMT] ?? "special";
    await this.#resolveNames(path, st.uid, st.gid);
    return {
      name,
      type,
      size: type === "file" ? st.size : 0,
      mtime: st.mtime,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      user: this.#users.get(st.uid),
      group: this.#groups.get(st.gid),
      linkDestination: type === "link" ? await this.#s.call<string>("info", path, (cb) => this.#s.sftp.readlink(path, cb)) : undefined,
    };
  }

  /**
   * Names of owner and group. SFTP v3 sends only ids; a listing's long names
   * (`-rw-r----- 1 postgres postgres ...`) name them, so an id not seen yet is learned by listing
   * the entry's directory once. (ssh2 misreads OpenSSH's users-groups-by-id@openssh.com reply and
   * never answers it, so that extension is not used.) An id no listing names stays a number.
   */
  async #resolveNames(path: string, uid: number, gid: number): Promise<void> {
    if (this.#users.has(uid) && this.#groups.has(gid)) return;
    const entries = await this.#s.request<FileEntryWithStats[]>((cb) => this.#s.sftp.readdir(parentOf(path), cb)).catch(() => []);
    this.#learnNames(entries);
    if (!this.#users.has(uid)) this.#users.set(uid, String(uid));
    if (!this.#groups.has(gid)) this.#groups.set(gid, String(gid));
  }

  #learnNames(entries: readonly FileEntryWithStats[]): void {
    for (const e of entries) {
      const [, , user, group] = e.longname.split(/\s+/);
      if (user && !this.#users.has(e.attrs.uid)) this.#users.set(e.attrs.uid, user);
      if (group && !this.#groups.has(e.attrs.gid)) this.#groups.set(e.attrs.gid, group);
    }
  }

  async info(path: string, opts: { ignoreMissing?: boolean; followLink?: boolean } = {}): Promise<StorageInfo | null> {
    let st: Stats;
    try {
      st = await this.#s.request<Stats>((cb) => (opts.followLink ? this.#s.sftp.stat(path, cb) : this.#s.sftp.lstat(path, cb)));
    } catch (e) {
      if (isMissing(e) && opts.ignoreMissing) return null;
      throw this.#s.error(e, "info", path);
    }
    return this.#toInfo(path, path, st);
  }

  async list(path: string, opts: { ignoreMissing?: boolean } = {}): Promise<StorageInfo[] | null> {
    let entries: FileEntryWithStats[];
    try {
      entries = await this.#s.request<FileEntryWithStats[]>((cb) => this.#s.sftp.readdir(path, cb));
    } catch (e) {
      if (isMissing(e) && opts.ignoreMissing) return null;
      throw this.#s.error(e, "path-open", path);
    }
    entries = entries.filter((e) => e.filename !== "." && e.filename !== "..");
    this.#learnNames(entries);
    const out: StorageInfo[] = [];
    for (const e of entries) {
      try {
        out.push(await this.#toInfo(e.filename, `${path}/${e.filename}`, e.attrs));
      } catch (x) {
        // A link removed between readdir and readlink: gone, as posix skips it.
        if ((x as { kind?: string }).kind !== "FileMissingError") throw x;
      }
    }
    return out;
  }

  openRead(path: string, opts: ReadOptions = {}): Promise<StorageRead | null> {
    return openSftpRead(this.#s, path, opts);
  }

  async openWrite(path: string, opts: WriteOptions = {}): Promise<StorageWrite> {
    const target = opts.atomic === false ? path : `${path}${TEMP_EXT}`;
    const attrs = { mode: opts.mode ?? FILE_MODE };
    const open = () => this.#s.request<Buffer>((cb) => this.#s.sftp.open(target, "w", attrs, cb));
    let handle: Buffer;
    try {
      handle = await open();
    } catch (e) {
      if (!isMissing(e) || opts.pathCreate === false) throw this.#s.error(e, "open-write", target);
      // Missing covers a parent that is a file (OpenSSH maps ENOTDIR to NO_SUCH_FILE): that is
      // the file's open failing, as posix reports it.
      await this.pathCreate(parentOf(target), { mode: opts.pathMode ?? PATH_MODE }).catch(async (e2: Error) => {
        const parent = await this.info(parentOf(target), { ignoreMissing: true, followLink: true }).catch(() => null);
        throw parent && parent.type !== "path" ? err("FileOpenError", `unable to open file '${target}' for write: ${e2.message}`) : e2;
      });
      handle = await open().catch((e2) => {
        throw this.#s.error(e2, "open-write", target);
      });
    }
    return new SftpWrite(this.#s, path, target, handle, opts, this.#commit);
  }

  /** Rename over an existing name: atomically with posix-rename@openssh.com, else remove first (SFTP v3 rename refuses an existing target). */
  async #rename(from: string, to: string): Promise<void> {
    const s = this.#s;
    if (s.has("posix-rename@openssh.com")) return s.call("move", from, (cb) => s.sftp.ext_openssh_rename(from, to, cb));
    try {
      await s.request((cb) => s.sftp.rename(from, to, cb));
    } catch (e) {
      if (isMissing(e)) throw s.error(e, "move", from);
      await s.request((cb) => s.sftp.unlink(to, cb)).catch(() => {});
      await s.call("move", from, (cb) => s.sftp.rename(from, to, cb));
    }
  }

  async remove(path: string, opts: { ignoreMissing?: boolean } = {}): Promise<void> {
    try {
      await this.#s.request((cb) => this.#s.sftp.unlink(path, cb));
    } catch (e) {
      if (isMissing(e) && opts.ignoreMissing !== false) return;
      throw this.#s.error(e, "remove", path);
    }
  }

  async pathCreate(path: string, opts: { mode?: number; parents?: boolean; errorOnExists?: boolean } = {}): Promise<void> {
    const mode = opts.mode ?? PATH_MODE;
    const mkdir = () => this.#s.request((cb) => this.#s.sftp.mkdir(path, { mode }, cb));
    try {
      await mkdir();
      return;
    } catch (e) {
      if (isMissing(e) && (opts.parents ?? true)) {
        await this.pathCreate(parentOf(path), { mode, parents: true });
        try {
          await mkdir();
          return;
        } catch (e2) {
          if (isMissing(e2)) throw this.#s.error(e2, "path-create", path);
        }
      } else if (isMissing(e)) throw this.#s.error(e, "path-create", path);
    }
    // SFTP says only "Failure": it exists (a directory, or something else), or it cannot be made.
    const st = await this.info(path, { ignoreMissing: true, followLink: true });
    if (st === null) throw err("PathCreateError", `unable to create path '${path}': the SFTP server refused (check permissions and free space)`);
    if (st.type !== "path") throw err("PathCreateError", `unable to create path '${path}': it exists and is not a directory`);
    if (!opts.errorOnExists) return;
    throw err("PathExistsError", `unable to create path '${path}': it already exists`);
  }

  async pathRemove(path: string, opts: { recurse?: boolean; ignoreMissing?: boolean } = {}): Promise<void> {
    if (opts.recurse) {
      const entries = await this.list(path, { ignoreMissing: opts.ignoreMissing !== false });
      if (entries === null) return;
      await eachLimited(entries, REMOVE_PARALLEL, (e) =>
        e.type === "path" ? this.pathRemove(`${path}/${e.name}`, { recurse: true }) : this.remove(`${path}/${e.name}`));
    }
    try {
      await this.#s.request((cb) => this.#s.sftp.rmdir(path, cb));
    } catch (e) {
      if (isMissing(e) && opts.ignoreMissing !== false) return;
      throw this.#s.error(e, "remove", path);
    }
  }

  async move(from: string, to: string): Promise<void> {
    try {
      await this.#rename(from, to);
    } catch (e) {
      if ((e as { kind?: string }).kind !== "FileMoveError" || (await this.info(from, { ignoreMissing: true })) === null) throw e;
      // The source exists: the destination's directory is what is missing.
      await this.pathCreate(parentOf(to));
      await this.#rename(from, to);
    }
    await this.pathSync(parentOf(to));
  }

  /** fsync a directory or file: OpenSSH opens a directory for reading like a file, and fsyncs its descriptor. */
  async pathSync(path: string): Promise<void> {
    if (!this.features.pathSync) return;
    const s = this.#s;
    const handle = await s.call<Buffer>("sync", path, (cb) => s.sftp.open(path, "r", cb));
    try {
      await s.call("sync", path, (cb) => s.sftp.ext_openssh_fsync(handle, (e) => cb(e)));
    } finally {
      await s.request((cb) => s.sftp.close(handle, cb)).catch(() => {});
    }
  }

  async syncTree(): Promise<void> {
    throw err("AssertError", "SFTP storage cannot sync a tree: write with sync enabled instead");
  }

  async linkCreate(target: string, path: string): Promise<void> {
    await this.#s.call("link", path, (cb) => this.#s.sftp.symlink(target, path, cb));
  }

  async hardLink(existing: string, path: string): Promise<void> {
    const s = this.#s;
    if (!this.features.hardLink) throw err("FeatureNotSupportedError", "the SFTP server cannot make hard links (no hardlink@openssh.com)");
    await this.remove(path, { ignoreMissing: true });
    const link = () => s.request((cb) => s.sftp.ext_openssh_hardlink(existing, path, cb));
    try {
      await link();
    } catch (e) {
      // Missing: the new link's directory (create it), or the file linked to (an error).
      if (!isMissing(e) || (await this.info(existing, { ignoreMissing: true })) === null) throw s.error(e, "link", existing);
      await this.pathCreate(parentOf(path));
      await s.call("link", path, (cb) => s.sftp.ext_openssh_hardlink(existing, path, cb));
    }
  }

  async setAttributes(path: string, attrs: { mode?: number; user?: string; group?: string; mtime?: number; followLink?: boolean }): Promise<void> {
    const s = this.#s;
    const set: { mode?: number; atime?: number; mtime?: number } = {};
    if (attrs.mode !== undefined && attrs.followLink !== false) set.mode = attrs.mode;
    if (attrs.mtime !== undefined) {
      set.atime = attrs.mtime;
      set.mtime = attrs.mtime;
    }
    if (Object.keys(set).length === 0) return;
    if (attrs.followLink !== false) return s.call("info", path, (cb) => s.sftp.setstat(path, set, cb));
    if (!s.has("lsetstat@openssh.com")) throw err("FeatureNotSupportedError", `unable to set the time of link '${path}': the SFTP server has no lsetstat@openssh.com`);
    await s.call("info", path, (cb) => s.sftp.ext_openssh_lsetstat(path, set, cb));
  }

  async truncate(path: string, size: number): Promise<void> {
    await this.#s.call("write", path, (cb) => this.#s.sftp.setstat(path, { size }, cb));
  }
}
