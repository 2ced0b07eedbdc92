/**
 * Every job a worker can run, by type: the one table, collected from the per-file jobs that live
 * beside their commands (command/backup/file.ts, ...). Each handler loads its module on first use
 * (a worker runs few job types) and is typed by the function it calls, so `startJobPool`'s pool
 * checks every job's parameters and result at compile time.
 */
import { WorkerPool, type PoolOptions } from "../worker/pool.ts";

/** A handler typed by the module function it calls once its module is loaded. */
function lazy<M, P, R>(load: () => Promise<M>, pick: (m: M) => (params: P) => Promise<R>): (params: P) => Promise<R> {
  return async (params) => pick(await load())(params);
}

export const JOB_TABLE = {
  "backup-file": lazy(() => import("./backup/file.ts"), (m) => m.backupFile),
  /** repo-bundle: small files stored back to back in one repository file (command/backup/file.ts). */
  "backup-bundle": lazy(() => import("./backup/file.ts"), (m) => m.backupBundle),
  /** A large file on several workers: its chunks, its whole-file SHA-1, the join (command/backup/chunk.ts). */
  "backup-chunk": lazy(() => import("./backup/chunk.ts"), (m) => m.backupChunk),
  "backup-chunk-hash": lazy(() => import("./backup/chunk.ts"), (m) => m.backupChunkHash),
  "backup-chunk-join": lazy(() => import("./backup/chunk.ts"), (m) => m.backupChunkJoin),
  /** backup-copy: one stored file (or WAL file), or one bundle, into another repository (command/backup-copy/file.ts). */
  "backup-copy-file": lazy(() => import("./backup-copy/file.ts"), (m) => m.copyFile),
  "backup-copy-bundle": lazy(() => import("./backup-copy/file.ts"), (m) => m.copyBundle),
  /** Asynchronous archive-push: one WAL file into every repository (command/archive/push/file.ts). */
  "archive-push-file": lazy(() => import("./archive/push/file.ts"), (m) => m.pushFileJob),
  /** Asynchronous archive-get: one WAL file from the archive into the spool (command/archive/get/file.ts). */
  "archive-get-file": lazy(() => import("./archive/get/file.ts"), (m) => m.getFileJob),
  /** verify: check stored files against their recorded sizes and SHA-1s (command/verify/file.ts). */
  "verify-file": lazy(() => import("./verify/file.ts"), (m) => m.verifyFiles),
  /** Self-check (`pgbunker self-check`): compress a buffer with lz4 in a worker and back. */
  "self-check": lazy(() => import("./self-check/job.ts"), (m) => m.selfCheckJob),
  /** recovery-targets (and restore --type=name): the records of interest in one archived WAL segment (command/recovery-targets/file.ts). */
  "wal-scan-segment": lazy(() => import("./recovery-targets/file.ts"), (m) => m.scanWalSegment),
  /** Restore files from the repository into the data directory (command/restore/file.ts). */
  "restore-files": lazy(() => import("./restore/file.ts"), (m) => m.restoreFiles),
  /** A large stored file of several frames: one frame at its offset, then the whole checked and put in place (command/restore/chunk.ts). */
  "restore-frame": lazy(() => import("./restore/chunk.ts"), (m) => m.restoreFrame),
  "restore-frame-finish": lazy(() => import("./restore/chunk.ts"), (m) => m.restoreFrameFinish),
  /** fsync a batch of restored files. */
  "restore-sync": lazy(() => import("./restore/file.ts"), (m) => m.syncFiles),
};

export type Jobs = typeof JOB_TABLE;
export type JobType = keyof Jobs;

/** A pool of process-max workers running jobs of this table. */
export function startJobPool(size: number, opts: PoolOptions = {}): Promise<WorkerPool<Jobs>> {
  return WorkerPool.start<Jobs>(size, opts);
}
