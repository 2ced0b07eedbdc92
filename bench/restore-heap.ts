/**
 * What a restore holds per file beside the Manifest (issue 19), measured on a real backup.manifest:
 * the JavaScript heap each stage retains while the earlier ones are alive, as restore keeps them.
 *
 *   bun bench/restore-heap.ts PATH/backup.manifest
 *
 * Stages: the streaming load (the Manifest); planRestore; then, built the way restore/copy.ts and
 * restore/target.ts built them before the lazy jobs (a stand-in: those are not exported), the
 * file order, the batches, one job entry per file, the delta clean's map of expected paths and the
 * list of files left to fsync. Bun.gc(true) then bun:jsc heapStats().heapSize after each stage.
 */
import { heapSteps, loadManifestStreaming } from "./lib/heap.ts";
import { batches } from "../src/command/restore/copy.ts";
import { fileOrder, planRestore } from "../src/command/restore/plan.ts";

const path = process.argv[2];
if (!path) {
  console.error("usage: bun bench/restore-heap.ts PATH/backup.manifest");
  process.exit(2);
}
const { rows, step } = heapSteps();

const m = loadManifestStreaming(path);
step("Manifest (streaming load)");
const plan = planRestore(m, { pgPath: "/var/tmp/restore-heap" });
step("planRestore (the files are made from the manifest when asked for)");
const files = [...plan.files].sort(fileOrder);
step("a plan of every file, in restore order (what planRestore held before)");
const bs = [...batches(files)];
step("batches of the ordered files");
const entries = bs.map((b) => b.map((f) => ({ name: f.name, repoFile: `backup/rel/${f.label}/${f.name}.lz4`, dest: f.dest, size: f.size, checksum: f.checksum, timestamp: f.timestamp, mode: f.mode, user: "postgres", group: "postgres", zero: f.zero, preserve: false, syncNow: false, raw: false })));
step("one job entry per file (the params of every job, made up front)");
const expected = new Map<string, { type: string }>();
for (const f of files) expected.set(f.dest, { type: "file" });
step("delta clean: map of every expected destination");
const unsynced = files.map((f) => `${f.dest}`);
step("files left to fsync (one string each)");

const n = m.files.size;
console.log(`${path}: ${n} files\n`);
console.log("| stage | heap retained MiB | bytes per file |");
console.log("|---|---|---|");
for (const { what, heap: bytes } of rows) console.log(`| ${what} | ${(bytes / 1024 ** 2).toFixed(1)} | ${(bytes / n).toFixed(0)} |`);
// Keep every stage alive to the end, as restore kept them.
if (entries.length + expected.size + unsynced.length + files.length < 0) console.log(m.backup.label);
