/**
 * self-check: prove the native layer and worker threads work on this machine (the first thing to
 * run after installing the executable): CRC-32C, page checksums, every codec, and lz4 inside
 * process-max worker threads.
 */
import { err } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";
import { filterBuffer } from "../../filter/pipeline.ts";
import { crc32c, crc32cHardware, pageChecksum } from "../../native/helper.ts";
import { startJobPool } from "../jobs.ts";

export async function run(cfg: Config): Promise<number> {
  const out: string[] = [];
  const check = (name: string, ok: boolean, detail: string) => {
    out.push(`${ok ? "ok  " : "FAIL"} ${name}: ${detail}`);
    if (!ok) throw err("AssertError", `self-check failed: ${name}: ${detail}\n${out.join("\n")}`);
  };

  const crc = crc32c(new TextEncoder().encode("123456789"));
  check("crc32c", crc === 0xe3069283, `0x${crc.toString(16)} (${crc32cHardware() ? "sse4.2" : "table"})`);

  const page = new Uint8Array(8192).map((_, i) => (i * 31) & 0xff);
  const sum = pageChecksum(page, 7);
  check("page checksum", sum >= 1 && sum <= 65535, `block 7 → ${sum}`);

  const data = new Uint8Array(4 * 1024 * 1024).map((_, i) => (i * 7 + (i >> 12)) & 0xff);
  const want = new Bun.CryptoHasher("sha1").update(data).digest("hex");
  for (const t of ["lz4", "gz", "zst", "bz2"] as const) {
    try {
      const c = filterBuffer(data, [{ type: "compress", compressType: t }]);
      const d = filterBuffer(c.data, [{ type: "decompress", compressType: t }, { type: "sha1" }]);
      const got = (d.results[1] as { hash: string }).hash;
      check(t, got === want, `${data.byteLength} → ${c.data.byteLength} bytes, round trip ${got === want ? "identical" : "DIFFERS"}`);
    } catch (e) {
      if (t === "lz4" || t === "gz") throw e;
      out.push(`skip ${t}: ${(e as Error).message}`);
    }
  }

  const workers = cfg.get("process-max");
  const pool = await startJobPool(Math.max(workers, 2));
  try {
    const results: { in?: string; back?: string }[] = [];
    await pool.runAll(
      Array.from({ length: pool.size * 2 }, () => ({ type: "self-check" as const, params: { size: 1 << 20 } })),
      (_job, r) => {
        results.push(r);
      },
    );
    check("workers", results.length === pool.size * 2 && results.every((r) => r.in !== undefined && r.in === r.back), `${pool.size} threads ran ${results.length} lz4 jobs`);
  } finally {
    await pool.close();
  }
  process.stdout.write(out.join("\n") + "\n");
  return 0;
}
