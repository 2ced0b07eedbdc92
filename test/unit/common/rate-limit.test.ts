/**
 * The shared rate-limit budget's accounting, with an injected clock: never more than
 * rate × elapsed (plus one chunk) granted, the whole rate granted while callers keep asking,
 * idle time not saved up, several holders of the same buffer (workers) drawing on one budget.
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
  test("grants at most rate × elapsed + one chunk, and the whole rate to a busy caller", async () => {
    const t = fakeTime();
    const lim = new RateLimiter(2 * MiB, { clock: t.clock, sleep: async (ms) => void t.advanceMs(ms) });
    const start = t.now;
    const chunk = 256 * 1024;
    for (let i = 0; i < 64; i++) {
      await lim.take(chunk);
      const elapsed = Number(t.now - start) / 1e9;
      // granted so far may exceed the rate only by the chunk just granted
      expect(lim.granted).toBeLessThanOrEqual(2 * MiB * elapsed + chunk);
    }
    // 16 MiB at 2 MiB/s: the last chunk is granted at 7.875 s (its own time comes after).
    expect(lim.granted).toBe(16 * MiB);
    expect(Number(t.now - start) / 1e9).toBeCloseTo(16 / 2 - chunk / (2 * MiB), 6);
  });

  test("a caller slower than the limit never waits; idle time is not saved up into a burst", () => {
    const t = fakeTime();
    const lim = new RateLimiter(MiB, { clock: t.clock });
    expect(lim.reserve(MiB / 2)).toBe(0);
    t.advanceMs(600); // slower than the budget (0.5 s per half MiB)
    expect(lim.reserve(MiB / 2)).toBe(0);
    t.advanceMs(10_000); // long idle
    expect(lim.reserve(MiB)).toBe(0);
    // no credit from the idle time: the next MiB waits its full second
    expect(lim.reserve(MiB)).toBeCloseTo(1000, 6);
  });

  test("holders of the same shared buffer (workers) draw on one budget", () => {
    const t = fakeTime();
    const main = new RateLimiter(4 * MiB, { clock: t.clock });
    const workers = [0, 1, 2].map(() => new RateLimiter(main.buffer, { clock: t.clock }));
    expect(workers[0]!.rate).toBe(4 * MiB);
    const waits = workers.map((w) => w.reserve(MiB)); // three workers ask at the same instant
    expect(waits).toEqual([0, 250, 500]);
    expect(main.granted).toBe(3 * MiB);
    t.advanceMs(750);
    expect(main.grantedRate()).toBeCloseTo((3 * MiB) / 0.75, 0);
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
