/**
 * CPU per byte of the backup and restore byte paths, stage by stage, in this process (no
 * PostgreSQL, no workers): reads the given files once into memory, then pushes them buffer by
 * buffer through each filter alone and through the whole backup chain, and reports user+system
 * CPU time per GiB (process.cpuUsage, so other processes' load on a shared machine does not
 * count, unlike wall time). Run it under `perf stat -e instructions` for instruction counts.
 *
 *   bun bench/profile-cpu.ts FILE... [--reps=N] [--buffer=BYTES] [--only=STAGE,...]
 *
 * Stages: sha1, page-checksum, lz4, backup (sha1 → size → page-checksum → lz4 → sha1 → size),
 * lz4-decompress, restore (lz4-decompress → sha1 → size).
 */
import { readFileSync } from "node:fs";
import { findResult, type FilterSpec } from "../src/filter/filter.ts";
import { filterBuffer, Pipeline } from "../src/filter/pipeline.ts";

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const files = args.filter((a) => !a.startsWith("--"));
const reps = Number(flag("reps") ?? 3);
const bufferSize = Number(flag("buffer") ?? 1024 * 1024);
const only = flag("only")?.split(",");
if (files.length === 0) {
  console.error("usage: bun bench/profile-cpu.ts FILE... [--reps=N] [--buffer=BYTES] [--only=STAGE,...]");
  process.exit(2);
}

const data = files.map((f) => readFileSync(f));
const total = data.reduce((n, d) => n + d.byteLength, 0);
const page: FilterSpec = { type: "page-checksum", firstBlock: 0, lsnLimit: "18446744073709551615", pageSize: 8192 };
const backup: FilterSpec[] = [{ type: "sha1" }, { type: "size" }, page, { type: "compress", compressType: "lz4" }, { type: "sha1" }, { type: "size" }];
const compressed = data.map((d) => filterBuffer(d, [{ type: "compress", compressType: "lz4" }]).data);

const stages: Record<string, { specs: FilterSpec[]; input: Uint8Array[] }> = {
  sha1: { specs: [{ type: "sha1" }], input: data },
  "page-checksum": { specs: [page], input: data },
  lz4: { specs: [{ type: "compress", compressType: "lz4" }], input: data },
  backup: { specs: backup, input: data },
  "lz4-decompress": { specs: [{ type: "decompress", compressType: "lz4", outputVerified: true }], input: compressed },
  restore: { specs: [{ type: "decompress", compressType: "lz4", outputVerified: true }, { type: "sha1" }, { type: "size" }], input: compressed },
};

/** One pass of every input through a fresh pipeline, buffer by buffer, as a storage read does. */
function pass(specs: FilterSpec[], input: Uint8Array[]): number {
  let out = 0;
  for (const d of input) {
    const p = new Pipeline(specs, (o) => (out += o.byteLength), bufferSize);
    for (let pos = 0; pos < d.byteLength; pos += bufferSize) p.process(d.subarray(pos, Math.min(d.byteLength, pos + bufferSize)));
    p.end();
    const pc = findResult(p.results(), "page-checksum");
    if (pc && !pc.valid) throw new Error(`page checksum errors: ${pc.errorTotal}`);
    p.free();
  }
  return out;
}

const gib = total / 1024 ** 3;
console.log(`${files.length} file(s), ${(total / 1024 ** 2).toFixed(0)} MiB, buffer ${bufferSize}, ${reps} reps (median)`);
for (const [name, s] of Object.entries(stages)) {
  if (only && !only.includes(name)) continue;
  pass(s.specs, s.input); // warm up (JIT, codec contexts, page faults of output buffers)
  const cpu: number[] = [];
  for (let r = 0; r < reps; r++) {
    const before = process.cpuUsage();
    pass(s.specs, s.input);
    const d = process.cpuUsage(before);
    cpu.push((d.user + d.system) / 1e6);
  }
  cpu.sort((a, b) => a - b);
  const med = cpu[Math.floor(cpu.length / 2)]!;
  console.log(`${name.padEnd(15)} ${(med / gib).toFixed(3)} s CPU/GiB  (${cpu.map((c) => c.toFixed(3)).join(" ")} s)`);
}
