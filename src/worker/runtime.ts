/**
 * The worker side of the pool: receive init (log settings, context), then run jobs by type from a
 * handler table and post back results or serialised errors. Log lines are forwarded to the main
 * thread, which owns the console, stderr and log file.
 */
import { logConfigure, logSetForwarder, type LogLevel } from "../common/log.ts";
import { errorToWire } from "../common/error.ts";
import { rateLimitSet } from "../common/rate-limit.ts";
import { type JobMessage, type JobTable, type WorkerInit, type WorkerReply } from "./protocol.ts";

declare const self: Worker;

let context: unknown;

/**
 * Files handled between two full collections of this worker's heap. A worker reads, hashes and
 * (de)compresses file after file; what each leaves behind (buffers, codec and hasher state freed by
 * finalizers) is little JavaScript heap but much native memory, which JavaScriptCore's collection
 * schedule does not see: over a million files the RSS ran far ahead of what is live (issue 19).
 */
const COLLECT_EVERY_FILES = 4096;
let filesSinceCollect = 0;

/** How many files a job's params stand for: a batch (verify), a bundle (backup), paths to sync (restore), one file otherwise. */
function filesOf(params: unknown): number {
  if (Array.isArray(params)) return params.length;
  const p = params as { files?: unknown; paths?: unknown } | null;
  return Array.isArray(p?.files) ? p.files.length : Array.isArray(p?.paths) ? p.paths.length : 1;
}

/** Context the main thread passed at start (e.g. the command's Config as JSON). */
export function workerContext<T>(): T {
  return context as T;
}

export function serveWorker(table: JobTable): void {
  const post = (m: WorkerReply) => self.postMessage(m);
  self.onmessage = async (ev: MessageEvent<WorkerInit | JobMessage>) => {
    const msg = ev.data;
    if (msg.kind === "init") {
      logConfigure({ ...msg.log, filePath: undefined, file: msg.log.file, processId: msg.processId });
      logSetForwarder((level: LogLevel, message: string) => post({ kind: "log", level, message }));
      context = msg.context;
      rateLimitSet(msg.rateLimit);
      post({ kind: "ready" });
      return;
    }
    const handler = table[msg.type];
    try {
      if (!handler) throw new Error(`unknown job type '${msg.type}'`);
      post({ kind: "result", id: msg.id, result: await (handler as (params: unknown) => Promise<unknown>)(msg.params) });
    } catch (e) {
      post({ kind: "error", id: msg.id, error: errorToWire(e) });
    }
    filesSinceCollect += filesOf(msg.params);
    if (filesSinceCollect >= COLLECT_EVERY_FILES) {
      filesSinceCollect = 0;
      Bun.gc(true);
    }
  };
}
