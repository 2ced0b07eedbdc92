/**
 * info rendering. Expected strings are what pgBackRest 2.45 printed for the same values (sizes,
 * layout, status lines, json keys).
 */
import { describe, expect, test } from "bun:test";
import { infoJson } from "../../../src/command/info/json.ts";
import { INFO_STATUS, type InfoBackup, type RepoStanza, type StanzaInfo } from "../../../src/command/info/model.ts";
import { formatSize } from "../../../src/command/info/size.ts";
import { infoText } from "../../../src/command/info/text.ts";
import { jsonParse } from "../../../src/common/json.ts";
import type { BackupRecord } from "../../../src/repo/backup-info.ts";

describe("sizes", () => {
  test("pgBackRest's short form", () => {
    const cases: [number, string][] = [
      [0, "0B"], [489, "489B"], [1023, "1023B"], [1024, "1KB"], [8458, "8.3KB"], [99395, "97KB"], [284831, "278.2KB"],
      [680228, "664.3KB"], [1916489, "1.8MB"], [6244989, "6.0MB"], [9536298, "9MB"], [22992557, "21.9MB"],
      [38860485, "37MB"], [46545125, "44.4MB"], [1024 ** 3 * 5, "5GB"], [1024 ** 4 * 1.25, "1.2TB"], // an exact tie rounds to even, as C printf does
      [1024 ** 4 * 1.35, "1.4TB"],
    ];
    for (const [n, s] of cases) expect({ n, s: formatSize(n) }).toEqual({ n, s });
  });
});

const SYSTEM_ID = 7712148372325322466n;

function record(label: string, over: Partial<BackupRecord> = {}): BackupRecord {
  return {
    label, type: label.endsWith("F") ? "full" : label.endsWith("D") ? "diff" : "incr", reference: [],
    archiveStart: "000000010000000000000003", archiveStop: "000000010000000000000004", lsnStart: "0/3000028", lsnStop: "0/4000050",
    timestampStart: 1795624471, timestampStop: 1795624474, size: 38860485, sizeDelta: 38860485, repoSize: 6244989, repoSizeDelta: 6244989,
    dbId: 1, error: false, format: 5, programVersion: "2.45",
    options: { archiveCheck: true, archiveCopy: false, backupStandby: false, checksumPage: true, compress: true, hardlink: false, online: true },
    ...over,
  };
}

function repo(backups: InfoBackup[], over: Partial<RepoStanza> = {}): RepoStanza {
  return {
    key: 1, cipher: "none", status: backups.length ? INFO_STATUS.ok : INFO_STATUS.noBackup,
    dbs: [{ id: 1, systemId: SYSTEM_ID, version: "15", current: true }],
    archives: [{ dbId: 1, archiveId: "15-1", version: "15", min: "000000010000000000000001", max: "000000010000000000000013" }],
    backups, ...over,
  };
}

const stanza = (repos: RepoStanza[], over: Partial<StanzaInfo> = {}): StanzaInfo => ({ name: "demo", repos, lock: { held: false }, stopped: false, ...over });

describe("text", () => {
  const full = { record: record("20261125-163431F"), repoKey: 1 };
  const diff = {
    record: record("20261125-163431F_20261125-163435D", { prior: "20261125-163431F", reference: ["20261125-163431F"], sizeDelta: 8458, repoSizeDelta: 489, archiveStart: "000000010000000000000005", archiveStop: "000000010000000000000006" }),
    repoKey: 1,
  };

  test("a stanza with backups, in pgBackRest's layout", () => {
    const text = infoText([stanza([repo([full, diff])])], false);
    const ts = (s: number) => {
      const d = new Date(s * 1000);
      const p = (n: number) => String(n).padStart(2, "0");
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    };
    expect(text).toBe(
      [
        "stanza: demo",
        "    status: ok",
        "    cipher: none",
        "",
        "    db (current)",
        "        wal archive min/max (15): 000000010000000000000001/000000010000000000000013",
        "",
        "        full backup: 20261125-163431F",
        `            timestamp start/stop: ${ts(1795624471)} / ${ts(1795624474)}`,
        "            wal start/stop: 000000010000000000000003 / 000000010000000000000004",
        "            database size: 37MB, database backup size: 37MB",
        "            repo1: backup set size: 6.0MB, backup size: 6.0MB",
        "",
        "        diff backup: 20261125-163431F_20261125-163435D",
        `            timestamp start/stop: ${ts(1795624471)} / ${ts(1795624474)}`,
        "            wal start/stop: 000000010000000000000005 / 000000010000000000000006",
        "            database size: 37MB, database backup size: 8.3KB",
        "            repo1: backup set size: 6.0MB, backup size: 489B",
        "            backup reference list: 20261125-163431F",
        "",
      ].join("\n"),
    );
  });

  test("status lines: missing stanza, no backups, running backup, stopped, mixed", () => {
    expect(infoText([stanza([repo([], { status: INFO_STATUS.missingStanzaPath, dbs: [], archives: [] })])], false)).toBe("stanza: demo\n    status: error (missing stanza path)\n");
    expect(infoText([stanza([repo([], { archives: [{ dbId: 1, archiveId: "15-1", version: "15", min: null, max: null }] })])], false)).toBe(
      "stanza: demo\n    status: error (no valid backups)\n    cipher: none\n\n    db (current)\n        wal archive min/max (15): none present\n",
    );
    const running = infoText([stanza([repo([full])], { lock: { held: true, percentComplete: 57.5 } })], false);
    expect(running.split("\n")[1]).toBe("    status: ok (backup/expire running - 57.50% complete)");
    expect(infoText([stanza([repo([full])], { stopped: true })], false).split("\n")[1]).toBe("    status: ok (stopped)");
    const mixed = infoText([stanza([repo([full]), repo([], { key: 2, status: INFO_STATUS.missingStanzaPath, dbs: [], archives: [] })])], false).split("\n");
    expect(mixed.slice(1, 5)).toEqual(["    status: mixed", "        repo1: ok", "        repo2: error (missing stanza path)", "    cipher: none"]);
    expect(infoText([], false)).toBe("No stanzas exist in the repository.\n");
  });

  test("--set details and errors", () => {
    const b: InfoBackup = {
      record: record("20261125-163555F_20261125-165337I", { error: true, annotation: { zz: "last", a: "first" } }),
      repoKey: 1,
      detail: {
        databases: [{ name: "db2", oid: 16411 }, { name: "postgres", oid: 5 }],
        links: [{ name: "pg_log_ext", destination: "/ext" }],
        tablespaces: [{ name: "ts1", oid: 16410, destination: "/ts1" }],
        errorFiles: ["base/5/16415"],
      },
    };
    const lines = infoText([stanza([repo([b])])], true).split("\n");
    expect(lines).toContain("            lsn start/stop: 0/3000028 / 0/4000050");
    expect(lines.slice(-11, -1)).toEqual([
      "            repo1: backup set size: 6.0MB, backup size: 6.0MB",
      "            database list: db2 (16411), postgres (5)",
      "            symlinks:",
      "                pg_log_ext => /ext",
      "            tablespaces:",
      "                ts1 (16410) => /ts1",
      "            error list: base/5/16415",
      "            annotation(s)",
      "                a: first",
      "                zz: last",
    ]);
    expect(infoText([stanza([repo([b])])], false)).toContain("            error(s) detected during backup\n");
  });
});

describe("json", () => {
  test("pgBackRest's keys, sorted, compact, exact system id, no trailing newline", () => {
    const text = infoJson([stanza([repo([{ record: record("20261125-163431F"), repoKey: 1 }])])], false);
    expect(text.endsWith("]")).toBe(true);
    expect(text).toContain('"system-id":7712148372325322466');
    const doc = jsonParse(text) as any[];
    expect(Object.keys(doc[0])).toEqual(["archive", "backup", "cipher", "db", "name", "repo", "status"]);
    expect(doc[0].status).toEqual({ code: 0, lock: { backup: { held: false } }, message: "ok" });
    expect(Object.keys(doc[0].backup[0])).toEqual(["archive", "backrest", "database", "error", "info", "label", "lsn", "prior", "reference", "timestamp", "type"]);
    expect(doc[0].backup[0].info).toEqual({ delta: 38860485, repository: { delta: 6244989, size: 6244989 }, size: 38860485 });
    expect(doc[0].archive).toEqual([{ database: { id: 1, "repo-key": 1 }, id: "15-1", max: "000000010000000000000013", min: "000000010000000000000001" }]);
  });

  test("a block incremental backup: map sizes in place of the set's repo size, in json and text (as pgBackRest 2.59.1)", () => {
    const r = record("20261125-163431F", { repoSize: 9000, repoSizeDelta: 7000, repoSizeMap: 300, repoSizeMapDelta: 200 });
    const doc = jsonParse(infoJson([stanza([repo([{ record: r, repoKey: 1 }])])], false)) as any[];
    expect(doc[0].backup[0].info.repository).toEqual({ delta: 7000, "delta-map": 200, "size-map": 300 });
    expect(infoText([stanza([repo([{ record: r, repoKey: 1 }])])], false)).toContain("\n            repo1: backup size: 6.8KB\n");
  });

  test("--set adds database-ref, link, tablespace (null when empty); other errors carry their text per repository", () => {
    const doc = jsonParse(infoJson([stanza([repo([{ record: record("20261125-163431F"), repoKey: 1, detail: { databases: [], links: [], tablespaces: [], errorFiles: [] } }])])], true)) as any[];
    expect(doc[0].backup[0]["database-ref"]).toBeNull();
    expect(doc[0].backup[0].link).toBeNull();
    expect(doc[0].backup[0].tablespace).toBeNull();
    expect(doc[0].backup[0]["error-list"]).toBeUndefined();
    const other = jsonParse(infoJson([stanza([repo([], { status: INFO_STATUS.other, error: "[FileMissingError] gone", dbs: [], archives: [] })], { stopped: true })], false)) as any[];
    expect(other[0].status).toEqual({ code: 99, lock: { backup: { held: false } }, message: "other", stopped: true });
    expect(other[0].repo[0].status).toEqual({ code: 99, message: "[FileMissingError] gone" });
  });
});
