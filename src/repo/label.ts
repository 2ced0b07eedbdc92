/**
 * Backup labels: full "YYYYMMDD-HHMMSSF", differential/incremental "FULL_YYYYMMDD-HHMMSS{D|I}"
 * in local time. Labels sort in time order, which everything else (latest, retention, resume)
 * relies on: a new label must sort after every existing one.
 */
import { err } from "../common/error.ts";
import type { BackupType } from "./backup-info.ts";

export const LABEL_FULL_RE = /^\d{8}-\d{6}F$/;
export const LABEL_DIFF_RE = /^\d{8}-\d{6}F_\d{8}-\d{6}D$/;
export const LABEL_INCR_RE = /^\d{8}-\d{6}F_\d{8}-\d{6}I$/;
export const LABEL_RE = /^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?$/;

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

export function labelType(label: string): BackupType {
  if (LABEL_FULL_RE.test(label)) return "full";
  if (LABEL_DIFF_RE.test(label)) return "diff";
  if (LABEL_INCR_RE.test(label)) return "incr";
  throw err("FormatError", `'${label}' is not a backup label`, "labels look like 20240101-120000F or 20240101-120000F_20240102-120000I.");
}

export function isLabel(name: string): boolean {
  return LABEL_RE.test(name);
}

/** The full backup a label belongs to. */
export function labelFull(label: string): string {
  return label.slice(0, 16);
}

/** A label for a new backup at `time`, after every label in `existing` (moved on a second if needed). */
export function labelCreate(type: BackupType, fullLabel: string | undefined, existing: readonly string[], time = new Date()): string {
  const make = (d: Date) =>
    type === "full" ? `${stamp(d)}F` : `${fullLabel}_${stamp(d)}${type === "diff" ? "D" : "I"}`;
  if (type !== "full" && !fullLabel) throw err("AssertError", `a ${type} backup needs a full backup label`);
  const newest = [...existing].sort().at(-1);
  let label = make(time);
  // Compare the timestamp parts: the newest existing backup's own time must be before ours.
  const timeOf = (l: string) => (l.length > 16 ? l.slice(17, 32) : l.slice(0, 15));
  if (newest && timeOf(label) <= timeOf(newest)) {
    label = make(new Date(time.getTime() + 1000));
    if (timeOf(label) <= timeOf(newest))
      throw err("FormatError", `new backup label '${label}' is not later than the newest existing backup '${newest}'`, "has the clock been set back? check the system time.");
  }
  return label;
}
