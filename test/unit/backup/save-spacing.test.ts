import { expect, test } from "bun:test";
import { saveSpacing } from "../../../src/command/backup/copy.ts";

test("partial manifest saves: no spacing while they are quick, ten times the last once one is slow (issue 19)", () => {
  expect(saveSpacing(0)).toBe(0);
  expect(saveSpacing(99)).toBe(0);
  expect(saveSpacing(100)).toBe(1000);
  expect(saveSpacing(4000)).toBe(40_000);
});
