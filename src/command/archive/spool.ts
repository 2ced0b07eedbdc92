/**
 * Asynchronous archiving, the parts both halves share. PostgreSQL runs the foreground command
 * (archive-push / archive-get with archive-async=y); it talks to a background process
 * (`archive-push:async` / `archive-get:async`, started detached from pgbunker itself) only
 * through the spool, laid out as pgBackRest lays it out:
 *
 *   spool-path/archive/STANZA/out/NAME.ok      pushed ("0\nwarning" when there is one to relay)
 *   spool-path/archive/STANZA/out/NAME.error   failed: "CODE\nmessage" (the foreground raises it)
 *   spool-path/archive/STANZA/in/NAME          prefetched segment, ready to hand to PostgreSQL
 *   spool-path/archive/STANZA/in/NAME.ok       looked for and not in the archive
 *   .../global.error                           the background process failed before any file
 *
 * One background process per stanza at a time: it holds the stanza's archive lock.
 */
import { err, errorKindByCode, type PgbError } from "../../common/error.ts";
import { Lock, lockState } from "../../common/lock.ts";
import { sleep } from "../../common/time.ts";
import type { Config } from "../../config/parse.ts";
import { STATUS_ERROR, STATUS_GLOBAL, STATUS_OK } from "../../repo/layout.ts";
import type { Storage } from "../../storage/storage.ts";
import { asPgbError } from "./common.ts";

export type Status = { kind: "ok"; warning?: string } | { kind: "error"; error: PgbError };

/** The status of a WAL file (or `global`) in a spool directory, if one has been written. */
export async function statusRead(spool: Storage, dir: string, name: string): Promise<Status | undefined> {
  const ok = await spool.get(`${dir}/${name}${STATUS_OK}`, { ignoreMissing: true });
  if (ok) {
    const text = new TextDecoder().decode(ok);
    const nl = text.indexOf("\n");
    return nl < 0 ? { kind: "ok" } : { kind: "ok", warning: text.slice(nl + 1) };
  }
  const bad = await spool.get(`${dir}/${name}${STATUS_ERROR}`, { ignoreMissing: true });
  if (bad) {
    const text = new TextDecoder().decode(bad);
    const nl = text.indexOf("\n");
    const code = Number(text.slice(0, nl));
    const lines = text.slice(nl + 1).trimEnd().split("\n");
    const hints = lines.filter((l) => l.startsWith("HINT: ")).map((l) => l.slice(6));
    return { kind: "error", error: err(errorKindByCode(code), lines.filter((l) => !l.startsWith("HINT: ")).join("\n"), hints) };
  }
  return undefined;
}

export async function statusWriteOk(spool: Storage, dir: string, name: string, warning?: string): Promise<void> {
  await spool.put(`${dir}/${name}${STATUS_OK}`, warning ? `0\n${warning}` : "");
}

export async function statusWriteError(spool: Storage, dir: string, name: string, e: PgbError): Promise<void> {
  const hints = e.hints.map((h) => `\nHINT: ${h}`).join("");
  await spool.put(`${dir}/${name}${STATUS_ERROR}`, `${e.code}\n${e.message}${hints}`);
}

export async function statusRemove(spool: Storage, dir: string, name: string, which: "ok" | "error" | "both" = "both"): Promise<void> {
  if (which !== "error") await spool.remove(`${dir}/${name}${STATUS_OK}`, { ignoreMissing: true });
  if (which !== "ok") await spool.remove(`${dir}/${name}${STATUS_ERROR}`, { ignoreMissing: true });
}

export const globalStatus = (spool: Storage, dir: string) => statusRead(spool, dir, STATUS_GLOBAL);
export const globalStatusRemove = (spool: Storage, dir: string) => statusRemove(spool, dir, STATUS_GLOBAL, "error");
export const globalStatusWrite = (spool: Storage, dir: string, e: PgbError) => statusWriteError(spool, dir, STATUS_GLOBAL, e);

/** The WAL file a status file is about (NAME.ok → NAME), or undefined for other files. */
export function statusOf(file: string): string | undefined {
  if (file.endsWith(STATUS_OK)) return file.slice(0, -STATUS_OK.length);
  if (file.endsWith(STATUS_ERROR)) return file.slice(0, -STATUS_ERROR.length);
  return undefined;
}

/**
 * Starts the background process when none is running, and again if it ends before the
 * foreground got its answer (it may have exited just before our WAL file appeared).
 */
export class AsyncStarter {
  readonly #cfg: Config;
  readonly #params: string[];
  #proc: ReturnType<typeof Bun.spawn> | undefined;
  #lastStart = Number.NEGATIVE_INFINITY;

  constructor(cfg: Config, params: string[]) {
    this.#cfg = cfg;
    this.#params = params;
  }

  ensureRunning(): void {
    if (this.#proc && this.#proc.exitCode === null) return;
    if (performance.now() - this.#lastStart < 500) return;
    const stanza = this.#cfg.req("stanza");
    // Another background process holds the lock: it will find our file on its next pass.
    if (lockState(this.#cfg.req("lock-path"), stanza, "archive").held) return;
    this.#lastStart = performance.now();
    this.#proc = Bun.spawn([...selfCommand(), ...this.#childArgs()], { stdio: ["ignore", "ignore", "ignore"], detached: true, cwd: "/" });
    this.#proc.unref();
  }

  #childArgs(): string[] {
    // The child reads the same config files and environment; only the command line is passed on.
    // It must never write to the terminal PostgreSQL gave the foreground: its log goes to its file.
    return [
      ...this.#cfg.cliArgs(["log-level-console", "log-level-stderr"]),
      "--log-level-console=off",
      "--log-level-stderr=off",
      `${this.#cfg.command}:async`,
      ...this.#params,
    ];
  }
}

/** How to run this very pgbunker again: the compiled executable, or bun + the entry script. */
function selfCommand(): string[] {
  const script = process.argv[1];
  return script && !script.startsWith("/$bunfs/") && script !== process.execPath ? [process.execPath, script] : [process.execPath];
}

/**
 * The frame of a background process: the stanza's archive lock (none: another background process
 * is at work and will do this one's job), a clean global status, and global.error if it fails so
 * that the foreground waiting for its file learns why nothing will come.
 */
export async function runBackground(cfg: Config, spool: Storage, dir: string, work: () => Promise<void>): Promise<number> {
  const lock = await acquireArchiveLock(cfg);
  if (!lock) return 0;
  try {
    await globalStatusRemove(spool, dir);
    await work();
    return 0;
  } catch (e) {
    await globalStatusWrite(spool, dir, asPgbError(e)).catch(() => {});
    throw e;
  } finally {
    lock.release();
  }
}

/**
 * The background process's lock. A foreground probing the lock at the same instant can make the
 * first attempt fail, so try for a moment before concluding another process holds it.
 */
async function acquireArchiveLock(cfg: Config): Promise<Lock | undefined> {
  const deadline = performance.now() + 500;
  for (;;) {
    try {
      return Lock.acquire(cfg.req("lock-path"), cfg.req("stanza"), ["archive"], cfg.commandName);
    } catch (e) {
      if ((e as PgbError).kind !== "LockAcquireError" || performance.now() > deadline) {
        if ((e as PgbError).kind === "LockAcquireError") return undefined;
        throw e;
      }
      await sleep(20);
    }
  }
}
