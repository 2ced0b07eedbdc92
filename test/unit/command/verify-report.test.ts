/** verify's pure parts: WAL gaps per timeline and their classification, report rendering. */
import { describe, expect, test } from "bun:test";
import { classifyGaps, findGaps } from "../../../src/command/verify/gaps.ts";
import { problemCount, verifyJson, verifyText, zeroCounts, type VerifyReport } from "../../../src/command/verify/report.ts";
import { jsonParse } from "../../../src/common/json.ts";

const MB16 = 16 * 1024 * 1024;
const seg = (tl: number, n: number) => `${tl.toString(16).toUpperCase().padStart(8, "0")}00000000${n.toString(16).toUpperCase().padStart(8, "0")}`;

describe("WAL gaps", () => {
  test("holes between stored segments, per timeline, across log ids", () => {
    const segs = [seg(1, 1), seg(1, 2), seg(1, 5), seg(1, 6), seg(2, 6), seg(2, 9)];
    expect(findGaps(segs, MB16)).toEqual([
      { timeline: 1, start: seg(1, 3), stop: seg(1, 4) },
      { timeline: 2, start: seg(2, 7), stop: seg(2, 8) },
    ]);
    // 16MB segments: 0x00000001000000FF is followed by 0x0000000100000001 00000000.
    expect(findGaps(["0000000100000000000000FF", "000000010000000100000000"], MB16)).toEqual([]);
    expect(findGaps(["0000000100000000000000FE", "000000010000000100000001"], MB16)).toEqual([
      { timeline: 1, start: "0000000100000000000000FF", stop: "000000010000000100000000" },
    ]);
    // 64MB segments: 0x40 per log id.
    expect(findGaps(["00000001000000000000003F", "000000010000000100000000"], 64 * 1024 * 1024)).toEqual([]);
  });

  test("a hole in a backup's range or in retained WAL is an error; before the oldest backup or removed by retention it is expected", () => {
    const backups = [{ label: "F1", start: seg(1, 3), stop: seg(1, 4) }, { label: "F2", start: seg(1, 10), stop: seg(1, 11) }];
    const gaps = [
      { timeline: 1, start: seg(1, 1), stop: seg(1, 2) },
      { timeline: 1, start: seg(1, 4), stop: seg(1, 4) },
      { timeline: 1, start: seg(1, 6), stop: seg(1, 8) },
    ];
    const noPlan = classifyGaps(gaps, backups, undefined);
    expect(noPlan.map((g) => [g.expected, g.neededBy])).toEqual([[true, []], [false, ["F1"]], [false, []]]);
    // Archive retention keeps F1's range and everything from F2: the hole between them was made on purpose.
    const plan = { archiveId: "15-1", ranges: [{ label: "F1", start: seg(1, 3), stop: seg(1, 4) }], keepFrom: { label: "F2", start: seg(1, 10) }, removeAll: false };
    expect(classifyGaps(gaps, backups, plan).map((g) => g.expected)).toEqual([true, false, true]);
    const after = classifyGaps([{ timeline: 1, start: seg(1, 12), stop: seg(1, 12) }], backups, plan);
    expect(after[0]!.expected).toBe(false);
    // The current archive id before its first backup: expire keeps its WAL, but no backup can replay across a hole in it.
    const fresh = classifyGaps([{ timeline: 1, start: seg(1, 4), stop: seg(1, 4) }], [], { archiveId: "16-2", ranges: [], removeAll: false, keepAll: true });
    expect(fresh[0]!.expected).toBe(true);
  });
});

describe("report", () => {
  const clean = (): VerifyReport => ({
    stanza: "demo", repoKey: 1, orphans: [], infoProblems: [], warnings: [],
    archives: [{ archiveId: "15-1", counts: { ...zeroCounts(), checked: 25, valid: 25 }, problems: [], gaps: [], duplicates: [] }],
    backups: [{ label: "20261125-163431F", status: "valid", counts: { ...zeroCounts(), checked: 977, valid: 977 }, problems: [], walMissing: [], notes: [] }],
  });

  test("clean: two lines; verbose: pgBackRest's layout with every counter", () => {
    expect(problemCount(clean())).toBe(0);
    expect(verifyText(clean(), false)).toBe("stanza: demo\nstatus: ok\n");
    expect(verifyText(clean(), true)).toBe(
      "stanza: demo\nstatus: ok\n" +
        "  archiveId: 15-1, total WAL checked: 25, total valid WAL: 25\n    missing: 0, checksum invalid: 0, size invalid: 0, other: 0\n" +
        "  backup: 20261125-163431F, status: valid, total files checked: 977, total valid files: 977\n    missing: 0, checksum invalid: 0, size invalid: 0, other: 0\n",
    );
  });

  test("problems: only the failing parts, non-zero counters, then the detail lines", () => {
    const r = clean();
    r.backups[0] = { ...r.backups[0]!, status: "invalid", counts: { ...zeroCounts(), checked: 977, valid: 975, missing: 1, checksum: 1 }, problems: [{ file: "20261125-163431F/pg_data/base/5/1247.lz4", problem: "checksum" }] };
    r.archives[0]!.gaps = [{ timeline: 1, start: seg(1, 16), stop: seg(1, 16), neededBy: [], expected: false }, { timeline: 1, start: seg(1, 1), stop: seg(1, 1), neededBy: [], expected: true }];
    r.orphans = ["backup/demo/stray"];
    r.warnings = ["backup/demo/20261125-163536F is not in backup.info"];
    expect(problemCount(r)).toBe(3);
    expect(verifyText(r, false).split("\n")).toEqual([
      "stanza: demo",
      "status: error",
      "  archiveId: 15-1, total WAL checked: 25, total valid WAL: 25",
      `    wal gap: ${seg(1, 16)} - ${seg(1, 16)} (timeline 1, breaks point-in-time recovery)`,
      "  backup: 20261125-163431F, status: invalid, total files checked: 977, total valid files: 975",
      "    missing: 1, checksum invalid: 1",
      "    checksum invalid: 20261125-163431F/pg_data/base/5/1247.lz4",
      "  orphaned: backup/demo/stray",
      "  warning: backup/demo/20261125-163536F is not in backup.info",
      "",
    ]);
    const doc = jsonParse(verifyJson(r)) as any[];
    expect(doc[0].status).toEqual({ code: 1, errors: 3, message: "error" });
    expect(doc[0].backup[0]).toMatchObject({ label: "20261125-163431F", status: "invalid", checked: 977, valid: 975, missing: 1, "checksum-invalid": 1 });
    expect(doc[0].archive[0].gaps[1]).toEqual({ timeline: 1, start: seg(1, 1), stop: seg(1, 1), expected: true, "needed-by": [] });
  });
});
