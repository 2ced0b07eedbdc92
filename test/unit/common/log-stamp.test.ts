/** Log timestamps come from libc's localtime_r (native/libc.ts): they must equal Date's local time. */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { stamp } from "../../../src/common/log.ts";

const LOG = join(import.meta.dir, "../../../src/common/log.ts");
// Winter, summer, the hour after a spring-forward, and a leap day, in milliseconds.
const EPOCHS = [1_700_000_000_123, 1_720_000_000_999, 1_711_846_800_000 + 3_600_000, 1_709_210_096_007];

function viaDate(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

test("stamp equals Date's local time in this process's zone", () => {
  for (const ms of EPOCHS) expect(stamp(ms)).toBe(viaDate(ms));
  expect(stamp()).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/);
});

test("stamp follows TZ with daylight saving time, as Date does", () => {
  for (const tz of ["Europe/Paris", "America/New_York", "Asia/Kolkata"]) {
    const code = `import { stamp } from ${JSON.stringify(LOG)};
      const ms = ${JSON.stringify(EPOCHS)};
      const p = (n, w = 2) => String(n).padStart(w, "0");
      const date = (x) => { const d = new Date(x); return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds()) + "." + p(d.getMilliseconds(), 3); };
      console.log(JSON.stringify(ms.map((x) => [stamp(x), date(x)])));`;
    const r = Bun.spawnSync([process.execPath, "-e", code], { env: { PATH: process.env.PATH ?? "", TZ: tz } });
    expect(r.exitCode).toBe(0);
    const pairs = JSON.parse(r.stdout.toString()) as [string, string][];
    for (const [libc, date] of pairs) expect({ tz, libc }).toEqual({ tz, libc: date });
    // The zone really applies (not UTC): the first instant is 22:13:20 UTC.
    expect(pairs[0]![0]).not.toContain(" 22:13:20.");
  }
});
