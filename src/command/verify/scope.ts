/**
 * What verify --set (pgBackRest 2.55) covers: one backup set instead of the whole repository. That
 * is the backup (its manifest lists the files it takes from earlier backups too, and those are
 * read where they are stored), every backup it references when it is block incremental (its block
 * maps may read from any of them), and the WAL from its start to its stop segment, which makes it
 * consistent. Files nothing refers to are looked for in those backups' directories only.
 */
import { err } from "../../common/error.ts";
import { isLabel } from "../../repo/label.ts";
import { isBlockIncremental, type ManifestLoad } from "./collect.ts";

export interface SetScope {
  label: string;
  /** Backups verified, sorted: the set, and the backups a block-incremental set references. */
  labels: string[];
  /** Backups whose manifest is needed: those, and every backup holding files of the set. */
  manifests: string[];
  /** WAL verified (inclusive). Undefined when the manifest is unreadable or the backup was offline: none. */
  wal?: { start: string; stop: string };
}

/** The label must have the form of a label and name a backup directory of the repository (pgBackRest's words). */
export function checkSetLabel(label: string, dirs: readonly string[]): void {
  if (!isLabel(label))
    throw err("OptionInvalidValueError", `'${label}' is not a valid backup label format`, "labels look like 20240101-120000F, 20240101-120000F_20240102-120000D or ..._20240102-120000I.");
  if (!dirs.includes(label))
    throw err("BackupSetInvalidError", `backup set ${label} is not valid`, "the repository holds no directory for this label: run the info command to list the backups.");
}

/** The scope of one set, from its manifest (loaded by loadManifestChecked). */
export function setScope(label: string, load: ManifestLoad): SetScope {
  const m = load.manifest;
  if (!m) return { label, labels: [label], manifests: [label] };
  const manifests = [...new Set([...m.backup.reference, label])].sort();
  let block = false;
  for (const f of m.files.values()) if (isBlockIncremental(f)) block = true;
  const labels = block ? manifests : [label];
  const { archiveStart: start, archiveStop: stop } = m.backup;
  return { label, labels, manifests, wal: start !== undefined && stop !== undefined ? { start, stop } : undefined };
}

/** Is a WAL segment (24-character name) one the set needs? */
export function walInScope(segment: string, scope: SetScope): boolean {
  return scope.wal !== undefined && segment >= scope.wal.start && segment <= scope.wal.stop;
}
