/**
 * Where a manifest's bytes per file go (issue 19): the JavaScript heap and the RSS each per-file
 * structure costs, measured on a real backup.manifest. (This replaces bench/manifest-memory.ts,
 * which measured the same load/render with RSS only.)
 *
 *   bun bench/manifest-heap.ts PATH/backup.manifest [DBDIR]
 *
 * Each stage is built, the heap collected (Bun.gc(true)) and bun:jsc's heapStats().heapSize and the
 * process RSS read; the difference from the previous stage is what that stage retains while the
 * earlier ones are still alive (as in backup, where the manifest lives while it is saved).
 * Stages: an optional listing of DBDIR as manifest-build.ts lists one directory; the old load
 * (the whole text, then an InfoIni of every entry, kept for comparison); the streaming load
 * (repo/info-file.ts's way: 1 MiB chunks through InfoReader into Manifest.reader); the streaming
 * render (pieces hashed and dropped, as a save writes them), checked byte-identical by SHA-1.
 * Caveat: JavaScriptCore scans the stack conservatively, so a dropped stage may be undercounted.
 */
import { heapStats } from "bun:jsc";
import { readFileSync } from "node:fs";
import { InfoIni } from "../src/repo/ini.ts";
import { heapSteps, loadManifestStreaming } from "./lib/heap.ts";
import { posix } from "../src/storage/posix/posix.ts";

const path = process.argv[2];
/** Optional: a database directory of the cluster, listed as manifest-build.ts lists it (one StorageInfo per entry). */
const dbDir = process.argv[3];
if (!path) {
  console.error("usage: bun bench/manifest-heap.ts PATH/backup.manifest [DBDIR]");
  process.exit(2);
}

const { rows, step } = heapSteps();

if (dbDir) {
  let listed: unknown[] | null = await posix.list(dbDir);
  step(`posix.list of DBDIR (${listed?.length ?? 0} entries; manifest-build.ts holds one such list at a time)`);
  listed = null;
  step("(list dropped)");
}

// The old way, for comparison: the whole text, then an InfoIni of every entry.
let text: string | undefined = readFileSync(path, "utf8");
const textLength = text.length;
step("old load, 1: manifest text as one string");
let ini: InfoIni | undefined = InfoIni.parse(text, path);
if (ini.keys("target:file").length === 0) console.log("(no files)");
step("old load, 2: InfoIni of every entry (still what loadInfoFile returns)");
ini = undefined;
text = undefined;
step("(text and InfoIni dropped)");

// The streaming load: what loadManifest does now.
const m = loadManifestStreaming(path);
step("streaming load (Manifest.reader): the Manifest is all that stays");
const n = m.files.size;

const hasher = new Bun.CryptoHasher("sha1");
let rendered = 0;
for (const piece of m.renderPieces()) {
  hasher.update(piece);
  rendered += piece.length;
}
const identical = hasher.digest("hex") === new Bun.CryptoHasher("sha1").update(readFileSync(path)).digest("hex");
step("streaming render (renderPieces, each piece hashed and dropped, as a save writes it)");

console.log(`${path}: ${n} files, text ${textLength} bytes (${(textLength / n).toFixed(0)} per file); rendered ${rendered} characters, byte-identical: ${identical}\n`);
console.log("| stage | heap retained MiB | bytes per file | RSS growth MiB |");
console.log("|---|---|---|---|");
for (const { what, heap: bytes, rss } of rows) console.log(`| ${what} | ${(bytes / 1024 ** 2).toFixed(1)} | ${(bytes / n).toFixed(0)} | ${(rss / 1024 ** 2).toFixed(1)} |`);
console.log(`\nprocess RSS now ${(process.memoryUsage().rss / 1024 ** 2).toFixed(0)} MiB, heap ${(heapStats().heapSize / 1024 ** 2).toFixed(1)} MiB (Manifest alive)`);
// Keep the manifest alive to the end, so the last rows measure it held.
if (m.files.size < 0) console.log(m.backup.label);
