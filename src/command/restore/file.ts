/**
 * The per-file restore job a worker (or a remote) runs: plain parameters in, a small result out.
 *
 *   repository file (or a member of a bundle) → decrypt → decompress → sha1 + size → data directory
 *
 * The write is atomic and committed only when size and SHA-1 match the manifest, so a corrupt
 * repository file fails naming the file and leaves nothing half-written. With --delta an existing
 * file is kept when its first `size` bytes hash to the manifest's checksum (a relation that grew
 * since the backup is cut back); with --force --delta when size and modification time match.
 *
 * Files are not fsynced one by one as they are written: `syncFiles` does it for all of them at the
 * end (a file at a time costs a journal commit each), before pg_control is put in place.
 */
import { err, PgbError } from "../../common/error.ts";
import type { CompressType, FilterSpec } from "../../filter/filter.ts";
import { findResult } from "../../filter/filter.ts";
import { rateLimitTake } from "../../common/rate-limit.ts";
import type { Storage, StorageInfo, StorageRead, StorageWrite } from "../../storage/storage.ts";
import { type StorageSpec, workerStorage } from "../shared/storage.ts";
import { inPlace, restoreBlockFile, type InPlace, type RestoreBlockIncr } from "./block.ts";

export const RESTORE_FILES_JOB = "restore-files";
export const RESTORE_SYNC_JOB = "restore-sync";

/** What every file of a restore shares. */
export interface RestoreCommon {
  repo: StorageSpec;
  pg: StorageSpec;
  compressType: CompressType;
  cipherPass?: string;
  /** none: always write; checksum: --delta; time: --delta --force. */
  delta: "none" | "checksum" | "time";
  /** --force: a file stamped at or after the backup's copy start may have changed within that second. */
  copyStart: number;
  bufferSize?: number;
}

/** One file to restore. */
export interface RestoreFileEntry {
  /** Manifest name, for messages. */
  name: string;
  /** Repository file relative to the repository; for a bundle member, with its offset and length. */
  repoFile: string;
  offset?: number;
  limit?: number;
  /** Absolute destination. */
  dest: string;
  /** Write to this name instead, not atomically (pg_control, put in place after everything else). */
  writeTo?: string;
  size: number;
  checksum?: string;
  timestamp: number;
  mode: number;
  user?: string;
  group?: string;
  /** Sparse zeroed file (database excluded from a selective restore). */
  zero?: boolean;
  /** --type=preserve: keep the file if it exists. */
  preserve?: boolean;
  /** fsync as soon as written (large files: their write-back then overlaps the other work). */
  syncNow?: boolean;
  /** A block incremental file (repo-block): assembled from its block map. */
  block?: RestoreBlockIncr;
  /** Stored raw (a bundle member of a backup-bundle-raw backup): no cipher magic. */
  raw?: boolean;
  /** Only the checks (delta, preserve): a file to write is left to the caller (`pending`), which restores it by frames. */
  checkOnly?: boolean;
}

export type RestoreFileParams = RestoreCommon & RestoreFileEntry;

/** A job: several files (small ones travel together, so a worker is not idle between them). */
export interface RestoreBatch {
  common: RestoreCommon;
  files: RestoreFileEntry[];
}

export type RestoreAction = "copy" | "match" | "match-time" | "zero-size" | "zero" | "preserve";

export interface RestoreFileResult {
  action: RestoreAction;
  /** Already fsynced by the job (the final pass can skip it). */
  synced?: boolean;
  /** checkOnly: the file must be written, nothing was. */
  pending?: boolean;
}


/** The job: restore each file of the batch, in order; the first failure stops it. */
export async function restoreFiles(batch: RestoreBatch): Promise<RestoreFileResult[]> {
  const out: RestoreFileResult[] = [];
  for (const f of batch.files) out.push(await restoreFile({ ...batch.common, ...f }));
  return out;
}

export async function restoreFile(p: RestoreFileParams): Promise<RestoreFileResult> {
  const pg = await workerStorage(p.pg);
  const attrs = { mode: p.mode, user: p.user, group: p.group, mtime: p.timestamp };

  if (p.preserve && (await pg.info(p.dest, { ignoreMissing: true })) !== null) return { action: "preserve" };

  // A block incremental file in place is read once: whole-file match, and which blocks can stay.
  let placed: InPlace | null = null;
  if (p.delta !== "none" && !p.zero && p.writeTo === undefined) {
    const info = await pg.info(p.dest, { ignoreMissing: true });
    let kept: RestoreAction | undefined;
    if (info?.type === "file" && p.block && p.delta === "checksum" && p.size > 0) {
      placed = await inPlace(pg, p, p.block);
      if (placed && placed.size === p.size && placed.sha1 === p.checksum) {
        if (info.size > p.size) await pg.truncate(p.dest, p.size);
        kept = "match";
      }
    } else if (info?.type === "file") kept = await keepExisting(pg, p, info);
    if (kept) {
      const cut = info!.size !== p.size; // keepExisting cut it back to the backup's size
      // Touch only what differs: an unchanged file stays clean, so its fsync costs nothing.
      const fix = {
        mode: (info!.mode & 0o7777) !== p.mode ? p.mode : undefined,
        mtime: info!.mtime !== p.timestamp || cut ? p.timestamp : undefined,
        user: p.user !== undefined && info!.user !== p.user ? p.user : undefined,
        group: p.group !== undefined && info!.group !== p.group ? p.group : undefined,
      };
      if (Object.values(fix).some((v) => v !== undefined)) await pg.setAttributes(p.dest, fix);
      return { action: kept };
    }
  }

  if (p.zero || p.size === 0) {
    // An empty file is not read from the repository (bundles do not even store it).
    await pg.put(p.dest, new Uint8Array(0), { ...attrs, sync: false });
    if (p.zero && p.size > 0) await pg.truncate(p.dest, p.size);
    if (p.zero) await pg.setAttributes(p.dest, { mtime: p.timestamp });
    return { action: p.zero ? "zero" : "copy" };
  }

  if (p.checkOnly) return { action: "copy", pending: true };
  await copyFromRepo(pg, await workerStorage(p.repo), p, placed);
  return { action: "copy", synced: p.syncNow === true };
}

/** Delta: can the file already in place stay? */
async function keepExisting(pg: Storage, p: RestoreFileParams, info: StorageInfo): Promise<RestoreAction | undefined> {
  if (p.delta === "time") return info.size === p.size && info.mtime === p.timestamp && p.timestamp < p.copyStart ? "match-time" : undefined;
  if (info.size < p.size) return undefined;
  if (p.size === 0) {
    if (info.size > 0) await pg.truncate(p.dest, 0);
    return "zero-size";
  }
  const r = await pg.openRead(p.dest, { limit: p.size, filters: [{ type: "sha1" }], bufferSize: p.bufferSize });
  try {
    while ((await r!.read()) !== null);
  } finally {
    await r!.close();
  }
  if (findResult(r!.results(), "sha1")?.hash !== p.checksum) return undefined;
  // A relation that grew after the backup: its first `size` bytes are the backup's, cut the rest.
  if (info.size > p.size) await pg.truncate(p.dest, p.size);
  return "match";
}

/**
 * Write the file from the repository: its stored bytes decrypted and decompressed, or for a block
 * incremental file its blocks assembled from the map (`placed`: what a delta found in place).
 */
async function copyFromRepo(pg: Storage, repo: Storage, p: RestoreFileParams, placed: InPlace | null): Promise<void> {
  const filters: FilterSpec[] = [];
  if (!p.block) {
    if (p.cipherPass !== undefined) filters.push({ type: "decrypt", pass: p.cipherPass, raw: p.raw });
    // The SHA-1 and size below are checked against the manifest before the file is put in place.
    if (p.compressType !== "none") filters.push({ type: "decompress", compressType: p.compressType, outputVerified: p.checksum !== undefined });
  }
  filters.push({ type: "sha1" }, { type: "size" });
  const where = `'${p.name}' from '${repo.path(p.repoFile)}'${p.offset !== undefined ? ` (offset ${p.offset}, ${p.limit} bytes)` : ""}`;
  try {
    const r = p.block ? null : await repo.openRead(p.repoFile, { offset: p.offset, limit: p.limit, bufferSize: p.bufferSize });
    try {
      const w = await pg.openWrite(p.writeTo ?? p.dest, {
        atomic: p.writeTo === undefined,
        sync: p.syncNow === true, // the others are fsynced at the end, in one pass (restore-sync)
        syncPath: false,
        mode: p.mode,
        user: p.user,
        group: p.group,
        mtime: p.timestamp,
        filters,
        expect: { size: p.size, sha1: p.checksum },
        bufferSize: p.bufferSize,
      });
      await fillAndClose(w, () => (p.block ? restoreBlockFile(pg, repo, p, p.block, placed, (chunk) => w.write(chunk)) : pumpRateLimited(r!, w)));
    } finally {
      await r?.close();
    }
  } catch (e) {
    restoreFailed(e, where);
  }
}

/** Every chunk of a read into a write, at the rate limit (rate-limit). */
export async function pumpRateLimited(r: StorageRead, w: StorageWrite): Promise<void> {
  for (let chunk = await r.read(); chunk !== null; chunk = await r.read()) {
    await rateLimitTake(chunk.byteLength);
    await w.write(chunk);
  }
}

/** Run fill, then close the write (its checks of size and SHA-1 run there); abort it if anything fails, so nothing half-written is left. */
export async function fillAndClose(w: StorageWrite, fill: () => Promise<unknown>): Promise<void> {
  try {
    await fill();
  } catch (e) {
    await w.abort();
    throw e;
  }
  await w.close();
}

/** A restore error naming the file (`where`) and, when the stored bytes are bad, what to do about it. */
export function restoreFailed(e: unknown, where: string): never {
  if (!(e instanceof PgbError)) throw e;
  const hint = e.kind === "ChecksumError" || e.kind === "FormatError" || e.kind === "CryptoError"
    ? ["the repository copy of this file is damaged: run 'pgbunker verify' to see what else is affected.", "restore an earlier backup set with --set, or take a new backup."]
    : e.hints;
  throw err(e.kind, `unable to restore ${where}: ${e.message}`, hint);
}

/** fsync restored files (kept ones too: an interrupted run may have left them unsynced). */
export async function syncFiles(p: { pg: StorageSpec; paths: string[] }): Promise<number> {
  const pg = await workerStorage(p.pg);
  for (const path of p.paths) await pg.pathSync(path);
  return p.paths.length;
}
