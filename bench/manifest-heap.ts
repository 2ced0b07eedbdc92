/**
 * Where a backup's bytes per file go (issue 19): the JavaScript heap retained by each per-file
 * structure pgbunker's backup holds, measured on a real manifest.
 *
 *   bun bench/manifest-heap.ts /var/tmp/pgbunker-bench/run-20000/repo-pgbunker/backup/rel/<label>/backup.manifest \
 *       [/var/tmp/pgbunker-bench/relations-20000/pg/base/5]
 *
 * Each stage is built, the heap collected (Bun.gc(true)) and bun:jsc's heapStats().heapSize read;
 * the difference from the previous stage is what that stage's objects retain while the earlier
 * ones are still alive — as in backup, where the manifest, its tasks, the job units and (at each
 * partial save) a rendered copy all live at once. The job units are rebuilt with the shapes
 * backup/copy.ts gives them (one BackupFileParams per file, the worker's copy of a bundle job is
 * a structured clone of the same), since copyFiles does not expose them.
 */
import { heapStats } from "bun:jsc";
import { readFileSync } from "node:fs";
import { InfoIni } from "../src/repo/ini.ts";
import { Manifest, type ManifestFile } from "../src/repo/manifest.ts";
import { posix } from "../src/storage/posix/posix.ts";

const path = process.argv[2];
/** Optional: a database directory of the cluster, listed as manifest-build.ts lists it (one StorageInfo per entry). */
const dbDir = process.argv[3];
if (!path) {
  console.error("usage: bun bench/manifest-heap.ts PATH/backup.manifest");
  process.exit(2);
}

const heap = () => {
  Bun.gc(true);
  return heapStats().heapSize;
};
const rows: [string, number][] = [];
let last = heap();
const step = (what: string) => {
  const now = heap();
  rows.push([what, now - last]);
  last = now;
};

// Held so that each stage's objects stay alive while the next is measured.
const keep: unknown[] = [];

if (dbDir) {
  let listed: unknown[] | null = await posix.list(dbDir);
  const count = listed?.length ?? 0;
  step(`posix.list of ${dbDir} (${count} entries; manifest-build.ts holds one such list at a time)`);
  listed = null;
  step("(list dropped)");
}

let text: string | undefined = readFileSync(path, "utf8");
const textLength = text.length;
step("manifest text (one string, as read)");

let ini: InfoIni | undefined = InfoIni.parse(text, path);
step("InfoIni.parse (section maps of key → value text)");

const m = Manifest.fromIni(ini, path);
step("Manifest.fromIni (ManifestFile objects in a Map, while the ini is alive)");
ini = undefined;
step("dropping the InfoIni");
text = undefined;
step("dropping the text (after load only the Manifest stays)");

const files = [...m.files.values()];
const n = files.length;

// backup/copy.ts: one CopyTask per file, then one BackupFileParams per bundled file (paramsOf).
const tasks = files.map((file: ManifestFile) => ({ file }));
keep.push(tasks);
step("CopyTask[] (one object per file)");

const spec = { driver: "posix", path: "/var/lib/postgresql/data" };
const repo = { driver: "posix", path: "/var/lib/pgbackrest" };
const units = [] as { tasks: typeof tasks; shown: string[]; job: { type: string; params: unknown } }[];
for (let i = 0; i < tasks.length; i += 200) {
  const cur = tasks.slice(i, i + 200);
  const members = cur.map((t) => {
    const pgFile = t.file.name.slice("pg_data/".length);
    return {
      params: {
        pg: { ...spec },
        repo,
        pgFile,
        repoFile: `backup/rel/20261207-000000F/${t.file.name}.lz4`,
        compressType: "lz4",
        compressLevel: undefined,
        cipherPass: undefined,
        bufferSize: 1048576,
        pageChecksum: { firstBlock: 0, lsnLimit: "0/0", pageSize: 8192 },
        delta: undefined,
        resume: undefined,
        block: undefined,
        raw: false,
      },
      display: `${spec.path}/${pgFile}`,
    };
  });
  units.push({ tasks: cur, shown: members.map((x) => x.display), job: { type: "backup-bundle", params: { repo, repoFile: `bundle/${i}`, bufferSize: 1048576, files: members.map((x) => x.params), bundleId: i } } });
}
keep.push(units);
step("job units (BackupFileParams + display string per file, all built before the pool starts)");

const unitOf = new Map(units.map((u) => [u.job, u]));
keep.push(unitOf);
step("unitOf map");

let clones: unknown[] | undefined = units.map((u) => structuredClone(u.job));
step(`structured clones of the jobs (what postMessage hands a worker; in the worker's heap; ${clones.length} jobs)`);
clones = undefined;
step("(clones dropped)");

const rendered = m.toIni();
keep.push(rendered);
step("Manifest.toIni (a second InfoIni, at every partial save and at the end)");
const out = rendered.render();
keep.push(out);
step("render() text");

console.log(`${path}: ${n} files, text ${textLength} bytes (${(textLength / n).toFixed(0)} per file)\n`);
console.log("| stage | heap retained MiB | bytes per file |");
console.log("|---|---|---|");
let total = 0;
for (const [what, bytes] of rows) {
  total += bytes;
  console.log(`| ${what} | ${(bytes / 1024 ** 2).toFixed(1)} | ${(bytes / n).toFixed(0)} |`);
}
console.log(`| sum (what is live at the end) | ${(total / 1024 ** 2).toFixed(1)} | ${(total / n).toFixed(0)} |`);
console.log(`\nprocess RSS now ${(process.memoryUsage().rss / 1024 ** 2).toFixed(0)} MiB`);
