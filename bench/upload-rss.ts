/**
 * Peak RSS of one large upload through storage/object/chunked-write.ts (S3 multipart on Ceph RGW,
 * test/harness/rgw.ts, TLS on 127.0.0.1): a child process writes SIZE bytes (incompressible,
 * generated per chunk, never held whole) through S3Driver.openWrite and reports its RSS before the
 * upload and its peak (getrusage maxrss). ChunkedWrite holds at most partsInFlight + 1 = 5 chunk
 * buffers, so the upload's share should stay near 5 x chunk size whatever SIZE is.
 *
 *   sudo bun bench/upload-rss.ts [--size=1GiB] [--chunks=5MiB,16MiB]
 */
import { cpus } from "node:os";
import { join } from "node:path";
import { ROOT } from "../test/harness/cluster.ts";
import { Rgw } from "../test/harness/rgw.ts";
import { parseSize } from "./lib/options.ts";

const BUCKET = "pgbunker-upload-rss";

async function child(): Promise<void> {
  const { S3Http } = await import("../src/storage/s3/client.ts");
  const { S3Driver } = await import("../src/storage/s3/driver.ts");
  const { Storage } = await import("../src/storage/storage.ts");
  const { settings, size, chunk } = JSON.parse(process.env.UPLOAD_RSS_JOB!) as { settings: ConstructorParameters<typeof S3Http>[0]; size: number; chunk: number };
  const storage = new Storage(new S3Driver(new S3Http(settings), { chunkSize: chunk }), "/");
  const before = process.memoryUsage().rss;
  const started = performance.now();
  const w = await storage.openWrite(`big-${chunk}`, { filters: [{ type: "sha1" }, { type: "size" }] });
  // 1 MiB pieces, as a backup's pipeline hands them over; xorshift bytes so nothing compresses or repeats.
  const piece = new Uint8Array(1024 * 1024);
  const words = new Uint32Array(piece.buffer);
  let x = 2463534242;
  for (let done = 0; done < size; done += piece.byteLength) {
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x >>> 0;
    }
    await w.write(piece.subarray(0, Math.min(piece.byteLength, size - done)));
  }
  await w.close();
  const info = await storage.info(`big-${chunk}`);
  if (info?.size !== size) throw new Error(`uploaded ${info?.size} bytes, expected ${size}`);
  await storage.remove(`big-${chunk}`);
  console.log(JSON.stringify({ before, peak: process.resourceUsage().maxRSS * 1024, seconds: (performance.now() - started) / 1000 }));
}

async function main(): Promise<void> {
  const arg = (name: string, fallback: string) => process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback;
  const size = parseSize(arg("size", "1GiB"));
  const chunks = arg("chunks", "5MiB,16MiB").split(",").map(parseSize);
  const rgw = await Rgw.start({ memstoreBytes: 4 * 1024 ** 3 });
  try {
    await rgw.createBucket(BUCKET);
    const settings = rgw.client(BUCKET).settings;
    console.log(`upload of ${(size / 2 ** 20).toFixed(0)} MiB through ChunkedWrite (S3 multipart, 4 parts in flight), Ceph RGW on 127.0.0.1, ${cpus().length} cores`);
    console.log("| chunk size | RSS before the upload | peak RSS | peak − before | 5 x chunk | seconds |");
    console.log("|---|---:|---:|---:|---:|---:|");
    for (const chunk of chunks) {
      const r = Bun.spawnSync([process.execPath, join(ROOT, "bench/upload-rss.ts"), "--child"], { env: { ...process.env, UPLOAD_RSS_JOB: JSON.stringify({ settings, size, chunk }) }, stdout: "pipe", stderr: "pipe" });
      if (r.exitCode !== 0) throw new Error(`upload child failed: ${r.stderr.toString()}`);
      const m = JSON.parse(r.stdout.toString().trim().split("\n").at(-1)!) as { before: number; peak: number; seconds: number };
      const mib = (n: number) => (n / 2 ** 20).toFixed(0);
      console.log(`| ${mib(chunk)} MiB | ${mib(m.before)} MiB | ${mib(m.peak)} MiB | ${mib(m.peak - m.before)} MiB | ${mib(5 * chunk)} MiB | ${m.seconds.toFixed(1)} |`);
    }
  } finally {
    await rgw.stop();
  }
}

if (process.argv.includes("--child")) await child();
else await main();
