/**
 * Retries of transient S3 failures (5xx, 429, a reset connection, a stall): exponential backoff
 * with jitter, each retry logged with what failed and why. Permanent errors (PgbError: 403,
 * NoSuchBucket, a 4xx) pass through at once.
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

/** Delay before retry number `attempt` (1-based): base·2^(n-1), capped, with ±25% jitter. */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  const d = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(d * (0.75 + Math.random() * 0.5));
}

export async function withRetry<T>(what: string, policy: Partial<RetryPolicy> | undefined, fn: () => Promise<T>): Promise<T> {
  const p = { ...DEFAULT_RETRY, ...policy };
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof PgbError) throw e;
      const reason = (e as Error).message ?? String(e);
      if (attempt >= p.retries)
        throw err("ProtocolError", `${reason} (gave up after ${attempt + 1} attempts)`, "check that the S3 endpoint is reachable and healthy; transient failures were retried with backoff.");
      const delay = backoffMs(p, attempt + 1);
      logWarn(`S3 ${reason}: retry ${attempt + 1} of ${p.retries} in ${delay}ms`);
      await Bun.sleep(delay);
    }
  }
}
