/**
 * Where a backup's bytes per file go, first part: what one backup.manifest costs in the process
 * (issue 19). Reads the manifest text, parses it into the Manifest object graph, renders it again,
 * and prints the RSS and heap growth of each step per file (after a full GC each time).
 *
 *   bun bench/manifest-memory.ts PATH/backup.manifest
 */
import { readFileSync } from "node:fs";
import { Manifest } from "../src/repo/manifest.ts";

const path = process.argv[2];
if (!path) {
  console.error("usage: bun bench/manifest-memory.ts PATH/backup.manifest");
  process.exit(2);
}
const snap = () => {
  Bun.gc(true);
  return process.memoryUsage();
};
const m0 = snap();
const text = readFileSync(path, "utf8");
const m1 = snap();
const manifest = Manifest.parse(text);
const m2 = snap();
const rendered = manifest.render();
const m3 = snap();
const n = manifest.fileList().length;
const perFile = (a: number, b: number) => `${((b - a) / n / 1024).toFixed(2)} KiB`;
console.log(`files ${n}, manifest ${text.length} bytes (${(text.length / n).toFixed(0)} bytes/file); render identical: ${rendered === text}`);
console.log(`text read:  RSS +${perFile(m0.rss, m1.rss)}/file`);
console.log(`parse:      RSS +${perFile(m1.rss, m2.rss)}/file, heap +${perFile(m1.heapUsed, m2.heapUsed)}/file`);
console.log(`render:     RSS +${perFile(m2.rss, m3.rss)}/file`);
