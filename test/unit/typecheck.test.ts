// The code base stays strict TypeScript: the suite fails on any type error.
import { expect, test } from "bun:test";
import { join } from "node:path";

test("tsc --noEmit (strict) passes", () => {
  const root = join(import.meta.dir, "../..");
  const r = Bun.spawnSync([join(root, "node_modules/.bin/tsc"), "--noEmit", "-p", root], { cwd: root });
  expect(r.stdout.toString() + r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
}, 120_000);
