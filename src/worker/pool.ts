/**
 * A pool of process-max Bun workers running jobs from a queue. The main thread plans and records;
 * workers do the byte work (read → checksum → compress → write). Back-pressure: each worker holds
 * one job at a time, so memory stays bounded by buffer-size × process-max whatever the job count.
 * On the first failure no new job is started; jobs in flight finish, then the error is thrown.
 * A job whose remote connection failed is first tried again on its worker, per the retry
 * schedule (job-retry, retry.ts): the worker's broken session is dropped and the try reconnects.
 */
import { err, errorFromWire, PgbError } from "../common/error.ts";
import { log, logSettings, logWarn, type LogLevel } from "../common/log.ts";
import { rateLimiter } from "../common/rate-limit.ts";
import { sleep } from "../common/time.ts";
import { type JobMessage, type JobTable, type WorkerInit, type WorkerReply } from "./protocol.ts";
import { isTransient, retriedError } from "./retry.ts";

export interface Job<K extends string = string, P = unknown> {
  type: K;
  params: P;
}

/** The job of type K of table T, and what its handler returns. */
export type JobOf<T extends JobTable, K extends keyof T & string> = Job<K, Parameters<T[K]>[0]>;
export type ResultOf<T extends JobTable, K extends keyof T> = Awaited<ReturnType<T[K]>>;

interface Slot {
  worker: Worker;
  busy: boolean;
  processId: number;
}

let workerUrl: string | URL | undefined;

export interface PoolOptions {
  /** Extra per-command context a handler may need (e.g. the Config as JSON). */
  context?: unknown;
  /** Milliseconds before each retry of a job whose remote connection failed (retry.ts jobRetry); none: no retry. */
  retry?: readonly number[];
}

/** main.ts tells the pool where the worker entry is (it differs between source and compiled runs). */
export function setWorkerUrl(url: string | URL): void {
  workerUrl = url;
}

/** `T`: the job table the workers run (command/jobs.ts), so jobs and results are typed by it. */
export class WorkerPool<T extends JobTable = JobTable> {
  readonly #slots: Slot[] = [];
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: PgbError) => void; slot: Slot }>();
  #nextId = 1;
  #closed = false;
  readonly #retry: readonly number[];

  private constructor(retry: readonly number[]) {
    this.#retry = retry;
  }

  static async start<T extends JobTable = JobTable>(size: number, opts: PoolOptions = {}): Promise<WorkerPool<T>> {
    if (!workerUrl) throw err("AssertError", "worker entry is not set (setWorkerUrl)");
    const context = opts.context;
    const pool = new WorkerPool<T>(opts.retry ?? []);
    const s = logSettings();
    const ready: Promise<void>[] = [];
    for (let i = 0; i < size; i++) {
      const worker = new Worker(workerUrl, { smol: false });
      const slot: Slot = { worker, busy: false, processId: i + 1 };
      pool.#slots.push(slot);
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.onmessage = (ev: MessageEvent<WorkerReply>) => {
            if (ev.data.kind === "ready") {
              worker.onmessage = (e2: MessageEvent<WorkerReply>) => pool.#onMessage(slot, e2.data);
              resolve();
            }
          };
          worker.onerror = (ev) => reject(err("AssertError", `worker ${slot.processId} failed to start: ${ev.message}`));
        }),
      );
      const init: WorkerInit = {
        kind: "init",
        processId: i + 1,
        log: { console: s.console, stderr: s.stderr, file: s.file, timestamp: s.timestamp, filePath: s.filePath },
        context,
        rateLimit: rateLimiter()?.buffer,
      };
      worker.postMessage(init);
    }
    await Promise.all(ready);
    for (const slot of pool.#slots) {
      slot.worker.onerror = (ev) => pool.#onCrash(slot, ev.message);
    }
    return pool;
  }

  get size(): number {
    return this.#slots.length;
  }

  #onMessage(slot: Slot, msg: WorkerReply): void {
    if (msg.kind === "log") {
      log(msg.level as LogLevel, msg.message, slot.processId);
      return;
    }
    if (msg.kind !== "result" && msg.kind !== "error") return;
    const p = this.#pending.get(msg.id);
    if (!p) return;
    this.#pending.delete(msg.id);
    slot.busy = false;
    if (msg.kind === "result") p.resolve(msg.result);
    else p.reject(errorFromWire(msg.error));
  }

  #onCrash(slot: Slot, message: string): void {
    for (const [id, p] of this.#pending) {
      if (p.slot !== slot) continue;
      this.#pending.delete(id);
      p.reject(err("AssertError", `worker ${slot.processId} crashed: ${message}`));
    }
    slot.busy = false;
  }

  /** Run one job on a specific idle slot. */
  #dispatch<T>(slot: Slot, job: Job): Promise<T> {
    slot.busy = true;
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, slot });
      const msg: JobMessage = { kind: "job", id, type: job.type, params: job.params };
      slot.worker.postMessage(msg);
    });
  }

  /** Run a job on a slot, trying it again while its remote connection fails and retries remain (not once another job failed). */
  async #dispatchRetrying<T>(slot: Slot, job: Job, stopped: () => boolean): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#dispatch<T>(slot, job);
      } catch (e) {
        if (!isTransient(e) || attempt >= this.#retry.length || stopped()) throw retriedError(e, attempt, this.#retry.length);
        const wait = this.#retry[attempt]!;
        const pe = e as PgbError;
        logWarn(`${job.type} job on process ${slot.processId} failed: [${String(pe.code).padStart(3, "0")}] ${pe.message.split("\n")[0]}; retry ${attempt + 1} of ${this.#retry.length} ${wait ? `in ${wait / 1000}s` : "now"}`);
        if (wait) await sleep(wait);
      }
    }
  }

  /**
   * Run every job, at most one per worker at a time, in the order given (callers sort large files
   * first). `onResult` is called on the main thread as each job finishes. Throws the first error
   * after the jobs already running have finished.
   */
  async runAll<K extends keyof T & string>(jobs: Iterable<JobOf<T, K>>, onResult: (job: JobOf<T, K>, result: ResultOf<T, K>) => void | Promise<void>): Promise<void> {
    if (this.#closed) throw err("AssertError", "worker pool is closed");
    const it = jobs[Symbol.iterator]();
    let failure: unknown;
    const runSlot = async (slot: Slot): Promise<void> => {
      for (;;) {
        if (failure !== undefined) return;
        const next = it.next();
        if (next.done) return;
        try {
          const result = await this.#dispatchRetrying<ResultOf<T, K>>(slot, next.value, () => failure !== undefined);
          await onResult(next.value, result);
        } catch (e) {
          if (failure === undefined) failure = e;
          return;
        }
      }
    };
    await Promise.all(this.#slots.map(runSlot));
    if (failure !== undefined) throw failure;
  }

  /** Run a single job on the first idle worker (or wait for one). */
  async run<K extends keyof T & string>(job: JobOf<T, K>): Promise<ResultOf<T, K>> {
    let result: ResultOf<T, K> | undefined;
    await this.runAll([job], (_j, r) => {
      result = r;
    });
    return result as ResultOf<T, K>;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#slots) s.worker.terminate();
  }
}
