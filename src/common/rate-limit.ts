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
 * by n/rate and waits until the old `next` (or not at all if it is past). Idle time is saved up to
 * `burst` (default half a second, none before the first grant): the per-file pauses of a copy
 * (open, rename) are made up for, so the rate over a long run is the limit, while no window of T
 * seconds is granted more than rate × (T + burst) plus the last chunk.
 */

/** Nanoseconds on a clock that every thread of the process reads alike. */
export type Clock = () => bigint;

/** Wall-clock based (timeOrigin + now is the same instant in every Bun worker), in ns. */
export const systemClock: Clock = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));

const NEXT = 0; // theoretical arrival time of the next byte (ns); 0: nothing granted yet
const GRANTED = 1; // bytes granted so far
const RATE = 2; // bytes per second
const FIRST = 3; // instant of the first grant (ns)
const BURST = 4; // idle time saved up at most (ns)
const LAST = 5; // instant of the latest grant (ns)
const SLOTS = 6;

export class RateLimiter {
  readonly #a: BigInt64Array;
  readonly #clock: Clock;
  readonly #sleep: (ms: number) => Promise<void>;

  /** A new budget of `rate` bytes per second, or one attached to a shared buffer from another thread. */
  constructor(rate: number | SharedArrayBuffer, opts: { clock?: Clock; sleep?: (ms: number) => Promise<void>; burstMs?: number } = {}) {
    if (typeof rate === "number") {
      if (!(rate >= 1) || !Number.isSafeInteger(rate)) throw new RangeError(`rate-limit must be a whole number of bytes per second, got ${rate}`);
      this.#a = new BigInt64Array(new SharedArrayBuffer(SLOTS * 8));
      this.#a[RATE] = BigInt(rate);
      this.#a[BURST] = BigInt(Math.round((opts.burstMs ?? 500) * 1e6));
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

  /** Average rate granted from the first grant to the latest (bytes per second; 0 before two grants). */
  grantedRate(): number {
    const first = Atomics.load(this.#a, FIRST);
    const secs = Number(Atomics.load(this.#a, LAST) - first) / 1e9;
    return first !== 0n && secs > 0 ? this.granted / secs : 0;
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
      const floor = now - a[BURST]!; // idle time beyond the burst is not saved up
      // The first grant starts the clock (no credit for the time before it); later ones may use saved-up idle time.
      const start = next === 0n ? now : next > floor ? next : floor;
      if (Atomics.compareExchange(a, NEXT, next, start + costNs) !== next) continue; // another thread won: retry
      Atomics.compareExchange(a, FIRST, 0n, now);
      Atomics.add(a, GRANTED, BigInt(n));
      // The latest grant: when its bytes may go (a lagging thread's clock never moves it back).
      const at = start > now ? start : now;
      for (let last = Atomics.load(a, LAST); at > last && Atomics.compareExchange(a, LAST, last, at) !== last; last = Atomics.load(a, LAST));
      return start > now ? Number(start - now) / 1e6 : 0;
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
