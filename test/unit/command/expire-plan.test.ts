/**
 * Retention planning. The expected results are what pgBackRest 2.45's expire did on a repository
 * with the same backups (checked by running it on copies of one repository with each setting).
 */
import { describe, expect, test } from "bun:test";
import { dependents, labelTime, planArchive, planBackups, planHistory, walKept, type PlanBackup, type RetentionPolicy } from "../../../src/command/expire/plan.ts";

const DAY = 86400;
const NOW = 1_800_000_000;

/** A chain like the one used against pgBackRest: F1 D I I, F2 I D I, F3, F4 I I. WAL segment n = hex. */
function lab(): PlanBackup[] {
  let seg = 3;
  const out: PlanBackup[] = [];
  const add = (label: string, type: PlanBackup["type"], prior?: string, reference: string[] = [], gap = 0) => {
    seg += gap;
    const start = seg;
    seg += 2;
    const name = (n: number) => `00000001000000000000${n.toString(16).toUpperCase().padStart(4, "0")}`;
    out.push({ label, type, prior, reference, timestampStop: NOW - 3600 + out.length, archiveStart: name(start), archiveStop: name(start + 1), archiveId: "15-1", dbId: 1 });
  };
  const F1 = "20260101-000000F", F2 = "20260102-000000F", F3 = "20260103-000000F", F4 = "20260104-000000F";
  add(F1, "full");
  add(`${F1}_20260101-010000D`, "diff", F1, [F1]);
  add(`${F1}_20260101-020000I`, "incr", `${F1}_20260101-010000D`, [F1, `${F1}_20260101-010000D`]);
  add(`${F1}_20260101-030000I`, "incr", `${F1}_20260101-020000I`, [F1, `${F1}_20260101-010000D`, `${F1}_20260101-020000I`]);
  add(F2, "full", undefined, [], 1);
  add(`${F2}_20260102-010000I`, "incr", F2, [F2]);
  add(`${F2}_20260102-020000D`, "diff", F2, [F2]);
  add(`${F2}_20260102-030000I`, "incr", `${F2}_20260102-020000D`, [F2, `${F2}_20260102-020000D`]);
  add(F3, "full", undefined, [], 1);
  add(F4, "full", undefined, [], 1);
  add(`${F4}_20260104-010000I`, "incr", F4, [F4]);
  return out;
}

const policy = (p: Partial<RetentionPolicy>): RetentionPolicy => ({ fullType: "count", archiveType: "full", ...p });
const expiredOf = (p: Partial<RetentionPolicy>, backups = lab()) => [...planBackups(backups, policy(p), NOW).expired].sort();

describe("backup retention", () => {
  test("dependents follow references and priors", () => {
    const b = lab();
    expect(dependents("20260101-000000F", b)).toEqual(["20260101-000000F_20260101-010000D", "20260101-000000F_20260101-020000I", "20260101-000000F_20260101-030000I"]);
    expect(dependents("20260102-000000F_20260102-020000D", b)).toEqual(["20260102-000000F_20260102-030000I"]);
    // The incremental taken on the full, before the differential, does not depend on it.
    expect(dependents("20260102-000000F_20260102-020000D", b)).not.toContain("20260102-000000F_20260102-010000I");
  });

  test("full count: the oldest fulls go with their dependents; nothing below the count", () => {
    expect(expiredOf({ full: 4 })).toEqual([]);
    expect(expiredOf({ full: 5 })).toEqual([]);
    expect(expiredOf({ full: 3 })).toEqual(lab().slice(0, 4).map((b) => b.label));
    expect(expiredOf({ full: 2 })).toEqual(lab().slice(0, 8).map((b) => b.label));
    const plan = planBackups(lab(), policy({ full: 2 }), NOW);
    expect(plan.sets.map((s) => [s.reason, s.labels.length])).toEqual([["full", 4], ["full", 4]]);
  });

  test("diff counts fulls as differentials", () => {
    // Newest full-or-diff: F4, F3, F2_D, F2, F1_D: retention-diff=1 keeps only diffs newer than F4.
    expect(expiredOf({ full: 9, diff: 1 })).toEqual([
      "20260101-000000F_20260101-010000D", "20260101-000000F_20260101-020000I", "20260101-000000F_20260101-030000I",
      "20260102-000000F_20260102-020000D", "20260102-000000F_20260102-030000I",
    ]);
    expect(expiredOf({ full: 9, diff: 3 })).toEqual(["20260101-000000F_20260101-010000D", "20260101-000000F_20260101-020000I", "20260101-000000F_20260101-030000I"]);
    expect(expiredOf({ full: 9, diff: 5 })).toEqual([]);
  });

  test("full time: the newest full that stopped N days ago anchors; older fulls go", () => {
    const b = lab();
    const age = (label: string, days: number) => (b.find((x) => x.label === label)!.timestampStop = NOW - days * DAY);
    age("20260101-000000F", 10);
    age("20260102-000000F", 8);
    age("20260103-000000F", 5);
    age("20260104-000000F", 0.5);
    expect(expiredOf({ full: 11, fullType: "time" }, b)).toEqual([]);
    expect(expiredOf({ full: 9, fullType: "time" }, b)).toEqual([]);
    expect(expiredOf({ full: 6, fullType: "time" }, b)).toEqual(b.slice(0, 4).map((x) => x.label));
    expect(expiredOf({ full: 4, fullType: "time" }, b)).toEqual(b.slice(0, 8).map((x) => x.label));
    const plan = planBackups(b, policy({ full: 4, fullType: "time" }), NOW);
    expect(plan.timeAnchor).toBe("20260103-000000F");
    expect(plan.sets.every((s) => s.reason === "time")).toBe(true);
  });

  test("--set expires that backup and its dependents only, never the last full of the current cluster", () => {
    const b = lab();
    const p = planBackups(b, policy({ full: 1 }), NOW, { adhoc: "20260102-000000F_20260102-020000D" });
    expect([...p.expired].sort()).toEqual(["20260102-000000F_20260102-020000D", "20260102-000000F_20260102-030000I"]);
    expect(p.sets).toEqual([{ reason: "adhoc", labels: ["20260102-000000F_20260102-020000D", "20260102-000000F_20260102-030000I"] }]);

    const latest = planBackups(b, policy({}), NOW, { adhoc: "20260104-000000F" });
    expect(latest.notes.some((n) => n.level === "warn" && n.message.includes("latest backup"))).toBe(true);

    const missing = planBackups(b, policy({ full: 2 }), NOW, { adhoc: "20260109-000000F" });
    expect(missing.expired.size).toBe(0);
    expect(missing.notes[0]!.message).toContain("does not exist");

    // Only F4 belongs to the current cluster (db 2): it cannot go even though older fulls exist.
    b.at(-2)!.dbId = 2;
    b.at(-1)!.dbId = 2;
    const last = planBackups(b, policy({}), NOW, { adhoc: "20260104-000000F", currentDbId: 2 });
    expect(last.error?.message).toContain("only full backup of the current cluster");
    expect(last.expired.size).toBe(0);
  });

  test("a missing retention-full is warned about with the repository's option name", () => {
    const p = planBackups(lab(), policy({}), NOW, { opt: (n) => `repo2-${n}` });
    expect(p.notes[0]).toMatchObject({ level: "warn" });
    expect(p.notes[0]!.message).toContain("'repo2-retention-full'");
    expect(p.expired.size).toBe(0);
  });
});

describe("archive retention", () => {
  const ids = ["15-1"];
  const keptAfter = (p: Partial<RetentionPolicy>) => {
    const b = lab();
    const plan = planBackups(b, policy(p), NOW);
    const kept = b.filter((x) => !plan.expired.has(x.label));
    return { kept, archive: planArchive(kept, policy(p), ids, { timeAnchor: plan.timeAnchor }) };
  };

  test("default: WAL before the oldest kept full goes, everything after stays", () => {
    const { archive } = keptAfter({ full: 2 });
    expect(archive.retentionLabel).toBe("20260103-000000F");
    const id = archive.ids[0]!;
    expect(id.keepFrom).toEqual({ label: "20260103-000000F", start: "000000010000000000000015" });
    expect(walKept("000000010000000000000014-abc.lz4", id)).toBe(false);
    expect(walKept("000000010000000000000015", id)).toBe(true);
    expect(walKept("00000001000000000000001F.00000028.backup", id)).toBe(true);
    // A later timeline sorts after: kept.
    expect(walKept("000000020000000000000005", id)).toBe(true);
  });

  test("with fewer counted backups than the retention, no WAL expires", () => {
    expect(keptAfter({ full: 5 }).archive.retentionLabel).toBeUndefined();
    expect(keptAfter({ full: 5 }).archive.ids).toEqual([]);
    expect(keptAfter({ full: 4 }).archive.retentionLabel).toBe("20260101-000000F");
  });

  test("aggressive retention keeps each older backup's start..stop and nothing between", () => {
    const { archive } = keptAfter({ full: 9, archive: 1, archiveType: "diff" });
    const id = archive.ids[0]!;
    expect(id.keepFrom?.label).toBe("20260104-000000F");
    expect(id.ranges.map((r) => r.label)).toContain("20260101-000000F_20260101-030000I");
    // F1_I2 stops at 0A; the segment after it (0B) belongs to no backup range.
    expect(walKept("00000001000000000000000A", id)).toBe(true);
    expect(walKept("00000001000000000000000B", id)).toBe(false);
    expect(walKept("00000001000000000000000C", id)).toBe(true);
    expect(walKept("000000010000000000000002", id)).toBe(false);
  });

  test("notes when WAL is not expired", () => {
    expect(keptAfter({}).archive.notes.map((n) => n.message)).toEqual(["option 'retention-archive' is not set: WAL is not expired"]);
    expect(keptAfter({ full: 2, archiveType: "incr" }).archive.notes[0]!.level).toBe("warn");
    expect(keptAfter({ full: 2, archiveType: "diff", archive: 2 }).archive.notes[0]!.message).toContain("'retention-diff' is not set");
  });

  test("archive ids of older clusters: anchored on their newest backup, removed when backups moved on", () => {
    const b = lab();
    for (const x of b.slice(8)) x.archiveId = "15-2";
    const { ids: planIds } = planArchive(b.slice(4), policy({ full: 9, archive: 1 }), ["15-1", "15-2"]);
    // Every 15-1 backup is older than the retention backup (F4 in 15-2): the newest one anchors.
    expect(planIds[0]!.keepFrom?.label).toBe("20260102-000000F_20260102-030000I");
    expect(planIds[1]!.keepFrom?.label).toBe("20260104-000000F");
    const none = planArchive(b.slice(8), policy({ full: 1 }), ["15-1", "15-2"]);
    expect(none.ids[0]).toMatchObject({ archiveId: "15-1", removeAll: true });
    // The current archive id is never removed, even without backups yet (just after stanza-upgrade).
    const upgraded = planArchive(b.slice(0, 8), policy({ full: 1 }), ["15-1", "15-2"]);
    expect(upgraded.ids[1]).toMatchObject({ archiveId: "15-2", removeAll: false });
    // ... and none of its WAL goes either (pgBackRest leaves it alone).
    expect(walKept("000000010000000000000002", upgraded.ids[1]!)).toBe(true);
  });
});

/** pgBackRest 2.58's expire --oldest and 2.59's --archive-expire-before, as run on copies of one repository. */
describe("--oldest", () => {
  const F1 = "20260101-000000F", F2 = "20260102-000000F";
  const oldest = (p: Partial<RetentionPolicy>, backups = lab()) => planBackups(backups, policy(p), NOW, { oldest: true, repo: "repo2", opt: (n) => `repo2-${n}` });

  test("expires only the oldest full set, whatever retention-full says, and archive retention follows", () => {
    for (const full of [9, 1]) {
      const plan = oldest({ full, archiveType: "diff", archive: 5 });
      expect(plan.sets).toEqual([{ reason: "full", labels: lab().slice(0, 4).map((b) => b.label) }]);
      expect(plan.policy).toMatchObject({ full: 3, fullType: "count", archive: 3, archiveType: "full" });
      expect(plan.notes.at(-1)).toEqual({
        level: "detail",
        message: "repo2: expire oldest enforcing repo2-retention-full-type=count, repo2-retention-full=3, repo2-retention-archive-type=full, and repo2-retention-archive=3 for this execution",
      });
      const kept = lab().filter((b) => !plan.expired.has(b.label));
      expect(planArchive(kept, plan.policy, ["15-1"]).ids[0]!.keepFrom).toEqual({ label: F2, start: "00000001000000000000000C" });
    }
  });

  test("time-based retention is replaced by count for the run; diff retention still applies; unset retention still warns", () => {
    const timed = oldest({ full: 1, fullType: "time" });
    expect(timed.notes[0]).toEqual({ level: "info", message: "repo2: expire oldest overrides configured time-based retention with count-based retention for this execution" });
    expect(timed.sets.map((s) => s.labels[0])).toEqual([F1]);
    expect(oldest({ full: 9, diff: 1 }).sets.map((s) => s.reason)).toEqual(["full", "diff"]);
    const unset = oldest({});
    expect(unset.notes[0]!.message).toContain("'repo2-retention-full' is not set");
    expect(unset.sets.map((s) => s.labels[0])).toEqual([F1]);
  });

  test("with a single full backup nothing is forced: a warning, and the configured policy", () => {
    const one = lab().slice(9);
    const plan = oldest({ full: 9 }, one);
    expect(plan.notes).toEqual([{ level: "warn", message: "repo2: expire oldest requested but no eligible full backup to expire" }]);
    expect(plan.expired.size).toBe(0);
    expect(plan.policy.full).toBe(9);
  });
});

describe("--archive-expire-before", () => {
  const seg = (n: number) => `00000001000000000000${n.toString(16).toUpperCase().padStart(4, "0")}`;
  const keptSegments = (kept: PlanBackup[], p: Partial<RetentionPolicy>, expireBefore: string, ids = ["15-1"]) =>
    planArchive(kept, policy(p), ids, { expireBefore }).ids.map((id) => Array.from({ length: 0x20 }, (_, i) => seg(i + 1)).filter((s) => walKept(s, id)));

  test("retention not met: WAL before the oldest full goes, but nothing from the segment on", () => {
    // F1 starts at 03.
    expect(keptSegments(lab(), { full: 9 }, seg(2))[0]![0]).toBe(seg(2));
    expect(keptSegments(lab(), { full: 9 }, seg(6))[0]![0]).toBe(seg(3));
    // Without it, retention not met: nothing expires.
    expect(planArchive(lab(), policy({ full: 9 }), ["15-1"]).ids).toEqual([]);
  });

  test("retention met: the segment only ever keeps more, never less", () => {
    const kept = lab().slice(8); // F3 (starts 15), F4, F4_I
    expect(keptSegments(kept, { full: 2 }, seg(0x10))[0]![0]).toBe(seg(0x10));
    expect(keptSegments(kept, { full: 2 }, seg(0x1f))[0]![0]).toBe(seg(0x15));
  });

  test("no archive retention configured: no WAL expires at all", () => {
    const plan = planArchive(lab(), policy({}), ["15-1"], { expireBefore: seg(6) });
    expect(plan.ids).toEqual([]);
    expect(plan.notes[0]!.message).toContain("'retention-archive' is not set");
  });

  test("no backup at all: the current archive id loses what is before the segment, older ones go whole", () => {
    const plan = planArchive([], policy({ full: 1 }), ["15-1", "16-2"], { expireBefore: seg(6) });
    expect(plan.ids[0]).toMatchObject({ archiveId: "15-1", removeAll: true });
    expect(walKept(seg(5), plan.ids[1]!)).toBe(false);
    expect(walKept(seg(6), plan.ids[1]!)).toBe(true);
    expect(walKept(`${seg(5)}.00000028.backup`, plan.ids[1]!)).toBe(false);
  });
});

describe("history retention", () => {
  test("keeps current backups and sets whose full is newer than the limit", () => {
    const now = labelTime("20260110-120000F");
    const labels = ["20200101-000000F", "20200101-000000F_20260109-000000I", "20260109-000000F", "20260109-000000F_20260110-000000D", "20260110-000000F"];
    expect(planHistory(labels, new Set(["20260110-000000F"]), undefined, now)).toEqual([]);
    expect(planHistory(labels, new Set(["20260110-000000F"]), 1, now)).toEqual(["20200101-000000F", "20200101-000000F_20260109-000000I", "20260109-000000F", "20260109-000000F_20260110-000000D"]);
    expect(planHistory(labels, new Set(["20260110-000000F"]), 2, now)).toEqual(["20200101-000000F", "20200101-000000F_20260109-000000I"]);
    expect(planHistory(labels, new Set(["20260110-000000F"]), 0, now)).toHaveLength(4);
  });
});
