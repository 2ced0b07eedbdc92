/** The worker half of self-check: compress a patterned buffer with lz4 and back, in a worker thread. */
import { findResult } from "../../filter/filter.ts";
import { filterBuffer } from "../../filter/pipeline.ts";

/** SHA-1 of the buffer before compression and after the round trip (equal when the codec works). */
export async function selfCheckJob(params: { size: number }): Promise<{ in?: string; back?: string }> {
  const data = new Uint8Array(params.size).map((_, i) => i % 251);
  const c = filterBuffer(data, [{ type: "sha1" }, { type: "compress", compressType: "lz4" }]);
  const d = filterBuffer(c.data, [{ type: "decompress", compressType: "lz4" }, { type: "sha1" }]);
  return { in: findResult(c.results, "sha1")?.hash, back: findResult(d.results, "sha1")?.hash };
}
