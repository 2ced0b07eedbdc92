/**
 * Every job a worker (or a remote) can run, by type. Each command's per-file job lives beside the
 * command (command/backup/file.ts, ...); this table is the one place that collects them.
 */
import type { JobTable } from "../worker/protocol.ts";

export const JOB_TABLE: JobTable = {
  "backup-file": async (params) => (await import("./backup/file.ts")).backupFile(params),
  /** repo-bundle: small files stored back to back in one repository file (command/backup/file.ts). */
  "backup-bundle": async (params) => (await import("./backup/file.ts")).backupBundle(params),
  /** Asynchronous archive-push: one WAL file into every repository (command/archive/push/file.ts). */
  "archive-push-file": async (params) => (await import("./archive/push/file.ts")).pushFileJob(params),
  /** Asynchronous archive-get: one WAL file from the archive into the spool (command/archive/get/file.ts). */
  "archive-get-file": async (params) => (await import("./archive/get/file.ts")).getFileJob(params),
  /** verify: check stored files against their recorded sizes and SHA-1s (command/verify/file.ts). */
  "verify-file": async (files: import("./verify/file.ts").VerifyFileParams[]) => (await import("./verify/file.ts")).verifyFiles(files),
  /** Self-check used by tests and `pgbunker version --check`: compress a buffer with lz4 in a worker. */
  "self-check": async (params: { size: number }) => {
    const { filterBuffer } = await import("../filter/pipeline.ts");
    const data = new Uint8Array(params.size).map((_, i) => i % 251);
    const c = filterBuffer(data, [{ type: "sha1", id: "in" }, { type: "compress", compressType: "lz4" }, { type: "size", id: "out" }]);
    const d = filterBuffer(c.data, [{ type: "decompress", compressType: "lz4" }, { type: "sha1" }]);
    return { in: c.results[0], out: c.results[2], back: d.results[1] };
  },
  /** recovery-targets (and restore --type=name): the records of interest in one archived WAL segment (command/recovery-targets/file.ts). */
  "wal-scan-segment": async (params) => (await import("./recovery-targets/file.ts")).scanWalSegment(params),
  /** Restore files from the repository into the data directory (command/restore/file.ts). */
  "restore-files": async (params) => (await import("./restore/file.ts")).restoreFiles(params),
  /** fsync a batch of restored files. */
  "restore-sync": async (params) => (await import("./restore/file.ts")).syncFiles(params),
};
