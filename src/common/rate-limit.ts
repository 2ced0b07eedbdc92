/**
 * rate-limit: one byte budget shared by the main thread and every worker of a process, so N
 * workers together move at most `rate` bytes per second.
 *
 * The state lives in a SharedArrayBuffer that the pool hands each worker at start, and is changed
 * with compare-and-swap only: no thread asks another for permission, so an unthrottled run pays
 * nothing (no limiter: one null check per chunk) and a throttled one pays one CAS per chunk.
 *
 * The bucket is kept as a "theoretical arrival time" (GCRA): `next` is the instant at which the
 * bytes granted so far would all have gone out at exactly `rate`. Taking n bytes moves `next` on
 * by n/rate and waits until the old `next` (or not at all if it is past): so the bytes granted by
 * any instant T never exceed rate × (T − first grant) plus the last chunk, and idle time is not
 * saved up into a burst.
 */

/** Nanoseconds on a clock that every thread of the process reads alike. */
export type Clock = () => bigint;

/** Wall-clock based (timeOrigin + now is the same instant in every Bun worker), in ns. */
export const systemClock: Clock = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));

const NEXT = 0; // theoretical arrival time of the next byte (ns); 0: nothing granted yet
const GRANTED = 1; // bytes granted so far
const RATE = 2; // bytes per second
const FIRST = 3; // instant of the first grant (ns)
const SLOTS = 4;

export class RateLimiter {
  readonly #a: BigInt64Array;
  readonly #clock: Clock;
  readonly #sleep: (ms: number) => Promise<void>;

  /** A new budget of `rate` bytes per second, or one attached to a shared buffer from another thread. */
  constructor(rate: number | SharedArrayBuffer, opts: { clock?: Clock; sleep?: (ms: number) => Promise<void> } = {}) {
    if (typeof rate === "number") {
      if (!(rate >= 1) || !Number.isSafeInteger(rate)) throw new RangeError(`rate-limit must be a whole number of bytes per second, got ${rate}`);
      this.#a = new BigInt64Array(new SharedArrayBuffer(SLOTS * 8));
      this.#a[RATE] = BigInt(rate);
    } else this.#a = new BigInt64Array(rate);
    this.#clock = opts.clock ?? systemClock;
    this.#sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** The shared state, to hand to a worker (structured clone keeps it shared). */
  get buffer(): SharedArrayBuffer {
    return this.#a.buffer as SharedArrayBuffer;
  }

  get rate(): number {
    return Number(this.#a[RATE]);
  }

  /** Bytes granted so far, by every thread. */
  get granted(): number {
    return Number(Atomics.load(this.#a, GRANTED));
  }

  /** Average rate granted since the first grant (bytes per second; 0 before any). */
  grantedRate(): number {
    const first = Atomics.load(this.#a, FIRST);
    if (first === 0n) return 0;
    const secs = Number(this.#clock() - first) / 1e9;
    return secs > 0 ? this.granted / secs : 0;
  }

  /**
   * Reserve n bytes: returns how many milliseconds the caller must wait before moving them (0 when
   * the budget has room). Exposed for tests, which drive it with an injected clock.
   */
  reserve(n: number): number {
    const a = this.#a;
    const costNs = (BigInt(n) * 1_000_000_000n) / a[RATE]!;
    for (;;) {
      const now = this.#clock();
      const next = Atomics.load(a, NEXT);
      const start = next > now ? next : now;
      if (Atomics.compareExchange(a, NEXT, next, start + costNs) !== next) continue; // another thread won: retry
      Atomics.compareExchange(a, FIRST, 0n, start);
      Atomics.add(a, GRANTED, BigInt(n));
      return Number(start - now) / 1e6;
    }
  }

  /** Wait until n bytes may be moved. */
  async take(n: number): Promise<void> {
    if (n <= 0) return;
    const wait = this.reserve(n);
    if (wait >= 1) await this.#sleep(wait);
  }
}

let active: RateLimiter | undefined;

/** Set (or clear) this process's limiter: main.ts from rate-limit, a worker from the buffer its pool sent. */
export function rateLimitSet(limiter: RateLimiter | SharedArrayBuffer | undefined): void {
  active = limiter instanceof SharedArrayBuffer ? new RateLimiter(limiter) : limiter;
}

/** This process's limiter, if rate-limit is set. */
export function rateLimiter(): RateLimiter | undefined {
  return active;
}

/** Wait until n more bytes may be moved (no-op without rate-limit). Call once per chunk, before moving it. */
export function rateLimitTake(n: number): Promise<void> | undefined {
  return active?.take(n);
}
