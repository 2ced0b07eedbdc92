/**
 * Scratch directories for unit tests: each call makes a new one, and all of a test file's are
 * removed after its last test. Call scratchDirs at the top level of the test file.
 */
import { afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function scratchDirs(prefix: string): (parent?: string) => string {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  return (parent = tmpdir()) => {
    const d = mkdtempSync(join(parent, prefix));
    dirs.push(d);
    return d;
  };
}
