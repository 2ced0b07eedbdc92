import { expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileSystemType, localTime, startWriteback } from "../../../src/native/libc.ts";

test("localTime: libc's calendar fields of an epoch second", () => {
  const t = localTime(1_700_000_000)!;
  const d = new Date(1_700_000_000_000);
  expect(t).toEqual({ year: d.getFullYear(), month: d.getMonth() + 1, day: d.getDate(), hour: d.getHours(), minute: d.getMinutes(), second: d.getSeconds() });
});

test("startWriteback: starts write-back of a written range; false on a bad descriptor; data unchanged", () => {
  const dir = mkdtempSync(join(tmpdir(), "pgb-libc-"));
  try {
    const path = join(dir, "f");
    const fd = openSync(path, "w");
    const data = new Uint8Array(3 * 1024 * 1024).map((_, i) => i & 0xff);
    writeSync(fd, data);
    expect(startWriteback(fd, 0, data.byteLength)).toBe(true);
    expect(startWriteback(fd, 1024 * 1024, 0)).toBe(true); // 0 = to the end of the file
    closeSync(fd);
    expect(startWriteback(fd, 0, 1)).toBe(false);
    expect(Buffer.compare(readFileSync(path), data)).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("fileSystemType: the statfs magic of a descriptor, as stat -f reports it (tmpfs, the temp dir's file system)", () => {
  for (const dir of ["/dev/shm", tmpdir()]) {
    const fd = openSync(dir, "r");
    try {
      const expected = Number.parseInt(Bun.spawnSync(["stat", "-f", "-c", "%t", dir]).stdout.toString().trim(), 16);
      expect(fileSystemType(fd)).toBe(expected);
    } finally {
      closeSync(fd);
    }
  }
  expect(fileSystemType(-1)).toBeUndefined();
});
