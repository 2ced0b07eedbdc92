/**
 * Retrying a parallel job whose connection to a remote host failed (job-retry,
 * job-retry-interval). pgBackRest's schedule: job-retry retries, the first at once, each later
 * one after job-retry-interval. Only connection failures are retried: a job that failed on its
 * data (a checksum, a missing file) would fail the same way again, and a retry after the
 * interval would only delay the error.
 */
import { err, PgbError, type ErrorName } from "../common/error.ts";

/** Errors of the link to a remote, not of the work: the session is dropped and the next try reconnects. */
const TRANSIENT: ReadonlySet<ErrorName> = new Set(["ProtocolError", "ProtocolTimeoutError", "HostConnectError"]);

export function isTransient(e: unknown): boolean {
  return e instanceof PgbError && TRANSIENT.has(e.kind);
}

/** Milliseconds to wait before each retry: `retries` entries, the first 0. */
export function retryIntervals(retries: number, intervalSeconds: number): number[] {
  return Array.from({ length: retries }, (_, i) => (i === 0 ? 0 : Math.round(intervalSeconds * 1000)));
}

/**
 * The error a job finally fails with, saying how often it was tried (`retried` times again), or
 * how to have it retried when the schedule has no retries (`scheduled` 0).
 */
export function retriedError(e: unknown, retried: number, scheduled: number): unknown {
  if (!isTransient(e) || (retried === 0 && scheduled > 0)) return e;
  const pe = e as PgbError;
  const hint = retried > 0
    ? `the job was tried ${retried + 1} times (job-retry=${scheduled}): the remote host or the network keeps failing.`
    : "job-retry=0: set job-retry (and job-retry-interval) to try a job again after a lost connection.";
  const out = err(pe.kind, pe.message, [...pe.hints, hint]);
  if (pe.stack) out.stack = pe.stack;
  return out;
}
