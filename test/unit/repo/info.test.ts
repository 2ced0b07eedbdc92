import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { WRONG_PASS_HINT } from "../../../src/filter/cipher.ts";
import { ArchiveInfo, loadArchiveInfo, saveArchiveInfo } from "../../../src/repo/archive-info.ts";
import { BackupInfo } from "../../../src/repo/backup-info.ts";
import { InfoIni } from "../../../src/repo/ini.ts";
import { loadInfoFile } from "../../../src/repo/info-file.ts";
import { Manifest, pageErrorRanges, pageErrorText } from "../../../src/repo/manifest.ts";
import { labelCreate, labelType } from "../../../src/repo/label.ts";
import { Storage } from "../../../src/storage/storage.ts";
import { posix } from "../../../src/storage/posix/posix.ts";
import { scratchDirs } from "../../harness/scratch.ts";

const scratch = scratchDirs("pgb-info-");
const SAMPLES = join(import.meta.dir, "../../../../shared/reference/pgbackrest-2.45-format-samples");

describe("info files written by pgBackRest 2.45", () => {
  for (const name of ["backup.info", "archive.info"]) {
    test(`${name}: checksum verifies and re-rendering is byte-identical`, () => {
      const text = readFileSync(join(SAMPLES, name), "utf8");
      const ini = InfoIni.parse(text, name);
      expect(ini.render()).toBe(text);
    });
  }

  test("backup.info model round-trips, 64-bit system id exact", () => {
    const text = readFileSync(join(SAMPLES, "backup.info"), "utf8");
    const info = BackupInfo.fromIni(InfoIni.parse(text, "backup.info"));
    expect(info.toIni().render()).toBe(text);
    expect(info.current.systemId).toBeGreaterThan(2n ** 53n);
    const labels = info.labels();
    expect(labels.length).toBeGreaterThan(0);
    for (const l of labels) expect(info.backups.get(l)!.type).toBe(labelType(l));
  });

  test("archive.info model round-trips", () => {
    const text = readFileSync(join(SAMPLES, "archive.info"), "utf8");
    const info = ArchiveInfo.fromIni(InfoIni.parse(text, "archive.info"));
    expect(info.toIni().render()).toBe(text);
    expect(info.archiveId).toMatch(/^\d+-\d+$/);
  });

  test("a changed byte fails the checksum", () => {
    const text = readFileSync(join(SAMPLES, "archive.info"), "utf8");
    expect(() => InfoIni.parse(text.replace('db-version="', 'db-version="1'), "archive.info")).toThrow(/invalid checksum/);
    expect(() => InfoIni.parse(text.split("[backrest]\nbackrest-checksum")[0]!, "archive.info")).toThrow(/no backrest-checksum/);
  });

  // The value the file records is what was expected; the hash of what is there now is what was found.
  test("the checksum error names the recorded checksum as expected and the content's hash as found", () => {
    const text = readFileSync(join(SAMPLES, "archive.info"), "utf8");
    const recorded = /backrest-checksum="([0-9a-f]{40})"/.exec(text)![1]!;
    const changed = text.replace('db-version="', 'db-version="1');
    const found = InfoIni.parse(changed, "archive.info", false).checksum();
    expect(found).not.toBe(recorded);
    expect(() => InfoIni.parse(changed, "archive.info")).toThrow(`expected '${recorded}' (recorded in the file) but its content hashes to '${found}'`);
  });
});

describe("backup.info of a block incremental chain, written by pgBackRest 2.59.1 (bench/block-incr.ts)", () => {
  const TEXT = `[backrest]
backrest-format=5
backrest-version="2.59.1"

[backup:current]
20261207-120157F={"backrest-format":5,"backrest-version":"2.59.1","backup-archive-start":"000000010000000000000011","backup-archive-stop":"000000010000000000000011","backup-error":false,"backup-info-repo-size":38802850,"backup-info-repo-size-delta":38802850,"backup-info-repo-size-map":74055,"backup-info-repo-size-map-delta":74055,"backup-info-size":337008498,"backup-info-size-delta":337008498,"backup-lsn-start":"0/11000028","backup-lsn-stop":"0/11000138","backup-timestamp-start":1796644917,"backup-timestamp-stop":1796644930,"backup-type":"full","db-id":1,"option-archive-check":false,"option-archive-copy":false,"option-backup-standby":false,"option-checksum-page":true,"option-compress":true,"option-hardlink":false,"option-online":true}
20261207-120157F_20261207-120233I={"backrest-format":5,"backrest-version":"2.59.1","backup-archive-start":"000000010000000000000018","backup-archive-stop":"000000010000000000000018","backup-error":false,"backup-info-repo-size":29091888,"backup-info-repo-size-delta":24679598,"backup-info-repo-size-map":84992,"backup-info-repo-size-map-delta":67077,"backup-info-size":337909618,"backup-info-size-delta":315457796,"backup-lsn-start":"0/18000028","backup-lsn-stop":"0/18000100","backup-prior":"20261207-120157F","backup-reference":["20261207-120157F"],"backup-timestamp-start":1796644953,"backup-timestamp-stop":1796644963,"backup-type":"incr","db-id":1,"option-archive-check":false,"option-archive-copy":false,"option-backup-standby":false,"option-checksum-page":true,"option-compress":true,"option-hardlink":false,"option-online":true}

[db]
db-catalog-version=202209061
db-control-version=1300
db-id=1
db-system-id=7716531100488784825
db-version="15"

[db:history]
1={"db-catalog-version":202209061,"db-control-version":1300,"db-system-id":7716531100488784825,"db-version":"15"}

[backrest]
backrest-checksum="9ccc8cde9430368fb48c54336c529d4f4433a0b1"
`;
  test("the map sizes are read, and the backups re-render byte-identical (the header names pgbunker's version)", () => {
    const info = BackupInfo.fromIni(InfoIni.parse(TEXT, "backup.info"));
    const backups = (text: string) => text.split("\n").filter((l) => /^\d{8}-\d{6}F/.test(l));
    expect(backups(TEXT).length).toBe(2);
    expect(backups(info.toIni().render())).toEqual(backups(TEXT));
    const incr = info.backups.get("20261207-120157F_20261207-120233I")!;
    expect({ map: incr.repoSizeMap, mapDelta: incr.repoSizeMapDelta, delta: incr.repoSizeDelta }).toEqual({ map: 84992, mapDelta: 67077, delta: 24679598 });
  });
});

describe("info file .copy fallback", () => {
  test("main corrupt → copy used; both bad → error naming both; missing → FileMissingError", async () => {
    const dir = scratch();
    const s = new Storage(posix, dir);
    const info = new ArchiveInfo({ id: 1, systemId: 7712144726744982025n, version: "15" });
    await saveArchiveInfo(s, "demo", info);
    const file = join(dir, "archive/demo/archive.info");
    expect(readFileSync(file, "utf8")).toBe(readFileSync(file + ".copy", "utf8"));
    writeFileSync(file, "garbage\n");
    expect((await loadArchiveInfo(s, "demo"))!.current.systemId).toBe(7712144726744982025n);
    writeFileSync(file + ".copy", readFileSync(file + ".copy", "utf8").replace('"15"', '"16"'));
    await expect(loadArchiveInfo(s, "demo")).rejects.toThrow(/archive.info' or '.*archive.info.copy'/);
    await expect(loadInfoFile(s, "archive/other/archive.info")).rejects.toMatchObject({ kind: "FileMissingError" });
    expect(await loadInfoFile(s, "archive/other/archive.info", { ignoreMissing: true })).toBeNull();
  });
});

describe("encrypted info files", () => {
  test("a wrong passphrase is a CryptoError, also when the garbage it decrypts to has valid padding", async () => {
    const dir = scratch();
    const s = new Storage(posix, dir);
    await saveArchiveInfo(s, "demo", new ArchiveInfo({ id: 1, systemId: 7712144726744982025n, version: "15" }), "the right passphrase");
    expect((await loadArchiveInfo(s, "demo", { cipherPass: "the right passphrase" }))!.current.version).toBe("15");
    // About one wrong key in 256 passes the padding check; 600 tries make that all but certain.
    const kinds = new Set<string>();
    for (let i = 0; i < 600; i++) {
      const e = await loadInfoFile(s, "archive/demo/archive.info", { cipherPass: `wrong ${i}` }).then(() => null, (x) => x);
      kinds.add(e?.kind ?? "loaded");
    }
    expect([...kinds]).toEqual(["CryptoError"]);
  });

  test("the hint names the passphrase, not a missing stanza; an encrypted file read as plain text says it is encrypted", async () => {
    const s = new Storage(posix, scratch());
    await saveArchiveInfo(s, "demo", new ArchiveInfo({ id: 1, systemId: 7712144726744982025n, version: "15" }), "the right passphrase");
    const hint = ["archive.info cannot be opened but is required to push/get WAL segments.", "has a stanza-create been performed?"];
    const wrong = await loadInfoFile(s, "archive/demo/archive.info", { cipherPass: "wrong", hint }).then(() => null, (x) => x);
    expect([wrong.kind, wrong.hints]).toEqual(["CryptoError", [WRONG_PASS_HINT]]);
    const plain = await loadInfoFile(s, "archive/demo/archive.info", { hint }).then(() => null, (x) => x);
    expect(plain.kind).toBe("CryptoError");
    expect(plain.message).toContain("archive.info' is encrypted (it starts with 'Salted__') but repo-cipher-type is none");
    expect(plain.hints).toEqual(["this repository is encrypted: set repo-cipher-type=aes-256-cbc and repo-cipher-pass (the passphrase the stanza was created with) for it."]);
  });
});

describe("manifest", () => {
  test("page error ranges as pgBackRest writes them", () => {
    expect(pageErrorRanges([3, 5, 6])).toEqual([3, [5, 6]]);
    expect(pageErrorRanges([9, 1, 2, 3, 7])).toEqual([[1, 3], 7, 9]);
    expect(pageErrorText([3, [5, 6]])).toBe("3, 5-6");
  });

  test("build, render, parse: defaults factored out, keys sorted, round trip exact", () => {
    const m = new Manifest(
      { label: "20240101-000000F", type: "full", reference: ["20240101-000000F"], timestampStart: 1, timestampStop: 2, archiveStart: "000000010000000000000002", archiveStop: "000000010000000000000002", lsnStart: "0/2000028", lsnStop: "0/2000100" },
      { id: 1, systemId: 7712144726744982025n, version: "15", catalogVersion: 202209061, controlVersion: 1300 },
    );
    m.targets.set("pg_data", { name: "pg_data", path: "/data", type: "path" });
    m.paths.set("pg_data", { name: "pg_data", mode: "0700", user: "postgres", group: "postgres" });
    m.files.set("pg_data/PG_VERSION", { name: "pg_data/PG_VERSION", size: 3, timestamp: 10, checksum: "587b596f04f7db9c2cad3d6b87dd2b3a05de4f35", repoSize: 22, rck: "bfa569d98ca391dc0326bc92fe80b8b6eb9f1f1b", mode: "0600", user: "postgres", group: "postgres" });
    m.files.set("pg_data/base/1/1", { name: "pg_data/base/1/1", size: 8192, timestamp: 11, checksum: "a".repeat(40), checksumPage: false, checksumPageError: [0], repoSize: 50, mode: "0600", user: "postgres", group: "postgres" });
    m.files.set("pg_data/odd", { name: "pg_data/odd", size: 0, timestamp: 12, repoSize: 15, mode: "0640", user: "root", group: false });
    const text = m.render();
    expect(text).toContain('pg_data/odd={"group":false,"mode":"0640","repo-size":15,"size":0,"timestamp":12,"user":"root"}');
    expect(text).toContain('[target:file:default]\ngroup="postgres"\nmode="0600"\nuser="postgres"');
    expect(text).not.toContain("[target:link]");
    const back = Manifest.parse(text);
    expect(back.render()).toBe(text);
    expect(back.files.get("pg_data/odd")!.group).toBe(false);
    expect(back.db.systemId).toBe(7712144726744982025n);
  });
});

describe("labels", () => {
  test("formats and ordering", () => {
    const t = new Date(2024, 0, 2, 3, 4, 5);
    expect(labelCreate("full", undefined, [], t)).toEqual({ label: "20240102-030405F", moved: false });
    expect(labelCreate("incr", "20240102-030405F", ["20240102-030405F", "20240102-030405F_20240102-030405I"], t)).toEqual({ label: "20240102-030405F_20240102-030406I", moved: true });
    expect(labelCreate("diff", "20240102-030405F", ["20240102-030405F"], new Date(2024, 0, 3)).label).toBe("20240102-030405F_20240103-000000D");
    expect(() => labelCreate("full", undefined, ["20250101-000000F"], t)).toThrow(/not later/);
    expect(labelType("20240102-030405F_20240103-000000D")).toBe("diff");
  });

  // Backups started back to back, all within one second: every type after every type. Each
  // call sees the clock where the previous backup left it (labelCreate's caller waits for a moved
  // label's second to begin), so each label must be new and sort after the ones before it.
  test("back-to-back backups of every type in one second all get later labels", () => {
    const order = ["full", "diff", "incr", "incr", "diff", "full", "incr", "full", "full", "diff", "diff", "incr"] as const;
    let clock = new Date(2024, 0, 2, 3, 4, 5).getTime();
    const labels: string[] = [];
    let full: string | undefined;
    for (const type of order) {
      const { label, moved } = labelCreate(type, type === "full" ? undefined : full, labels, new Date(clock));
      if (moved) clock += 1000;
      expect(labels.every((l) => l < label)).toBe(true);
      expect(labelType(label)).toBe(type);
      labels.push(label);
      if (type === "full") full = label;
    }
    expect(new Set(labels).size).toBe(order.length);
  });

  test("a diff/incr label only has to follow its own full set; an expired set in history counts for a full", () => {
    const t = new Date(2024, 0, 2, 3, 4, 5);
    // A later full set exists, but the incr of the older set still gets its own-time label.
    expect(labelCreate("incr", "20240101-000000F", ["20240101-000000F", "20240102-030405F"], t)).toEqual({ label: "20240101-000000F_20240102-030405I", moved: false });
    // A full's label has to pass a label known only from backup.history.
    expect(labelCreate("full", undefined, ["20240102-030405F_20240102-030405I"], t)).toEqual({ label: "20240102-030406F", moved: true });
  });
});
