/**
 * Process locks and stop files in lock-path, named as pgBackRest names them:
 *   STANZA-archive.lock   archive-push/archive-get (async) of a stanza
 *   STANZA-backup.lock    backup, expire, stanza-create/upgrade/delete
 *   STANZA.stop / all.stop   written by `stop`, removed by `start`
 *
 * Locks are flock()s on the file (taken by the native helper): the kernel drops them when the
 * process dies, so a kill -9 never leaves a stale lock. The file holds what pgBackRest writes there,
 * {"execId":"PID-XXXXXXXX","pid":PID} plus "pctCplt" (percent × 100) while a backup runs, so each
 * tool's `info` sees the other's running backup and `stop --force` can terminate the holder.
 */
import { closeSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeSync, ftruncateSync } from "node:fs";
import { err } from "./error.ts";
import { errnoName, lockAcquire } from "../native/helper.ts";

export type LockType = "archive" | "backup";

const EWOULDBLOCK = -11;

export function lockFile(lockPath: string, stanza: string, type: LockType): string {
  return `${lockPath}/${stanza}-${type}.lock`;
}

export function stopFile(lockPath: string, stanza?: string): string {
  return `${lockPath}/${stanza ?? "all"}.stop`;
}

function ensureDir(lockPath: string): void {
  try {
    mkdirSync(lockPath, { recursive: true, mode: 0o770 });
  } catch (e) {
    throw err("PathCreateError", `unable to create lock path '${lockPath}': ${(e as Error).message}`, "check lock-path and its permissions.");
  }
}

/** Locks this process holds, so a long command can publish its progress in them. */
const held = new Set<Lock>();

function lockContent(execId: string, percentComplete?: number): string {
  const pct = percentComplete === undefined ? "" : `"pctCplt":${Math.round(percentComplete * 100)},`;
  return `{"execId":"${execId}",${pct}"pid":${process.pid}}`;
}

function writeContent(fd: number, text: string): void {
  ftruncateSync(fd, 0);
  writeSync(fd, text, 0);
}

export class Lock {
  readonly #fds: number[];
  readonly files: string[];
  readonly #execId: string;

  private constructor(fds: number[], files: string[], execId: string) {
    this.#fds = fds;
    this.files = files;
    this.#execId = execId;
  }

  /** Take one or more locks for a stanza; throws LockAcquireError naming the holder. */
  static acquire(lockPath: string, stanza: string, types: readonly LockType[], command: string): Lock {
    ensureDir(lockPath);
    const execId = `${process.pid}-${Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, "0")}`;
    const fds: number[] = [];
    const files: string[] = [];
    try {
      for (const type of types) {
        const file = lockFile(lockPath, stanza, type);
        const fd = lockAcquire(file);
        if (fd < 0) {
          if (fd === EWOULDBLOCK) {
            const holder = lockHolder(file);
            throw err(
              "LockAcquireError",
              `unable to acquire lock on file '${file}': another pgbunker process${holder ? ` (pid ${holder})` : ""} is running a ${type === "backup" ? "backup, expire or stanza" : "archive"} command for stanza '${stanza}'`,
              `wait for it to finish, or run 'pgbunker --stanza=${stanza} stop --force' to stop it.`,
            );
          }
          throw err("LockAcquireError", `unable to acquire lock on file '${file}': ${errnoName(fd)}`, "check lock-path and its permissions.");
        }
        writeContent(fd, lockContent(execId));
        fds.push(fd);
        files.push(file);
      }
    } catch (e) {
      for (const fd of fds) closeSync(fd);
      throw e;
    }
    const lock = new Lock(fds, files, execId);
    held.add(lock);
    return lock;
  }

  /** Publish progress (0-100) in the lock files, where `info` on this host reads it. */
  progress(percentComplete: number): void {
    for (const fd of this.#fds) {
      try {
        writeContent(fd, lockContent(this.#execId, percentComplete));
      } catch {
        // Progress is informational; never fail the command over it.
      }
    }
  }

  release(): void {
    held.delete(this);
    for (const fd of this.#fds.splice(0)) {
      try {
        closeSync(fd);
      } catch {}
    }
  }
}

/** Publish progress in every lock this process holds (backup calls this as it copies files). */
export function lockProgress(percentComplete: number): void {
  for (const lock of held) lock.progress(percentComplete);
}

interface LockContent {
  pid?: number;
  percentComplete?: number;
}

/** The lock file's content: pgBackRest's JSON, or the "PID\nCOMMAND" of earlier pgbunker builds. */
function readContent(file: string): LockContent {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return {};
  }
  try {
    const o = JSON.parse(text) as { pid?: unknown; pctCplt?: unknown };
    return {
      pid: typeof o.pid === "number" && o.pid > 0 ? o.pid : undefined,
      percentComplete: typeof o.pctCplt === "number" ? o.pctCplt / 100 : undefined,
    };
  } catch {
    const pid = Number(text.split("\n")[0]);
    return { pid: Number.isInteger(pid) && pid > 0 ? pid : undefined };
  }
}

function lockHolder(file: string): number | undefined {
  return readContent(file).pid;
}

/**
 * Is a stanza's lock held on this host, and how far is its holder? Read from /proc/locks, without
 * taking the lock: `info` must never make a starting backup fail. Falls back to trying the lock
 * where /proc/locks is not available.
 */
export function lockState(lockPath: string, stanza: string, type: LockType): { held: boolean; pid?: number; percentComplete?: number } {
  const file = lockFile(lockPath, stanza, type);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(file);
  } catch {
    return { held: false };
  }
  let held: boolean;
  try {
    held = flockHeld(readFileSync("/proc/locks", "utf8"), st.dev, st.ino);
  } catch {
    const fd = lockAcquire(file);
    held = fd === EWOULDBLOCK;
    if (fd >= 0) closeSync(fd);
  }
  if (!held) return { held: false };
  return { held: true, ...readContent(file) };
}

/** Does /proc/locks list a lock on the file with this device and inode? */
export function flockHeld(procLocks: string, dev: number, ino: number): boolean {
  // Linux dev_t: major in bits 8-19 (and 32+), minor in bits 0-7 (and 20-31); printed %02x:%02x:%lu.
  const major = ((dev >> 8) & 0xfff) | Math.floor(dev / 2 ** 32) & ~0xfff;
  const minor = (dev & 0xff) | ((dev >> 12) & ~0xff & 0xfffff);
  const id = `${major.toString(16).padStart(2, "0")}:${minor.toString(16).padStart(2, "0")}:${ino}`;
  return procLocks.split("\n").some((line) => !line.includes("->") && line.split(/\s+/).includes(id));
}

/** Does a stop file exist for the stanza or for all stanzas? */
export function stopped(lockPath: string, stanza?: string): boolean {
  return existsSync(stopFile(lockPath)) || (stanza !== undefined && existsSync(stopFile(lockPath, stanza)));
}

/** Refuse to run when a stop file exists for the stanza or for all stanzas. */
export function checkStopped(lockPath: string, stanza?: string): void {
  for (const f of [stopFile(lockPath), ...(stanza ? [stopFile(lockPath, stanza)] : [])]) {
    if (existsSync(f))
      throw err("StopError", `stop file exists for ${f.endsWith("all.stop") ? "all stanzas" : `stanza ${stanza}`}`, `run 'pgbunker${f.endsWith("all.stop") ? "" : ` --stanza=${stanza}`} start' to allow pgbunker to run again.`);
  }
}

/** Pids holding locks in lock-path (for one stanza or all), for `stop --force`. */
export function lockHolders(lockPath: string, stanza?: string): { file: string; pid: number }[] {
  if (!existsSync(lockPath)) return [];
  const out: { file: string; pid: number }[] = [];
  for (const name of readdirSync(lockPath)) {
    if (!name.endsWith(".lock")) continue;
    if (stanza && !name.startsWith(`${stanza}-`)) continue;
    const file = `${lockPath}/${name}`;
    // A lock we can take is free (its holder died or finished).
    const fd = lockAcquire(file);
    if (fd >= 0) {
      closeSync(fd);
      continue;
    }
    const pid = lockHolder(file);
    if (pid) out.push({ file, pid });
  }
  return out;
}
