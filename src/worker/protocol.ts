/**
 * Messages between the main thread and its Bun workers. A job is a type name plus plain
 * parameters; the handler for a type is the same function a remote runs (see command/jobs.ts), so
 * "a queue of jobs over N clients" works whether the clients are threads or hosts.
 */
import type { WireError } from "../common/error.ts";
import type { LogSettings } from "../common/log.ts";

/** A job handler: plain (structured-clonable) parameters in, a plain result out. */
export type JobHandler = (params: never) => Promise<unknown>;
export type JobTable = Record<string, JobHandler>;

export interface WorkerInit {
  kind: "init";
  log: Omit<LogSettings, "processId" | "filePath"> & { filePath?: string };
  processId: number;
  /** Extra per-command context a handler may need (e.g. the Config as JSON). */
  context?: unknown;
  /** The process's rate-limit budget (common/rate-limit.ts), shared so all workers draw on one. */
  rateLimit?: SharedArrayBuffer;
}

export interface JobMessage {
  kind: "job";
  id: number;
  type: string;
  params: unknown;
}

export type WorkerReply =
  | { kind: "ready" }
  | { kind: "result"; id: number; result: unknown }
  | { kind: "error"; id: number; error: WireError }
  | { kind: "log"; level: string; message: string };
