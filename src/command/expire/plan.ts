/**
 * Retention planning, pure: which backups expire and which WAL each archive id keeps, given the
 * backups in backup.info, the repoN-retention-* options and the current time. No I/O here, so every
 * rule is unit-tested and verify can reuse the archive plan to tell an expected WAL gap (made by
 * archive retention) from a real one.
 *
 * Rules (pgBackRest's, as documented for repo-retention-* and observed from pgBackRest 2.45):
 *  - full, count: keep the newest N full backups; older ones expire with every backup that
 *    depends on them.
 *  - full, time: find the newest full backup that stopped at least N days ago; every full backup
 *    older than it expires (so at least N days of backups always remain).
 *  - diff: full backups count as differential here; differential backups older than the Nth
 *    newest full-or-diff expire with the incrementals that depend on them.
 *  - adhoc (--set): that backup and its dependents, whatever the rules, but never the last full.
 *  - oldest (--oldest, pgBackRest 2.58): with N > 1 full backups, this run keeps N-1 of them by
 *    count (time-based retention included) and archive retention becomes full/N-1, so the oldest
 *    full set and the WAL only it needed go; diff retention still applies. With one full: a warning.
 *  - archive: the retention backup R is the Nth newest backup of the counted types (full; full+diff;
 *    all). In each archive id every WAL segment from the start of the oldest backup at or after R
 *    is kept, and for every other kept backup the range start..stop it needs to be consistent.
 *    Everything else goes. With fewer than N counted backups no WAL expires. The current archive id
 *    (where WAL is pushed) is never trimmed while no backup is in it; an older one without backups
 *    goes whole.
 *  - --archive-expire-before=SEGMENT (pgBackRest 2.59): only WAL before SEGMENT may go. Each archive
 *    id with backups also keeps every segment from SEGMENT on; WAL expires even before retention is
 *    met (the oldest counted backup anchors); the current archive id without backups loses what is
 *    before SEGMENT. Archive retention must still be configured (else no WAL expires at all).
 */
import type { BackupType } from "../../repo/backup-info.ts";

/** Option name as the user knows it (repo1-retention-full); the planner names options through it. */
export type OptionName = (name: string) => string;

export interface RetentionPolicy {
  /** repoN-retention-full: count, or days when fullType is time. */
  full?: number;
  fullType: "count" | "time";
  diff?: number;
  archive?: number;
  archiveType: "full" | "diff" | "incr";
  /** Days of backup.history manifests to keep (undefined: keep forever). */
  history?: number;
}

/** What the planner needs of a backup.info entry. */
export interface PlanBackup {
  label: string;
  type: BackupType;
  prior?: string;
  reference: readonly string[];
  timestampStop: number;
  archiveStart?: string;
  archiveStop?: string;
  /** Archive id (VERSION-N) holding this backup's WAL. */
  archiveId?: string;
  /** backup.info history id of the cluster the backup was taken from. */
  dbId?: number;
}

export interface PlanOptions {
  /** --set: expire this backup and its dependents only. */
  adhoc?: string;
  /** --oldest: expire the oldest full backup set (see the rules above). */
  oldest?: boolean;
  /** Repository name for messages ("repo1"). */
  repo?: string;
  /** The stanza's current cluster: its last full backup is never expired by --set. */
  currentDbId?: number;
  opt?: OptionName;
}

export type ExpireReason = "full" | "time" | "diff" | "adhoc";

export interface ExpireSet {
  reason: ExpireReason;
  /** The backup the rule chose, then the backups that depend on it, oldest first. */
  labels: string[];
}

export interface PlanNote {
  level: "warn" | "info" | "detail";
  message: string;
  hint?: string;
}

export interface BackupPlan {
  sets: ExpireSet[];
  /** Every expired label. */
  expired: Set<string>;
  notes: PlanNote[];
  /** Time-based retention found its anchor (the newest full old enough). */
  timeAnchor?: string;
  /** Error for --set that cannot be honoured (the last full backup). */
  error?: { message: string; hint: string };
  /** The policy this run applied (--oldest overrides the configured one): archive retention follows it. */
  policy: RetentionPolicy;
}

const DAY = 86400;

/** Backups that depend on `label`: it is in their reference list or their chain of priors. */
export function dependents(label: string, backups: readonly PlanBackup[]): string[] {
  const byLabel = new Map(backups.map((b) => [b.label, b]));
  const dependsOn = (b: PlanBackup): boolean => {
    if (b.reference.includes(label)) return true;
    for (let p = b.prior, hops = 0; p !== undefined && hops < backups.length; hops++) {
      if (p === label) return true;
      p = byLabel.get(p)?.prior;
    }
    return false;
  };
  return backups.filter((b) => b.label !== label && dependsOn(b)).map((b) => b.label).sort();
}

/** Decide which backups expire. `backups` in any order; `now` in epoch seconds. */
export function planBackups(backups: readonly PlanBackup[], configured: RetentionPolicy, now: number, options: PlanOptions = {}): BackupPlan {
  const { adhoc, currentDbId } = options;
  const opt = options.opt ?? ((n: string) => n);
  const sorted = [...backups].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  const plan: BackupPlan = { sets: [], expired: new Set(), notes: [], policy: configured };
  const live = () => sorted.filter((b) => !plan.expired.has(b.label));
  const expire = (reason: ExpireReason, label: string) => {
    if (plan.expired.has(label)) return;
    const labels = [label, ...dependents(label, sorted).filter((l) => !plan.expired.has(l))];
    for (const l of labels) plan.expired.add(l);
    plan.sets.push({ reason, labels });
  };

  if (configured.full === undefined)
    plan.notes.push({
      level: "warn",
      message: `option '${opt("retention-full")}' is not set (${opt("retention-full-type")}=${configured.fullType}): backups are never expired and the repository may run out of space`,
      hint: `set ${opt("retention-full")}; to keep full backups indefinitely without this warning, set it to the maximum (9999999).`,
    });

  if (options.oldest) plan.policy = oldestPolicy(sorted, configured, plan.notes, options.repo ?? "repo", opt);
  const policy = plan.policy;

  if (adhoc !== undefined) {
    const target = sorted.find((b) => b.label === adhoc);
    if (!target) {
      plan.notes.push({ level: "warn", message: `backup ${adhoc} does not exist`, hint: "run the info command to list the backups of this repository." });
      return plan;
    }
    // New differential and incremental backups need a full backup of the current cluster.
    const fulls = sorted.filter((b) => b.type === "full" && (currentDbId === undefined || b.dbId === currentDbId));
    if (target.type === "full" && fulls.length === 1 && fulls[0] === target) {
      plan.error = {
        message: `full backup ${adhoc} is the only full backup of the current cluster: it cannot be expired until another full backup exists`,
        hint: "take a new full backup first.",
      };
      return plan;
    }
    const newest = sorted.at(-1)!;
    expire("adhoc", adhoc);
    if (plan.expired.has(newest.label))
      plan.notes.push({
        level: "warn",
        message: `expiring the latest backup ${newest.label}: point-in-time recovery from it is no longer possible`,
        hint: "non-default archive retention (now or in earlier expires) can leave gaps in the WAL archive.",
      });
    return plan;
  }

  if (policy.full !== undefined) {
    const fulls = sorted.filter((b) => b.type === "full");
    if (policy.fullType === "count") {
      for (const f of fulls.slice(0, Math.max(0, fulls.length - policy.full))) expire("full", f.label);
    } else {
      // The anchor is the newest full backup that is old enough; everything before it can go.
      const anchor = fulls.filter((f) => now - f.timestampStop >= policy.full! * DAY).at(-1);
      if (anchor) {
        plan.timeAnchor = anchor.label;
        for (const f of fulls) if (f.label < anchor.label) expire("time", f.label);
      }
    }
  }

  if (policy.diff !== undefined) {
    // Full backups count as differential here: a newer full supersedes older differentials.
    const counted = live().filter((b) => b.type === "full" || b.type === "diff").reverse();
    if (counted.length > policy.diff) {
      const boundary = counted[policy.diff - 1]!.label;
      for (const b of live()) if (b.type === "diff" && b.label < boundary) expire("diff", b.label);
    }
  }
  return plan;
}

/**
 * The policy --oldest applies: one full backup fewer than there are, by count, and archive
 * retention to match (so the WAL only the oldest set needed goes too). pgBackRest's own log lines.
 */
function oldestPolicy(sorted: readonly PlanBackup[], configured: RetentionPolicy, notes: PlanNote[], repo: string, opt: OptionName): RetentionPolicy {
  const fulls = sorted.filter((b) => b.type === "full").length;
  if (fulls < 2) {
    notes.push({ level: "warn", message: `${repo}: expire oldest requested but no eligible full backup to expire` });
    return configured;
  }
  if (configured.fullType === "time") notes.push({ level: "info", message: `${repo}: expire oldest overrides configured time-based retention with count-based retention for this execution` });
  const keep = fulls - 1;
  notes.push({
    level: "detail",
    message: `${repo}: expire oldest enforcing ${opt("retention-full-type")}=count, ${opt("retention-full")}=${keep}, ${opt("retention-archive-type")}=full, and ${opt("retention-archive")}=${keep} for this execution`,
  });
  return { ...configured, full: keep, fullType: "count", archive: keep, archiveType: "full" };
}

export interface KeptRange {
  label: string;
  start: string;
  stop: string;
}

export interface ArchiveIdPlan {
  archiveId: string;
  /** Keep every segment at or after this one (the first backup at or after the retention backup). */
  keepFrom?: { label: string; start: string };
  /** Ranges kept for consistency of the other backups of this archive id. */
  ranges: KeptRange[];
  /** No backup needs anything here and newer archive ids hold the backups: remove the directory. */
  removeAll: boolean;
  /**
   * Keep everything: a backup at or after the retention backup has no WAL range to anchor on, or
   * this is the current archive id and no backup is in it yet.
   */
  keepAll?: boolean;
  /** --archive-expire-before: every segment at or after this one is kept as well. */
  before?: string;
}

export interface ArchivePlan {
  /** Undefined when archive retention does not apply (then no WAL expires). */
  retentionLabel?: string;
  ids: ArchiveIdPlan[];
  notes: PlanNote[];
}

/** The archive retention count and type that apply, or a note saying why WAL is not expired. */
function archiveRetention(policy: RetentionPolicy, kept: readonly PlanBackup[], timeAnchor: string | undefined, notes: PlanNote[], opt: OptionName): number | undefined {
  if (policy.archiveType === "diff" && policy.diff === undefined)
    notes.push({
      level: "warn",
      message: `option '${opt("retention-diff")}' is not set while ${opt("retention-archive-type")}=diff`,
      hint: `set ${opt("retention-diff")}; to keep differential backups indefinitely without this warning, set it to the maximum (9999999).`,
    });
  if (policy.archive !== undefined) return policy.archive;
  if (policy.archiveType === "incr") {
    notes.push({ level: "warn", message: `WAL is not expired: ${opt("retention-archive-type")}=incr requires option '${opt("retention-archive")}' to be set` });
    return undefined;
  }
  if (policy.archiveType === "full" && policy.fullType === "time" && policy.full !== undefined) {
    if (timeAnchor === undefined) {
      notes.push({ level: "info", message: "time-based retention is not met yet: WAL is not expired" });
      return undefined;
    }
    // WAL before the oldest full backup that remains is useless for recovery.
    return kept.filter((b) => b.type === "full").length;
  }
  const n = policy.archiveType === "full" ? (policy.fullType === "count" ? policy.full : undefined) : policy.diff;
  if (n === undefined) notes.push({ level: "info", message: `option '${opt("retention-archive")}' is not set: WAL is not expired` });
  return n;
}

export interface ArchivePlanOptions {
  /** Time-based retention found its anchor (BackupPlan.timeAnchor). */
  timeAnchor?: string;
  opt?: OptionName;
  /** --archive-expire-before: a valid segment name; only WAL before it may go. */
  expireBefore?: string;
}

/**
 * Which WAL each archive id keeps. `kept` are the backups that remain after expiry; `archiveIds`
 * every archive id of archive.info, oldest first (the last is the current one).
 */
export function planArchive(kept: readonly PlanBackup[], policy: RetentionPolicy, archiveIds: readonly string[], options: ArchivePlanOptions = {}): ArchivePlan {
  const { timeAnchor, expireBefore } = options;
  const notes: PlanNote[] = [];
  const n = archiveRetention(policy, kept, timeAnchor, notes, options.opt ?? ((name) => name));
  const plan: ArchivePlan = { ids: [], notes };
  if (n === undefined || n < 1) return plan;
  const types: BackupType[] = policy.archiveType === "full" ? ["full"] : policy.archiveType === "diff" ? ["full", "diff"] : ["full", "diff", "incr"];
  const sorted = [...kept].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  const counted = sorted.filter((b) => types.includes(b.type)).reverse();
  // --archive-expire-before expires WAL before retention is met too: the oldest counted backup
  // (if any) is then the retention backup.
  if (counted.length < n && expireBefore === undefined) return plan;
  const retention = counted[Math.min(n, counted.length) - 1]?.label;
  plan.retentionLabel = retention;

  archiveIds.forEach((archiveId, index) => {
    const own = sorted.filter((b) => b.archiveId === archiveId);
    if (own.length === 0) {
      // The current archive id is where WAL is pushed: kept until a backup lands in it (but for
      // what --archive-expire-before names). Nothing can use an older cluster's WAL without backups.
      if (index === archiveIds.length - 1) plan.ids.push({ archiveId, ranges: [], removeAll: false, ...(expireBefore === undefined ? { keepAll: true } : { before: expireBefore }) });
      else plan.ids.push({ archiveId, ranges: [], removeAll: true });
      return;
    }
    // Backups are only ever older than the retention backup in an archive id of an older cluster:
    // then the newest of them anchors, keeping point-in-time recovery after it possible.
    const atOrAfter = (b: PlanBackup) => retention !== undefined && b.label >= retention;
    const anchor = own.find((b) => atOrAfter(b) && b.archiveStart !== undefined) ??
      (own.some(atOrAfter) ? undefined : own.filter((b) => b.archiveStart !== undefined).at(-1));
    const ranges = own
      .filter((b) => b.archiveStart !== undefined && b.archiveStop !== undefined && b !== anchor)
      .map((b) => ({ label: b.label, start: b.archiveStart!, stop: b.archiveStop! }));
    // A backup without archive start (offline) in this id leaves nothing to anchor on: keep it all.
    if (!anchor && own.some(atOrAfter)) {
      plan.ids.push({ archiveId, ranges, removeAll: false, keepAll: true });
      return;
    }
    plan.ids.push({ archiveId, ranges, removeAll: false, keepFrom: anchor ? { label: anchor.label, start: anchor.archiveStart! } : undefined, ...(expireBefore === undefined ? {} : { before: expireBefore }) });
  });
  return plan;
}

/** Is a stored WAL file (named by its first 24 characters: the segment) kept by this plan? */
export function walKept(segment: string, idPlan: ArchiveIdPlan): boolean {
  if (idPlan.removeAll) return false;
  if (idPlan.keepAll) return true;
  const seg = segment.slice(0, 24);
  if (idPlan.keepFrom && seg >= idPlan.keepFrom.start) return true;
  if (idPlan.before !== undefined && seg >= idPlan.before) return true;
  return idPlan.ranges.some((r) => seg >= r.start && seg <= r.stop);
}

/** backup.history manifests to remove: not a current backup, and their full backup is older than the limit. */
export function planHistory(historyLabels: readonly string[], current: ReadonlySet<string>, days: number | undefined, now: number): string[] {
  if (days === undefined) return [];
  return historyLabels.filter((label) => !current.has(label) && (days === 0 || labelTime(label.slice(0, 16)) < now - days * DAY)).sort();
}

/** Epoch seconds of a label's timestamp (labels are local time). */
export function labelTime(label: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})/.exec(label);
  if (!m) return Number.NaN;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  return Math.floor(new Date(y!, mo! - 1, d!, h!, mi!, s!).getTime() / 1000);
}
