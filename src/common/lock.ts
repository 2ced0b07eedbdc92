/**
 * Process locks and stop files in lock-path, named as pgBackRest names them:
 *   STANZA-archive.lock   archive-push/archive-get (async) of a stanza
 *   STANZA-backup.lock    backup, expire, stanza-create/upgrade/delete
 *   STANZA.stop / all.stop   written by `stop`, removed by `start`
 *
 * Locks are flock()s on the file (taken by the native helper): the kernel drops them when the
 * process dies, so a kill -9 never leaves a stale lock. The file holds the owner's pid so that
 * `stop --force` can terminate it.
 */
import { closeSync, existsSync, mkdirSync, readdirSync, readFileSync, writeSync, ftruncateSync } from "node:fs";
import { err } from "./error.ts";
import { lockAcquire } from "../native/helper.ts";

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

export class Lock {
  readonly #fds: number[];
  readonly files: string[];

  private constructor(fds: number[], files: string[]) {
    this.#fds = fds;
    this.files = files;
  }

  /** Take one or more locks for a stanza; throws LockAcquireError naming the holder. */
  static acquire(lockPath: string, stanza: string, types: readonly LockType[], command: string): Lock {
    ensureDir(lockPath);
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
          throw err("LockAcquireError", `unable to acquire lock on file '${file}': error ${-fd}`, "check lock-path and its permissions.");
        }
        ftruncateSync(fd, 0);
        writeSync(fd, `${process.pid}\n${command}\n`, 0);
        fds.push(fd);
        files.push(file);
      }
    } catch (e) {
      for (const fd of fds) closeSync(fd);
      throw e;
    }
    return new Lock(fds, files);
  }

  release(): void {
    for (const fd of this.#fds.splice(0)) {
      try {
        closeSync(fd);
      } catch {}
    }
  }
}

function lockHolder(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
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
