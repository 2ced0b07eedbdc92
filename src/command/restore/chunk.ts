/**
 * A large stored file restored by several workers: when its stored lz4/zstd stream is several
 * frames, each with its content size (pgbunker's chunked backups; filter/frames.ts finds them
 * from headers), each frame job decompresses one frame into the shared temp file at its offset,
 * and the finish job checks the whole file's size and SHA-1 against the manifest (a SHA-1 cannot
 * be combined from pieces: one sequential read, the pieces just written), then puts it in place
 * with its attributes, as the one-job path does. A file of one frame (pgBackRest's) is restored
 * as one stream as before.
 */
import { logDebug } from "../../common/log.ts";
import type { FilterSpec } from "../../filter/filter.ts";
import type { Frame } from "../../filter/frames.ts";
import { checkExpected, TEMP_EXT } from "../../storage/storage.ts";
import { workerStorage } from "../shared/storage.ts";
import { fillAndClose, pumpRateLimited, restoreFailed, type RestoreCommon, type RestoreFileEntry, type RestoreFileResult } from "./file.ts";

export const RESTORE_FRAME_JOB = "restore-frame";
export const RESTORE_FRAME_FINISH_JOB = "restore-frame-finish";

export interface RestoreFrameParams {
  common: RestoreCommon;
  file: RestoreFileEntry;
  frame: Frame;
  /** Offset of the frame's content in the restored file. */
  at: number;
  index: number;
  count: number;
}

const tempOf = (f: RestoreFileEntry) => `${f.dest}${TEMP_EXT}`;

export async function restoreFrame(p: RestoreFrameParams): Promise<number> {
  const { common: c, file: f, frame } = p;
  logDebug(`restore frame ${p.index + 1}/${p.count} of ${f.dest} (offset ${p.at}, ${frame.contentSize} bytes)`);
  const pg = await workerStorage(c.pg);
  const repo = await workerStorage(c.repo);
  // Decompressed where written, as the one-job path does (a remote repository sends compressed bytes).
  const filters: FilterSpec[] = [{ type: "decompress", compressType: c.compressType as "lz4" | "zst", outputVerified: true }, { type: "size" }];
  try {
    const r = await repo.openRead(f.repoFile, { offset: frame.offset, limit: frame.size, bufferSize: c.bufferSize });
    try {
      const w = await pg.openWrite(tempOf(f), { offset: p.at, sync: false, syncPath: false, mode: f.mode, filters, expect: { size: frame.contentSize }, bufferSize: c.bufferSize });
      await fillAndClose(w, () => pumpRateLimited(r!, w));
    } finally {
      await r?.close();
    }
  } catch (e) {
    restoreFailed(e, `'${f.name}' from '${repo.path(f.repoFile)}'`);
  }
  return frame.contentSize;
}

/** All frames written: size and SHA-1 checked, attributes set, put in place (and fsynced when large). */
export async function restoreFrameFinish(p: { common: RestoreCommon; file: RestoreFileEntry; count: number }): Promise<RestoreFileResult> {
  const { common: c, file: f } = p;
  logDebug(`restore frames of ${f.dest} written (${p.count}): checking its SHA-1`);
  const pg = await workerStorage(c.pg);
  const temp = tempOf(f);
  try {
    // A longer temp file left by an earlier try keeps no bytes past the size.
    await pg.truncate(temp, f.size);
    const r = await pg.openRead(temp, { filters: [{ type: "sha1" }, { type: "size" }], bufferSize: c.bufferSize });
    try {
      while ((await r!.read()) !== null);
    } finally {
      await r!.close();
    }
    checkExpected(pg.path(temp), r!.results(), { size: f.size, sha1: f.checksum });
    await pg.setAttributes(temp, { mode: f.mode, user: f.user, group: f.group, mtime: f.timestamp });
    await pg.move(temp, f.dest);
    if (f.syncNow) await pg.pathSync(f.dest);
  } catch (e) {
    await pg.remove(temp, { ignoreMissing: true }).catch(() => {});
    restoreFailed(e, `'${f.name}' from '${(await workerStorage(c.repo)).path(f.repoFile)}'`);
  }
  return { action: "copy", synced: f.syncNow === true };
}
