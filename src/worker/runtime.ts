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
  };
}
