/**
 * How a large file is split across workers (backup: chunk frames compressed in parallel; restore:
 * those frames decompressed in parallel at their offsets). Not a user option: pgBackRest has no
 * such setting, and the stored result is an ordinary lz4/zstd file whatever the chunk size.
 *
 * 64 MiB: large enough that a chunk's frame overhead (a header, an end mark) and its job's
 * round trip are noise against its compression time (~100 ms), small enough that a 1 GiB segment
 * gives 16 jobs, so two to a few workers end together. A file is split only from two chunks up.
 */
export const CHUNK_SIZE = 64 * 1024 * 1024;

/**
 * TEST ONLY: PGBUNKER_TEST_CHUNK_SIZE lowers the chunk size so the integration tests get a file
 * of several chunks from a small table. Rounded down to whole 8 KiB pages (page checks per chunk
 * need whole pages); never set it in production.
 */
export function chunkSize(): number {
  const test = Number(process.env.PGBUNKER_TEST_CHUNK_SIZE ?? "");
  return Number.isFinite(test) && test >= 8192 ? test - (test % 8192) : CHUNK_SIZE;
}

/**
 * A file is worked on in chunks from this size up. OFF (no file is large enough) unless
 * PGBUNKER_TEST_CHUNK_SIZE is set: on the 2-core development machine the chunked path measured
 * slower than one job per file (bench/RESULTS.md, "One big table": backup 9.8 vs 5.75 CPU s, restore
 * 4.8 vs 2.7), because of its extra passes (the part files joined by a copy, the whole file read a
 * second time for its SHA-1, restore's read-back). It stays off until those passes are gone and
 * a bench shows it gains; the tests keep both directions working and pgBackRest-readable.
 */
export function chunkThreshold(): number {
  if (process.env.PGBUNKER_TEST_CHUNK_SIZE === undefined) return Number.POSITIVE_INFINITY;
  return 2 * chunkSize();
}

/** The stored formats whose streams concatenate frame by frame (gz and bz2 stay one stream). */
export function chunkableCompress(type: string): type is "lz4" | "zst" {
  return type === "lz4" || type === "zst";
}

/**
 * Which of `large` files (sorted largest first, each at least the threshold) to split: only those
 * that would otherwise leave workers idle. Whole files already keep `workers` busy while at least
 * that many remain; splitting them only adds the chunked path's own cost (the sequential SHA-1
 * pass; in backup also the join). So the last `large.length mod workers` files are split (one
 * large file and two workers: it; two and two: none; one worker: never).
 */
export function filesToSplit<T>(large: readonly T[], workers: number): Set<T> {
  const n = workers > 1 ? large.length % workers : 0;
  return new Set(n > 0 ? large.slice(large.length - n) : []);
}
