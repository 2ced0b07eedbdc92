/**
 * Which backup to restore, as pgBackRest chooses it: --set=LABEL, or the latest; for --type=time
 * or --type=lsn without an explicit --set, the newest backup that ended before the target (so
 * recovery can reach the target from it). With several repositories the request is put to each
 * in order (only --repo's when given) and the first one that can answer it wins: for `latest`
 * that is the first repository holding any backup, not the one with the newest backup.
 */
import { err, type PgbError } from "../../common/error.ts";
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

/** What the user asked for, parsed once (a bad --target fails before any repository is read). */
export type SetRequest =
  | { kind: "set"; label: string }
  | { kind: "latest" }
  | { kind: "time"; target: string; time: number }
  | { kind: "lsn"; target: string; lsn: bigint };

/** `setExplicit`: --set was given (not the default latest). */
export function setRequest(opts: { set: string; setExplicit: boolean; type: string; target?: string }): SetRequest {
  if (opts.set !== "latest") return { kind: "set", label: opts.set };
  if (!opts.setExplicit && opts.target !== undefined) {
    // Whole seconds, as pgBackRest compares them (fractions of the target are dropped).
    if (opts.type === "time") return { kind: "time", target: opts.target, time: Math.floor(parseTargetTime(opts.target)) };
    if (opts.type === "lsn") return { kind: "lsn", target: opts.target, lsn: lsnParse(opts.target) };
  }
  return { kind: "latest" };
}

export interface SetChoice {
  record: BackupRecord;
  /** How it was chosen, for the log. */
  how: "set" | "latest" | "target";
}

/**
 * The backup of one repository that answers the request, or why this repository cannot: a
 * `skip` warning sends the search on to the next repository, as pgBackRest does.
 */
export function chooseInRepo(info: BackupInfo, req: SetRequest): SetChoice | { skip: string } | undefined {
  const labels = info.labels();
  if (labels.length === 0) return { skip: "[BackupSetInvalidError] no backup sets to restore" };
  const newestFirst = [...labels].reverse().map((l) => info.backups.get(l)!);
  switch (req.kind) {
    case "set": {
      const record = info.backups.get(req.label);
      return record && { record, how: "set" };
    }
    case "latest": {
      const record = newestFirst[0]!;
      if (record.dbId < info.current.id)
        throw err("BackupSetInvalidError", `the latest backup set found '${record.label}' is from a prior version of PostgreSQL`, [
          "was a backup created after the stanza-upgrade?",
          "specify --set or --type=time/lsn to restore from a prior version of PostgreSQL.",
        ]);
      return { record, how: "latest" };
    }
    case "time": {
      // Strictly before: a stop time is in whole seconds, the backup's real end may be later in that second.
      const record = newestFirst.find((r) => r.timestampStop < req.time);
      return record && { record, how: "target" };
    }
    case "lsn":
      for (const r of newestFirst) {
        if (r.lsnStop === undefined)
          return { skip: "reached backup from prior version missing required LSN info before finding a match -- backup auto-select has been disabled for this repo" };
        if (lsnParse(r.lsnStop) <= req.lsn) return { record: r, how: "target" };
      }
      return undefined;
  }
}

/** No repository searched had an answer. */
export function noSetError(req: SetRequest, labels: readonly string[]): PgbError {
  switch (req.kind) {
    case "set":
      return err("BackupSetInvalidError", `backup set ${req.label} is not valid`, labels.length > 0 ? `choose one of: ${labels.join(", ")} (or latest).` : "run 'pgbunker info' to list the stanza's backups.");
    case "time":
      return err("BackupSetInvalidError", `unable to find backup set with stop time less than '${req.target}'`, "the target is older than every backup: choose a later target.");
    case "lsn":
      return err("BackupSetInvalidError", `unable to find backup set with lsn less than or equal to '${req.target}'`, "the target is older than every backup: choose a later target.");
    case "latest":
      return err("BackupSetInvalidError", "no backup set found to restore", "run 'pgbunker info' to list the stanza's backups; make a backup first (or choose the repository that has one with --repo).");
  }
}
