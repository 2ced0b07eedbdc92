/**
 * Retries of transient object-store failures (5xx, 429, a reset connection, a stall): exponential
 * backoff with jitter, each retry logged with what failed and why. Permanent errors (PgbError: 403,
 * a missing bucket or container, a 4xx) pass through at once. Shared by every HTTP driver.
 */
import { err, PgbError } from "../../common/error.ts";
import { logWarn } from "../../common/log.ts";

export interface RetryPolicy {
  /** Attempts after the first. */
  retries: number;
  /** Delay before the first retry; doubled each time, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 4, baseDelayMs: 200, maxDelayMs: 5000 };

/** A transient failure: worth trying again. */
export class TransientError extends Error {}

/** HTTP statuses worth retrying: the engine is busy or failing for now. */
export const isTransientStatus = (s: number): boolean => s >= 500 || s === 429 || s === 408;

/** Delay before retry number `attempt` (1-based): base·2^(n-1), capped, with ±25% jitter. */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  const d = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(d * (0.75 + Math.random() * 0.5));
}

/** Run fn, retrying TransientErrors; `service` ("S3", "Azure") starts each log line and the final hint. */
export async function withRetry<T>(service: string, policy: Partial<RetryPolicy> | undefined, fn: () => Promise<T>): Promise<T> {
  const p = { ...DEFAULT_RETRY, ...policy };
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof PgbError) throw e;
      const reason = (e as Error).message ?? String(e);
      if (attempt >= p.retries)
        throw err("ProtocolError", `${reason} (gave up after ${attempt + 1} attempts)`, `check that the ${service} endpoint is reachable and healthy; transient failures were retried with backoff.`);
      const delay = backoffMs(p, attempt + 1);
      logWarn(`${service} ${reason}: retry ${attempt + 1} of ${p.retries} in ${delay}ms`);
      await Bun.sleep(delay);
    }
  }
}

/** Race a promise against a stall timer; the timer's error is transient. */
export function timeout<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TransientError(what())), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
