/** Time helpers shared by commands: epoch seconds, sleeping, waiting with a deadline. */

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Call `check` until it returns a value (not undefined) or `timeoutSeconds` pass; the wait
 * between tries grows from 10ms to 1s (or maxDelayMs) so short waits are quick and long ones cheap.
 */
export async function waitFor<T>(timeoutSeconds: number, check: () => Promise<T | undefined>, opts: { maxDelayMs?: number } = {}): Promise<T | undefined> {
  const deadline = performance.now() + timeoutSeconds * 1000;
  const maxDelay = opts.maxDelayMs ?? 1000;
  let delay = Math.min(10, maxDelay);
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (performance.now() >= deadline) return undefined;
    await sleep(Math.min(delay, Math.max(1, deadline - performance.now())));
    delay = Math.min(delay * 2, maxDelay);
  }
}

/** "2024-01-02 03:04:05" in local time (pgBackRest's text timestamps). */
export function formatTimestamp(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** "2024-01-02 03:04:05+00" (PostgreSQL's timestamptz text) in local time with offset. */
export function formatTimestampTz(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const abs = Math.abs(off);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${formatTimestamp(epochSeconds)}${sign}${p(Math.floor(abs / 60))}${abs % 60 ? `:${p(abs % 60)}` : ""}`;
}
