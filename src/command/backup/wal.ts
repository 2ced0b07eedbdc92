/**
 * The WAL a backup needs: every segment from the start LSN's to the stop LSN's must be in the
 * archive before the backup is marked complete (archive-check), and may be copied into the backup
 * itself (archive-copy) so it can be restored without the archive.
 */
import { err } from "../../common/error.ts";
import { logInfo } from "../../common/log.ts";
import { waitFor } from "../../common/time.ts";
import { COMPRESS_EXT, compressTypeOfName } from "../../filter/compress.ts";
import type { CompressType, FilterSpec } from "../../filter/filter.ts";
import { findResult } from "../../filter/filter.ts";
import { segmentRange } from "../../postgres/wal.ts";
import { repoPath } from "../../repo/layout.ts";
import type { Manifest, ManifestFile } from "../../repo/manifest.ts";
import { walFind, type StoredWal } from "../../repo/wal-find.ts";
import type { Storage } from "../../storage/storage.ts";

export interface WalRange {
  start: string;
  stop: string;
  segmentSize: number;
}

/** Wait until every segment of the range is archived; returns where each one is stored. */
export async function waitForArchive(repo: Storage, stanza: string, archiveId: string, range: WalRange, timeoutSeconds: number): Promise<StoredWal[]> {
  const segments = segmentRange(range.start, range.stop, range.segmentSize);
  logInfo(`check archive for segment(s) ${range.start}:${range.stop}`);
  const found: StoredWal[] = [];
  for (const seg of segments) {
    // The last segment arrives a few hundred ms after the stop: look every 100ms at most (a
    // directory listing), so the backup ends when it lands, not up to a second later.
    const w = await waitFor(timeoutSeconds, () => walFind(repo, stanza, archiveId, seg), { maxDelayMs: 100 });
    if (!w)
      throw err(
        "ArchiveTimeoutError",
        `WAL segment ${seg} was not archived before the ${timeoutSeconds}s timeout`,
        [
          "check the archive_command to ensure that all options are correct (especially --stanza).",
          "check the PostgreSQL server log for errors.",
          "run the 'check' command to verify that archiving works.",
        ],
      );
    found.push(w);
  }
  return found;
}

/** archive-copy: store the backup's WAL under pg_data/pg_wal in the backup itself. */
export async function copyWalIntoBackup(
  repo: Storage, stanza: string, archiveId: string, manifest: Manifest, wal: StoredWal[],
  opts: { compressType: CompressType; compressLevel?: number; cipherPassWal?: string; cipherPassFile?: string; bufferSize: number; fileTemplate: Pick<ManifestFile, "mode" | "user" | "group"> },
): Promise<void> {
  for (const w of wal) {
    const walName = w.file.slice(0, 24);
    const name = `pg_data/pg_wal/${walName}`;
    const src = `${repoPath.archiveIdPath(stanza, archiveId)}/${walName.slice(0, 16)}/${w.file}`;
    const filters: FilterSpec[] = [];
    if (opts.cipherPassWal) filters.push({ type: "decrypt", pass: opts.cipherPassWal });
    const stored = compressTypeOfName(w.file);
    if (stored !== "none") filters.push({ type: "decompress", compressType: stored });
    filters.push({ type: "sha1", id: "file" }, { type: "size", id: "file" });
    if (opts.compressType !== "none") filters.push({ type: "compress", compressType: opts.compressType, level: opts.compressLevel });
    if (opts.cipherPassFile) filters.push({ type: "encrypt", pass: opts.cipherPassFile });
    filters.push({ type: "sha1", id: "repo" }, { type: "size", id: "repo" });
    const r = await repo.openRead(src, { filters, bufferSize: opts.bufferSize });
    if (!r) throw err("FileMissingError", `archived WAL segment '${repo.path(src)}' disappeared`);
    const dest = repoPath.backupFile(stanza, manifest.backup.label, name, COMPRESS_EXT[opts.compressType]);
    const wr = await repo.openWrite(dest, { bufferSize: opts.bufferSize });
    try {
      for (let c = await r.read(); c !== null; c = await r.read()) await wr.write(c);
      await wr.close();
    } catch (e) {
      await wr.abort();
      throw e;
    } finally {
      await r.close();
    }
    const res = r.results();
    if (findResult(res, "sha1", "file")!.hash !== w.sha1)
      throw err("ChecksumError", `archived WAL segment '${repo.path(src)}' does not match the SHA-1 in its name`, "the archive is corrupt: run verify.");
    manifest.files.set(name, {
      name,
      size: findResult(res, "size", "file")!.size,
      timestamp: manifest.backup.timestampStop ?? Math.floor(Date.now() / 1000),
      checksum: w.sha1,
      repoSize: findResult(res, "size", "repo")!.size,
      rck: findResult(res, "sha1", "repo")!.hash,
      ...opts.fileTemplate,
    });
  }
}
