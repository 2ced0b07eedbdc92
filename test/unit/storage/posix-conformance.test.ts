import { rmSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { posix } from "../../../src/storage/posix/posix.ts";
import { Storage } from "../../../src/storage/storage.ts";
import { storageConformance } from "../../conformance/storage.ts";

storageConformance("posix", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pgbunker-posix-"));
  return { storage: new Storage(posix, dir), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
});
