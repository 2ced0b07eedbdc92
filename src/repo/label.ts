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

/**
 * A label for a new backup started at `time`. It must sort after the newest label it could be
 * confused with: for a full backup every existing label, for a diff/incr only the labels of its
 * own full set (a new diff/incr label begins with its full label, so it cannot collide with
 * another set, and a set whose full was expired must not block it). `existing` should hold the
 * labels of backup.info, of the backup directories and of backup.history.
 *
 * Two backups can start within one second (offline, or small and back to back): then the label
 * moves on one second, as pgBackRest does, and `moved` tells the caller to wait until that second
 * has begun so that the next backup's own start time is later still. A label that is still not
 * later after that means the clock or the timezone went back.
 */
export function labelCreate(type: BackupType, fullLabel: string | undefined, existing: readonly string[], time = new Date()): { label: string; moved: boolean } {
  if (type !== "full" && !fullLabel) throw err("AssertError", `a ${type} backup needs a full backup label`);
  const make = (d: Date) => (type === "full" ? `${stamp(d)}F` : `${fullLabel}_${stamp(d)}${type === "diff" ? "D" : "I"}`);
  const rivals = existing.filter((l) => isLabel(l) && (type === "full" || l.startsWith(`${fullLabel}_`)));
  const newest = rivals.sort().at(-1);
  const label = make(time);
  if (!newest || label > newest) return { label, moved: false };
  const next = make(new Date(time.getTime() + 1000));
  if (next <= newest)
    throw err("ClockError", `new backup label '${next}' is not later than the newest backup label '${newest}'`, ["has the timezone changed?", "is there clock skew? check the system time."]);
  return { label: next, moved: true };
}
