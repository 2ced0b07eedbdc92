import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flockHeld, Lock, lockFile, lockHolders, lockProgress, lockState, stopFile, stopped } from "../../../src/common/lock.ts";

describe("locks", () => {
  test("content is pgBackRest's JSON; state is read without taking the lock; progress is published", () => {
    const dir = mkdtempSync(join(tmpdir(), "pgb-lock-"));
    try {
      expect(lockState(dir, "demo", "backup")).toEqual({ held: false });
      const lock = Lock.acquire(dir, "demo", ["backup"], "backup");
      const file = lockFile(dir, "demo", "backup");
      expect(readFileSync(file, "utf8")).toMatch(new RegExp(`^\\{"execId":"${process.pid}-[0-9a-f]{8}","pid":${process.pid}\\}$`));
      expect(lockState(dir, "demo", "backup")).toEqual({ held: true, pid: process.pid, percentComplete: undefined });
      // Reading the state twice must not have taken the lock away from its holder.
      expect(lockState(dir, "demo", "backup").held).toBe(true);
      lockProgress(57.5);
      expect(readFileSync(file, "utf8")).toContain('"pctCplt":5750,');
      expect(lockState(dir, "demo", "backup").percentComplete).toBe(57.5);
      // stop --force finds the holder from the JSON content.
      expect(lockHolders(dir, "demo")).toEqual([{ file, pid: process.pid }]);
      lock.release();
      expect(lockState(dir, "demo", "backup").held).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a lock file that cannot be opened: the error names the file and the errno", () => {
    const dir = mkdtempSync(join(tmpdir(), "pgb-lock-"));
    try {
      // An existing directory where the lock file would go: open(2) fails with EISDIR.
      mkdirSync(lockFile(dir, "demo", "backup"), { recursive: true });
      expect(() => Lock.acquire(dir, "demo", ["backup"], "backup")).toThrow(`unable to acquire lock on file '${lockFile(dir, "demo", "backup")}': EISDIR`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("/proc/locks lines are matched by device and inode, waiters ignored", () => {
    const text = "1: FLOCK  ADVISORY  WRITE 3279 fe:00:2619958 0 EOF\n1: -> FLOCK  ADVISORY  WRITE 3300 fe:01:77 0 EOF\n";
    expect(flockHeld(text, 0xfe00, 2619958)).toBe(true);
    expect(flockHeld(text, 0xfe00, 2619959)).toBe(false);
    expect(flockHeld(text, 0xfe01, 77)).toBe(false);
  });

  test("stop files for a stanza or for all", () => {
    const dir = mkdtempSync(join(tmpdir(), "pgb-stop-"));
    try {
      expect(stopped(dir, "demo")).toBe(false);
      writeFileSync(stopFile(dir, "demo"), "");
      expect(stopped(dir, "demo")).toBe(true);
      expect(stopped(dir, "other")).toBe(false);
      writeFileSync(stopFile(dir), "");
      expect(stopped(dir, "other")).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
