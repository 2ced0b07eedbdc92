/**
 * Differential and incremental backups: decide, file by file, whether the prior backup's copy can
 * be referenced or the file must be copied again.
 *
 * Size and modification time decide, with one guard against the time-resolution hole: mtimes have
 * one-second resolution, so a file changed again within the second the prior backup copied it can
 * keep the same size and mtime. Every file of the prior backup was copied at or after its
 * copy-start second C, so a later change gets an mtime of at least C - 1 (C itself, less up to a
 * tick of the file system's coarse clock). A prior copy is therefore trusted only when the file's
 * mtime is before C - 1; files touched around or after C are copied again. With --delta, or when
 * the cluster is on another timeline than the prior backup (a restore happened), SHA-1 decides.
 */
import type { Manifest, ManifestFile } from "../../repo/manifest.ts";

export type FileDecision =
  | { kind: "copy" }
  | { kind: "reference"; prior: ManifestFile; label: string }
  /** Read and hash the file; reference the prior copy only when the SHA-1 matches. */
  | { kind: "delta"; prior: ManifestFile; label: string };

export function decideFile(file: ManifestFile, prior: Manifest | undefined, delta: boolean): FileDecision {
  if (!prior) return { kind: "copy" };
  const p = prior.files.get(file.name);
  if (!p) return { kind: "copy" };
  const label = p.reference ?? prior.backup.label;
  if (file.size === 0 && p.size === 0) return { kind: "reference", prior: p, label };
  if (p.checksum === undefined || file.size !== p.size) return { kind: "copy" };
  if (delta) return { kind: "delta", prior: p, label };
  const copyStart = prior.backup.timestampCopyStart ?? prior.backup.timestampStart;
  if (file.timestamp === p.timestamp && p.timestamp < copyStart - 1) return { kind: "reference", prior: p, label };
  return { kind: "copy" };
}

/** Fill a manifest entry from the prior backup's copy of the same file. */
export function referencePrior(file: ManifestFile, prior: ManifestFile, label: string): void {
  file.checksum = prior.checksum;
  file.checksumPage = prior.checksumPage;
  file.checksumPageError = prior.checksumPageError;
  file.repoSize = prior.repoSize;
  file.rck = prior.rck;
  file.bundleId = prior.bundleId;
  file.bundleOffset = prior.bundleOffset;
  file.blockIncr = prior.blockIncr;
  file.reference = label;
}
