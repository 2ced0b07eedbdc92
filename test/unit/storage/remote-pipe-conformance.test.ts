import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { storageConformance } from "../../conformance/storage.ts";
import { pipeRemote } from "../protocol/pipe.ts";

storageConformance("remote over in-process pipes", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pgbunker-rpipe-"));
  const r = await pipeRemote(dir);
  return {
    storage: r.storage,
    cleanup: async () => {
      await r.client.close();
      await r.served;
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

// Frames split into 7-byte pieces: every reassembly path of the decoder.
storageConformance("remote over pipes delivering 7-byte pieces", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pgbunker-rpipe-"));
  const r = await pipeRemote(dir, { splitAt: 7 });
  return {
    storage: r.storage,
    cleanup: async () => {
      await r.client.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

// Network compression on: what crosses uncompressed is lz4'd for the trip, invisibly to callers.
storageConformance("remote over pipes with network compression", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pgbunker-rpipe-"));
  const r = await pipeRemote(dir, { networkCompress: true });
  return {
    storage: r.storage,
    cleanup: async () => {
      await r.client.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
