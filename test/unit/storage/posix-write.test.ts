import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha1Hex } from "../../../src/filter/sha1.ts";
import { posix } from "../../../src/storage/posix/posix.ts";
import { Storage } from "../../../src/storage/storage.ts";

const dir = mkdtempSync(join(tmpdir(), "pgb-posix-"));
const storage = new Storage(posix, dir);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("posix write: commit only what was expected", () => {
  const data = new TextEncoder().encode("expected bytes\n");
  const filters = [{ type: "sha1" as const }, { type: "size" as const }];

  test("matching size and sha1: committed with the requested mtime", async () => {
    await storage.put("ok", data, { filters, expect: { size: data.byteLength, sha1: sha1Hex(data) }, mtime: 1_600_000_000, syncPath: false });
    expect(readFileSync(join(dir, "ok"))).toEqual(Buffer.from(data));
    expect(statSync(join(dir, "ok")).mtimeMs).toBe(1_600_000_000_000);
  });

  test("a checksum or size mismatch names the file and leaves neither the file nor a temp file", async () => {
    await expect(storage.put("bad", data, { filters, expect: { sha1: "0".repeat(40) } })).rejects.toThrow(/'.*\/bad' has checksum [0-9a-f]{40} but 0{40} was expected/);
    await expect(storage.put("bad", data, { filters, expect: { size: 3 } })).rejects.toThrow(/has size 15 but 3 was expected/);
    expect(readdirSync(dir).filter((n) => n.startsWith("bad"))).toEqual([]);
  });

  test("an existing file survives a failed replacement", async () => {
    await expect(storage.put("ok", new TextEncoder().encode("other"), { filters, expect: { sha1: sha1Hex(data) } })).rejects.toThrow(/ChecksumError|has checksum/);
    expect(readFileSync(join(dir, "ok"))).toEqual(Buffer.from(data));
  });

  test("truncate cuts a file and extends one sparsely", async () => {
    await storage.truncate("ok", 4);
    expect(readFileSync(join(dir, "ok")).toString()).toBe("expe");
    await storage.truncate("ok", 1024 * 1024);
    const st = statSync(join(dir, "ok"));
    expect(st.size).toBe(1024 * 1024);
    expect(st.blocks * 512).toBeLessThan(1024 * 1024);
    expect(existsSync(join(dir, "ok.pgbunker.tmp"))).toBe(false);
  });
});
