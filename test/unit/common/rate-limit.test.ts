/**
 * The shared rate-limit budget's accounting, with an injected clock: never more than
 * rate × (elapsed + burst) plus one chunk granted, the whole rate granted while callers keep
 * asking, idle time saved up only to the burst, several holders of the same buffer (workers)
 * drawing on one budget.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { Progress } from "../../../src/common/progress.ts";
import { RateLimiter, rateLimiter, rateLimitSet, rateLimitTake } from "../../../src/common/rate-limit.ts";

const MiB = 1024 * 1024;
const SEC = 1_000_000_000n;

/** A clock the test moves; sleep advances it (what a waiting caller would see when it wakes). */
function fakeTime() {
  let now = 1_000n * SEC;
  return {
    clock: () => now,
    advanceMs: (ms: number) => (now += BigInt(Math.round(ms * 1e6))),
    get now() {
      return now;
    },
  };
}

afterEach(() => rateLimitSet(undefined));

describe("RateLimiter", () => {
  test("grants at most rate × (elapsed + burst) + one chunk, and the whole rate to a busy caller", async () => {
    const t = fakeTime();
    const burstMs = 500;
    const lim = new RateLimiter(2 * MiB, { clock: t.clock, sleep: async (ms) => void t.advanceMs(ms), burstMs });
    const start = t.now;
    const chunk = 256 * 1024;
    for (let i = 0; i < 64; i++) {
      await lim.take(chunk);
      const elapsed = Number(t.now - start) / 1e9;
      // granted so far may exceed the rate only by the burst and the chunk just granted
      expect(lim.granted).toBeLessThanOrEqual(2 * MiB * (elapsed + burstMs / 1000) + chunk);
    }
    // 16 MiB at 2 MiB/s (no burst before the first grant): the last chunk is granted at 7.875 s.
    expect(lim.granted).toBe(16 * MiB);
    expect(Number(t.now - start) / 1e9).toBeCloseTo(16 / 2 - chunk / (2 * MiB), 6);
  });

  test("a caller slower than the limit never waits; idle time is saved up only to the burst", () => {
    const t = fakeTime();
    const lim = new RateLimiter(MiB, { clock: t.clock, burstMs: 250 });
    expect(lim.reserve(MiB / 4)).toBe(0); // the first grant starts the clock
    expect(lim.reserve(MiB / 2)).toBeCloseTo(250, 6);
    t.advanceMs(800); // slower than the budget: no wait
    expect(lim.reserve(MiB / 4)).toBe(0);
    t.advanceMs(10_000); // long idle: worth 10 MiB, but only 250 ms of it is kept
    expect(lim.reserve(MiB / 4)).toBe(0); // from the saved-up quarter second
    expect(lim.reserve(MiB)).toBe(0);
    expect(lim.reserve(MiB)).toBeCloseTo(1000, 6);
  });

  test("holders of the same shared buffer (workers) draw on one budget", () => {
    const t = fakeTime();
    const main = new RateLimiter(4 * MiB, { clock: t.clock, burstMs: 0 });
    const workers = [0, 1, 2].map(() => new RateLimiter(main.buffer, { clock: t.clock }));
    expect(workers[0]!.rate).toBe(4 * MiB);
    const waits = workers.map((w) => w.reserve(MiB)); // three workers ask at the same instant
    expect(waits).toEqual([0, 250, 500]);
    expect(main.granted).toBe(3 * MiB);
    // the last of the three may go at 500 ms: 3 MiB over that half second so far
    expect(main.grantedRate()).toBeCloseTo((3 * MiB) / 0.5, 0);
  });

  test("refuses a rate that is not a positive whole number", () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new RateLimiter(bad)).toThrow(RangeError);
  });

  test("without rate-limit nothing waits; with it the progress line shows the limit", async () => {
    expect(rateLimitTake(MiB)).toBeUndefined();
    const p = new Progress("copy", 1, MiB, false);
    expect(p.line()).not.toContain("rate-limit");
    rateLimitSet(new RateLimiter(2 * MiB));
    expect(rateLimiter()!.rate).toBe(2 * MiB);
    expect(p.line()).toContain("rate-limit 2.0MiB/s");
  });
});
