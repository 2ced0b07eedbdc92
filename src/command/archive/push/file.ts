/**
 * Push one WAL file into the archive of one or more repositories: the unit of work archive-push
 * runs in-process and the asynchronous archiver runs in its workers.
 *
 * The source is read once. Its SHA-1 is computed while the compressed (and encrypted) copy is
 * written under a private temporary name beside its destination; once the SHA-1 is known the
 * file is renamed to SEGMENT-SHA1.ext, after looking for an earlier copy of the same segment.
 * A killed push leaves at most a temporary file that no reader takes for WAL; the next push to
 * the same directory removes it once it is stale.
 *
 * A repository without rename (an object store) gets the final name at once instead: the source's
 * SHA-1 is computed by a first read, the copy is written straight to SEGMENT-SHA1.ext (an object
 * PUT is complete or absent), and the second read's SHA-1 must match the first.
 */
import { basename, dirname } from "node:path";
import { err, errorToWire, type PgbError, type WireError } from "../../../common/error.ts";
import { COMPRESS_EXT } from "../../../filter/compress.ts";
import { findResult, type CompressType, type FilterSpec } from "../../../filter/filter.ts";
import { pgVersionFromWalMagic } from "../../../postgres/version.ts";
import { parseWalHeader, walFileKind } from "../../../postgres/wal.ts";
import { walNameHasChecksum, walRepoPath } from "../../../repo/layout.ts";
import { removeStaleTemps, tempFilesOf } from "../../../repo/temp-files.ts";
import { walCopiesOf, walFindAll } from "../../../repo/wal-find.ts";
import { TEMP_EXT, type Storage, type StorageWrite } from "../../../storage/storage.ts";
import { rateLimitTake } from "../../../common/rate-limit.ts";
import { openStorage, storageLocal, type StorageSpec } from "../../shared/storage.ts";
import { asPgbError, tempSuffix, type ArchiveRepo, type ClusterIdentity, type RepoFailure } from "../common.ts";

export interface PushTarget {
  repoIndex: number;
  storage: Storage;
  archiveId: string;
  /** archive.info's cipher-pass: WAL is encrypted with it. */
  walPass?: string;
}

export interface PushFileOptions {
  /** Where the WAL file is read from, and its path there. */
  source: Storage;
  sourcePath: string;
  /** The WAL file's name as PostgreSQL gives it (segment, .partial, .history, .backup, ...). */
  name: string;
  stanza: string;
  compressType: CompressType;
  compressLevel?: number;
  /** archive-header-check: the stanza's cluster, which the segment's page header must name. */
  headerCheck?: { version: string; systemId: bigint };
  bufferSize?: number;
  /** Temporary files in the destination directory older than this are a killed push's: removed (staleTempSeconds). */
  staleTempSeconds: number;
}

export interface PushFileResult {
  /** Warnings for the log (an identical copy was already archived). */
  warnings: string[];
  /** Repositories that could not take the file (the others have it). */
  failures: RepoFailure[];
}

/** Repositories whose stanza is this cluster receive the WAL; the others are reported. */
export function pushTargets(repos: ArchiveRepo[], cluster: ClusterIdentity): { targets: PushTarget[]; failures: RepoFailure[] } {
  const targets: PushTarget[] = [];
  const failures: RepoFailure[] = [];
  for (const r of repos) {
    try {
      r.info.checkCurrent(cluster.version, cluster.systemId);
      targets.push({ repoIndex: r.index, storage: r.storage, archiveId: r.info.archiveId, walPass: r.walPass });
    } catch (e) {
      failures.push({ index: r.index, error: asPgbError(e) });
    }
  }
  return { targets, failures };
}

const DUPLICATE_HINT = "this is valid in some recovery scenarios but may also indicate a problem.";

/**
 * archive-push takes what PostgreSQL archives: WAL segments, .partial segments, timeline history
 * files and backup labels. Any other name has no place in the archive (verify would report it as
 * orphaned, archive-get would never ask for it), so it is refused before anything is written.
 */
export function checkWalName(name: string, path = name): void {
  if (walFileKind(name) !== undefined) return;
  throw err(
    "ParamInvalidError",
    `'${path}' is not a WAL file: archive-push expects a WAL segment (24 hex digits, e.g. 000000010000000000000001), a .partial segment, a timeline history file (00000002.history) or a backup label (000000010000000000000001.00000028.backup), not '${name}'`,
    "archive_command must pass PostgreSQL's %p: archive_command = 'pgbunker --stanza=NAME archive-push %p'.",
  );
}

export async function pushWalFile(opts: PushFileOptions, targets: PushTarget[]): Promise<PushFileResult> {
  checkWalName(opts.name, opts.sourcePath);
  const kind = walFileKind(opts.name);
  const checksummed = walNameHasChecksum(opts.name);
  // Only segments are compressed; history and backup-label files are stored as they are.
  const compressType: CompressType = kind === "segment" || kind === "partial" ? opts.compressType : "none";
  const ext = COMPRESS_EXT[compressType];

  // Stores without rename need the final name, and so the SHA-1, before writing.
  const knownSha1 = checksummed && targets.some((t) => !t.storage.features.move) ? await sourceSha1(opts) : undefined;
  const reader = (await opts.source.openRead(opts.sourcePath, { filters: [{ type: "sha1" }, { type: "size" }], bufferSize: opts.bufferSize }))!;
  const writers: (Staged | undefined)[] = [];
  const failures: RepoFailure[] = [];
  try {
    let chunk = await reader.read();
    if (opts.headerCheck && (kind === "segment" || kind === "partial")) checkHeader(chunk, opts.sourcePath, opts.headerCheck);

    for (const t of targets) {
      try {
        writers.push(await Staged.open(t, opts, compressType, knownSha1));
      } catch (e) {
        writers.push(undefined);
        failures.push({ index: t.repoIndex, error: asPgbError(e) });
      }
    }
    for (; chunk !== null; chunk = await reader.read()) {
      await rateLimitTake(chunk.byteLength);
      for (let i = 0; i < writers.length; i++) {
        const w = writers[i];
        if (!w) continue;
        try {
          await w.write.write(chunk);
        } catch (e) {
          writers[i] = undefined;
          failures.push({ index: w.target.repoIndex, error: asPgbError(e) });
        }
      }
    }
  } catch (e) {
    for (const w of writers) await w?.write.abort().catch(() => {});
    throw e;
  } finally {
    await reader.close();
  }
  const sha1 = findResult(reader.results(), "sha1")!.hash;

  const warnings: string[] = [];
  for (const w of writers) {
    if (!w) continue;
    try {
      await w.write.close();
      const warning = w.direct ? await w.placedDirect(opts.name, sha1) : await w.place(opts.name, checksummed ? { sha1, ext } : undefined, opts.staleTempSeconds);
      if (warning) warnings.push(warning);
    } catch (e) {
      await w.discard();
      failures.push({ index: w.target.repoIndex, error: asPgbError(e) });
    }
  }
  return { warnings, failures };
}

/** The SHA-1 of the WAL file, read once just for it (for stores that cannot rename). */
async function sourceSha1(opts: PushFileOptions): Promise<string> {
  const r = (await opts.source.openRead(opts.sourcePath, { filters: [{ type: "sha1" }], bufferSize: opts.bufferSize }))!;
  try {
    while ((await r.read()) !== null);
  } finally {
    await r.close();
  }
  return findResult(r.results(), "sha1")!.hash;
}

/**
 * A copy being written under a temporary name, placed under its final name once complete; or,
 * on a store without rename (`direct`), written under its final name from the start.
 */
class Staged {
  readonly target: PushTarget;
  readonly write: StorageWrite;
  /** The name written: a temp name, or the final one when direct. */
  readonly temp: string;
  readonly direct: boolean;
  /** Direct: the SHA-1 the final name was made from. */
  readonly #sha1: string | undefined;
  readonly #stanza: string;

  private constructor(target: PushTarget, write: StorageWrite, temp: string, stanza: string, direct: boolean, sha1?: string) {
    this.target = target;
    this.write = write;
    this.temp = temp;
    this.#stanza = stanza;
    this.direct = direct;
    this.#sha1 = sha1;
  }

  static async open(t: PushTarget, opts: PushFileOptions, compressType: CompressType, knownSha1: string | undefined): Promise<Staged> {
    const filters: FilterSpec[] = [];
    if (compressType !== "none") filters.push({ type: "compress", compressType, level: opts.compressLevel });
    if (t.walPass) filters.push({ type: "encrypt", pass: t.walPass });
    if (!t.storage.features.move) {
      const ext = COMPRESS_EXT[compressType];
      // The segment's size: an object store then sends it as one PUT rather than a multipart upload.
      const sizeHint = (await opts.source.info(opts.sourcePath, { ignoreMissing: true }))?.size;
      const writeOpts = { filters, bufferSize: opts.bufferSize, sizeHint };
      if (knownSha1 === undefined) return new Staged(t, await t.storage.openWrite(walRepoPath(opts.stanza, t.archiveId, opts.name), writeOpts), walRepoPath(opts.stanza, t.archiveId, opts.name), opts.stanza, true);
      const existing = await walFindAll(t.storage, opts.stanza, t.archiveId, opts.name);
      if (existing.some((w) => w.sha1 !== knownSha1)) throw duplicateError(opts.name, t.repoIndex);
      // An identical copy: nothing to write (reported as a duplicate once the source is read).
      const final = walRepoPath(opts.stanza, t.archiveId, opts.name, { sha1: knownSha1, ext });
      const write = existing.length ? discardingWrite() : await t.storage.openWrite(final, writeOpts);
      return new Staged(t, write, existing.length ? "" : final, opts.stanza, true, knownSha1);
    }
    // The final name of a segment needs its SHA-1, known only at the end: stage beside it under a
    // name unique to this push (concurrent pushes of the same segment never share a temp file).
    const dir = dirname(walRepoPath(opts.stanza, t.archiveId, opts.name, { sha1: "0".repeat(40), ext: "" }));
    const temp = `${dir}/${opts.name}.${tempSuffix()}${TEMP_EXT}`;
    // The temp file's data is synced on close, but not its directory entry (syncPath: false): that
    // name need not survive a crash, since a crash before the rename loses the push either way
    // (PostgreSQL retries it; a surviving temp is swept as stale). What must survive is the final
    // name, and move() syncs the directory after the rename: one directory sync, in the directory
    // that holds both names, makes durable an entry for an inode whose bytes were already synced.
    // So two syncs per push (file, directory), as pgBackRest makes.
    // direct: false: one file written by a short-lived process, not worth the O_DIRECT stages.
    const write = await t.storage.openWrite(temp, { atomic: false, filters, bufferSize: opts.bufferSize, syncPath: false, direct: false });
    return new Staged(t, write, temp, opts.stanza, false);
  }

  /** Direct: the copy is in place. Check it is of the bytes the name says, and no rival landed. */
  async placedDirect(name: string, sha1: string): Promise<string | undefined> {
    const { storage, archiveId, repoIndex } = this.target;
    if (this.#sha1 === undefined) return undefined; // history/backup files: plain name, replaced
    if (this.temp === "") return `WAL file '${name}' already exists in the repo${repoIndex} archive with the same checksum\nHINT: ${DUPLICATE_HINT}`;
    if (sha1 !== this.#sha1) {
      await this.discard();
      throw err("ChecksumError", `WAL file '${name}' changed while it was pushed (SHA-1 ${this.#sha1} then ${sha1})`, "run archive-push again: PostgreSQL retries it.");
    }
    const after = await walFindAll(storage, this.#stanza, archiveId, name);
    if (after.some((w) => w.sha1 !== sha1)) {
      await this.discard();
      throw duplicateError(name, repoIndex);
    }
    return undefined;
  }

  /**
   * Rename the staged copy to its final name. Segments (`stored`: the name's SHA-1 and extension)
   * keep an identical earlier copy (warning) and refuse a different one; history files and backup
   * labels replace an earlier copy, as pgBackRest does.
   *
   * One listing of the directory serves all of it: the stale temporary files of killed pushes
   * (whatever WAL they were becoming) are swept from it, and the segment's earlier copies are
   * found in it. A concurrent push of different content could land between that look and our
   * rename; a rival can only do so if it was under way at the look, when its temporary file (ours,
   * NAME.PID-RANDOM.pgbunker.tmp, or pgBackRest's SEGMENT-SHA1.ext.pgbackrest.tmp) is in the same
   * listing. Only then is the directory listed again after the rename, to withdraw our copy and fail
   * if the rival's is there: neither copy can be trusted over the other. (A rival that starts and
   * finishes its whole push between our look and our rename is not seen; pgBackRest checks once,
   * before writing, and never again.)
   */
  async place(name: string, stored: { sha1: string; ext: string } | undefined, staleSeconds: number): Promise<string | undefined> {
    const { storage, archiveId, repoIndex } = this.target;
    const dir = dirname(this.temp);
    const entries = (await storage.list(dir, { ignoreMissing: true, owners: false })) ?? [];
    const cutoff = Date.now() / 1000 - staleSeconds;
    const temps = tempFilesOf(dir, entries).filter((t) => t.path !== this.temp);
    await removeStaleTemps(storage, temps, cutoff);
    if (!stored) {
      await storage.move(this.temp, walRepoPath(this.#stanza, archiveId, name));
      return undefined;
    }
    const existing = walCopiesOf(dir, entries.map((e) => e.name), name);
    if (existing.some((w) => w.sha1 === stored.sha1)) {
      await this.discard();
      return `WAL file '${name}' already exists in the repo${repoIndex} archive with the same checksum\nHINT: ${DUPLICATE_HINT}`;
    }
    if (existing.length) {
      await this.discard();
      throw duplicateError(name, repoIndex);
    }
    const final = walRepoPath(this.#stanza, archiveId, name, stored);
    await storage.move(this.temp, final);
    const rivalUnderWay = temps.some((t) => t.mtime >= cutoff && basename(t.path).startsWith(name));
    if (rivalUnderWay && (await walFindAll(storage, this.#stanza, archiveId, name)).some((w) => w.sha1 !== stored.sha1)) {
      await storage.remove(final, { ignoreMissing: true });
      throw duplicateError(name, repoIndex);
    }
    return undefined;
  }

  async discard(): Promise<void> {
    if (this.temp === "") return;
    await this.target.storage.remove(this.temp, { ignoreMissing: true }).catch(() => {});
  }
}

/** A write that keeps nothing (an identical copy is already archived). */
function discardingWrite(): StorageWrite {
  return { write: async () => {}, close: async () => [], abort: async () => {} };
}

function duplicateError(name: string, repoIndex: number): PgbError {
  return err(
    "ArchiveDuplicateError",
    `WAL file '${name}' already exists in the repo${repoIndex} archive with a different checksum`,
    "another cluster may be archiving to this stanza, or this cluster was restored without a new timeline: check archive_command and the stanza.",
  );
}

/** archive-header-check: the segment's first page names the cluster that wrote it. */
function checkHeader(first: Uint8Array | null, path: string, stanza: { version: string; systemId: bigint }): void {
  const h = parseWalHeader(first ?? new Uint8Array(0), path);
  const version = pgVersionFromWalMagic(h.magic)?.version;
  if (version !== stanza.version || h.systemId !== stanza.systemId)
    throw err(
      "ArchiveMismatchError",
      `WAL file '${path}' version ${version ?? `unknown (page magic 0x${h.magic.toString(16)})`}, system-id ${h.systemId} do not match stanza version ${stanza.version}, system-id ${stanza.systemId}`,
      "is this WAL from the cluster this stanza backs up? are you archiving to the correct stanza?",
    );
}

/** pushWalFile as a worker job: storages travel as specs and each worker opens its own. */
export interface PushFileJob extends Omit<PushFileOptions, "source"> {
  targets: (Omit<PushTarget, "storage"> & { spec: StorageSpec })[];
}

/** A job's outcome: failures come back as data so one bad file does not stop the others. */
export type JobOutcome = { ok: true; warnings: string[]; failures: { index: number; error: WireError }[] } | { ok: false; error: WireError };

/** pushWalFile's result (or error) as plain data, for a worker to send back. */
export async function pushOutcome(push: () => Promise<PushFileResult>): Promise<JobOutcome> {
  try {
    const r = await push();
    return { ok: true, warnings: r.warnings, failures: r.failures.map((f) => ({ index: f.index, error: errorToWire(f.error) })) };
  } catch (e) {
    return { ok: false, error: errorToWire(e) };
  }
}

export async function pushFileJob(job: PushFileJob): Promise<JobOutcome> {
  const targets: PushTarget[] = [];
  try {
    return await pushOutcome(async () => {
      for (const t of job.targets) targets.push({ repoIndex: t.repoIndex, archiveId: t.archiveId, walPass: t.walPass, storage: await openStorage(t.spec) });
      return pushWalFile({ ...job, source: storageLocal(true) }, targets);
    });
  } finally {
    for (const t of targets) await t.storage.close();
  }
}
