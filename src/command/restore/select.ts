/**
 * Which backup to restore: --set=LABEL, or the latest; for --type=time or --type=lsn without an
 * explicit --set, the newest backup that ended at or before the target (as pgBackRest chooses),
 * so recovery can reach the target from it.
 */
import { err } from "../../common/error.ts";
import { lsnParse } from "../../postgres/wal.ts";
import type { BackupInfo, BackupRecord } from "../../repo/backup-info.ts";

const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?\s*(?:([+-])(\d{2})(?::?(\d{2}))?)?$/;

/**
 * A recovery target time as PostgreSQL and pgBackRest write it: "YYYY-MM-DD HH:MM:SS[.frac][±HH[[:]MM]]",
 * local time when no offset is given. Returns epoch seconds.
 */
export function parseTargetTime(text: string): number {
  const m = TIME_RE.exec(text.trim());
  if (!m)
    throw err(
      "FormatError",
      `automatic backup set selection cannot be performed with provided time '${text}'`,
      "time format must be YYYY-MM-DD HH:MM:SS with optional msec and optional timezone (+/- HH or HHMM or HH:MM) - if timezone is omitted, local time is assumed (for UTC use +00)",
    );
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const frac = m[7] ? Number(m[7]) : 0;
  if (m[8] === undefined) return new Date(y, mo - 1, d, h, mi, s).getTime() / 1000 + frac;
  const offset = (Number(m[9]) * 60 + Number(m[10] ?? 0)) * (m[8] === "-" ? -1 : 1);
  return Date.UTC(y, mo - 1, d, h, mi, s) / 1000 + frac - offset * 60;
}

export interface SetChoice {
  record: BackupRecord;
  /** How it was chosen, for the log. */
  how: "set" | "latest" | "target";
}

/** Pick the backup set. `setExplicit`: --set was given (not the default latest). */
export function selectBackupSet(info: BackupInfo, opts: { set: string; setExplicit: boolean; type: string; target?: string }): SetChoice {
  const labels = info.labels();
  if (labels.length === 0)
    throw err("BackupSetInvalidError", "no backup set found to restore", "run 'pgbunker info' to list the stanza's backups; make a backup first.");

  if (opts.set !== "latest") {
    const record = info.backups.get(opts.set);
    if (!record) throw err("BackupSetInvalidError", `backup set ${opts.set} is not valid`, `choose one of: ${labels.join(", ")} (or latest).`);
    return { record, how: "set" };
  }

  if (!opts.setExplicit && opts.target !== undefined && (opts.type === "time" || opts.type === "lsn")) {
    const newestFirst = [...labels].reverse().map((l) => info.backups.get(l)!);
    if (opts.type === "time") {
      const target = parseTargetTime(opts.target);
      const record = newestFirst.find((r) => r.timestampStop <= target);
      if (!record) throw err("BackupSetInvalidError", `unable to find backup set with stop time less than '${opts.target}'`, "the target is older than every backup: choose a later target.");
      return { record, how: "target" };
    }
    const target = lsnParse(opts.target);
    const record = newestFirst.find((r) => r.lsnStop !== undefined && lsnParse(r.lsnStop) <= target);
    if (!record) throw err("BackupSetInvalidError", `unable to find backup set with lsn less than or equal to '${opts.target}'`, "the target is older than every backup: choose a later target.");
    return { record, how: "target" };
  }
  return { record: info.backups.get(labels.at(-1)!)!, how: "latest" };
}
