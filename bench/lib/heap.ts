/**
 * Shared by the heap benches (manifest-heap.ts, restore-heap.ts): stage-by-stage heap and RSS
 * deltas, and a manifest loaded the way repo/info-file.ts loads it.
 */
import { heapStats } from "bun:jsc";
import { closeSync, openSync, readSync } from "node:fs";
import { InfoReader } from "../../src/repo/ini.ts";
import { Manifest } from "../../src/repo/manifest.ts";

export interface HeapStep {
  what: string;
  /** JavaScript heap retained by the stage (bun:jsc heapSize after Bun.gc(true)), bytes. */
  heap: number;
  /** Process RSS growth over the stage, bytes. */
  rss: number;
}

/** step(what) records what the heap and RSS grew by since the previous step (or since the start). */
export function heapSteps(): { rows: HeapStep[]; step: (what: string) => void } {
  const snap = () => {
    Bun.gc(true);
    return { heap: heapStats().heapSize, rss: process.memoryUsage().rss };
  };
  const rows: HeapStep[] = [];
  let last = snap();
  return {
    rows,
    step: (what) => {
      const now = snap();
      rows.push({ what, heap: now.heap - last.heap, rss: now.rss - last.rss });
      last = now;
    },
  };
}

/** The streaming load: 1 MiB chunks through InfoReader into Manifest.reader. */
export function loadManifestStreaming(path: string): Manifest {
  const reader = Manifest.reader(path);
  const infoReader = new InfoReader(path, reader.visit);
  const fd = openSync(path, "r");
  const chunk = new Uint8Array(1 << 20);
  for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) infoReader.push(chunk.subarray(0, n));
  closeSync(fd);
  infoReader.end();
  return reader.result();
}
