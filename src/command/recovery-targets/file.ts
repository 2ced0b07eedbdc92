/**
 * The recovery-targets job: stream one archived WAL segment out of the repository, through
 * decryption and decompression, into the record reader, one buffer at a time (a segment is never
 * held whole), and return what the reader found: the records of interest and the two ends of the
 * records that cross into the neighbouring segments. Pure over Storage, run in a worker.
 */
import { err } from "../../common/error.ts";
import type { CompressType, FilterSpec } from "../../filter/filter.ts";
import { Pipeline } from "../../filter/pipeline.ts";
import { type SegmentScan, WalSegmentScanner } from "../../postgres/wal-records.ts";
import { type StorageSpec, workerStorage } from "../shared/storage.ts";

/** Job type (command/jobs.ts). */
export const WAL_SCAN_JOB = "wal-scan-segment";

export interface WalScanParams {
  storage: StorageSpec;
  /** Path of the stored segment, relative to the repository. */
  path: string;
  /** PostgreSQL's name of the segment. */
  segment: string;
  compressType: CompressType;
  /** archive.info's cipher-pass in an encrypted repository. */
  cipherPass?: string;
  bufferSize?: number;
}

export async function scanWalSegment(p: WalScanParams): Promise<SegmentScan> {
  const storage = await workerStorage(p.storage);
  const bufferSize = p.bufferSize ?? 1024 * 1024;
  const filters: FilterSpec[] = [];
  if (p.cipherPass) filters.push({ type: "decrypt", pass: p.cipherPass });
  if (p.compressType !== "none") filters.push({ type: "decompress", compressType: p.compressType });
  const scanner = new WalSegmentScanner(p.segment);
  const r = await storage.openRead(p.path, { bufferSize });
  if (!r) throw err("FileMissingError", `unable to open missing file '${storage.path(p.path)}' for read`, "was it expired while being read? run the command again.");
  const pipeline = new Pipeline(filters, (out) => scanner.push(out), bufferSize);
  let ended = false;
  try {
    for (let c = await r.read(); c !== null; c = await r.read()) pipeline.process(c);
    pipeline.end();
    ended = true;
  } finally {
    if (!ended) pipeline.free();
    await r.close();
  }
  return scanner.end();
}
