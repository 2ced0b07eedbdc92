import { describe, expect, test } from "bun:test";
import { waitFor } from "../../../src/common/time.ts";

describe("waitFor", () => {
  test("returns the first value; undefined after the timeout", async () => {
    let n = 0;
    expect(await waitFor(5, async () => (++n >= 3 ? "ready" : undefined))).toBe("ready");
    expect(n).toBe(3);
    const start = performance.now();
    expect(await waitFor(0.05, async () => undefined)).toBeUndefined();
    expect(performance.now() - start).toBeGreaterThanOrEqual(45);
  });

  test("the wait between tries never exceeds maxDelayMs", async () => {
    // The 12th try comes after 10+20+40+80 + 7x100 = 850ms of waits with 100ms steps; with the
    // default 1s steps it would take over 5s. Timers fire late on a loaded machine, never early.
    let n = 0;
    const start = performance.now();
    expect(await waitFor(30, async () => (++n >= 12 ? n : undefined), { maxDelayMs: 100 })).toBe(12);
    const elapsed = performance.now() - start;
    expect(elapsed).toBeGreaterThanOrEqual(800);
    expect(elapsed).toBeLessThan(3000);
  });
});
