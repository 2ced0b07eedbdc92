import { describe, expect, test } from "bun:test";
import { fileOrder, planRestore, type PlanFile } from "../../../../src/command/restore/plan.ts";
import { fileAt } from "../../../../src/command/restore/target.ts";
import { batches } from "../../../../src/command/restore/copy.ts";
import { chooseInRepo, noSetError, parseTargetTime, setRequest, type SetChoice } from "../../../../src/command/restore/select.ts";
import { BackupInfo, recordFromJson } from "../../../../src/repo/backup-info.ts";
import { Manifest } from "../../../../src/repo/manifest.ts";

/** A small manifest: two user databases (one in a tablespace too), a directory link and a file link. */
function manifest(): Manifest {
  const m = new Manifest(
    { label: "20240101-000000F", type: "full", reference: [], timestampStart: 1, timestampCopyStart: 2, timestampStop: 3 },
    { id: 1, systemId: 1n, version: "15", catalogVersion: 202209061, controlVersion: 1300 },
  );
  m.targets.set("pg_data", { name: "pg_data", path: "/old/data", type: "path" });
  m.targets.set("pg_tblspc/16400", { name: "pg_tblspc/16400", path: "/old/ts", type: "link", tablespaceId: "16400", tablespaceName: "fast" });
  m.targets.set("pg_data/pg_wal", { name: "pg_data/pg_wal", path: "/old/wal", type: "link" });
  m.targets.set("pg_data/extra.conf", { name: "pg_data/extra.conf", path: "/etc/pg", file: "extra.conf", type: "link" });
  for (const [name, id] of [["postgres", 5], ["template1", 1], ["app", 16384], ["other", 16385]] as const) m.dbs.set(name, { name, id, lastSystemId: 0 });
  const path = (name: string) => m.paths.set(name, { name, mode: "0700", user: "postgres", group: "postgres" });
  for (const p of ["pg_data", "pg_data/base", "pg_data/base/1", "pg_data/base/5", "pg_data/base/16384", "pg_data/base/16385", "pg_data/global", "pg_data/pg_wal", "pg_data/pg_tblspc", "pg_tblspc", "pg_tblspc/16400", "pg_tblspc/16400/PG_15_202209061", "pg_tblspc/16400/PG_15_202209061/16385"]) path(p);
  const file = (name: string, size = 8192) => m.files.set(name, { name, size, timestamp: 1, checksum: "a".repeat(40), mode: "0600", user: "postgres", group: "postgres" });
  for (const f of ["pg_data/PG_VERSION", "pg_data/global/pg_control", "pg_data/base/5/1259", "pg_data/base/16384/2600", "pg_data/base/16385/PG_VERSION", "pg_data/base/16385/2600", "pg_data/base/16385/pg_filenode.map", "pg_data/tablespace_map", "pg_data/extra.conf", "pg_tblspc/16400/PG_15_202209061/16385/3000"]) file(f);
  m.links.set("pg_data/pg_tblspc/16400", { name: "pg_data/pg_tblspc/16400", destination: "/old/ts", user: "postgres", group: "postgres" });
  m.links.set("pg_data/pg_wal", { name: "pg_data/pg_wal", destination: "/old/wal", user: "postgres", group: "postgres" });
  m.links.set("pg_data/extra.conf", { name: "pg_data/extra.conf", destination: "/etc/pg/extra.conf", user: "postgres", group: "postgres" });
  return m;
}

const dests = (p: ReturnType<typeof planRestore>) => Object.fromEntries([...p.files].map((f) => [f.name, f.dest]));

describe("restore plan", () => {
  test("default: data remapped, tablespace in place, links restored as plain directory and file, tablespace_map skipped", () => {
    const p = planRestore(manifest(), { pgPath: "/new/data/" });
    expect(p.targets.map((t) => [t.name, t.path, t.checkPath])).toEqual([
      ["pg_data", "/new/data", "/new/data"],
      ["pg_tblspc/16400", "/old/ts", "/old/ts/PG_15_202209061"],
    ]);
    expect(dests(p)["pg_data/extra.conf"]).toBe("/new/data/extra.conf");
    expect(dests(p)["pg_tblspc/16400/PG_15_202209061/16385/3000"]).toBe("/old/ts/PG_15_202209061/16385/3000");
    expect(dests(p)["pg_data/tablespace_map"]).toBeUndefined();
    expect(p.paths.find((x) => x.name === "pg_data/pg_wal")!.dest).toBe("/new/data/pg_wal");
    expect(p.paths.some((x) => x.name === "pg_tblspc")).toBe(false);
    expect(p.links).toEqual([{ name: "pg_data/pg_tblspc/16400", dest: "/new/data/pg_tblspc/16400", destination: "/old/ts", user: "postgres", group: "postgres" }]);
    expect(p.messages).toEqual([
      { level: "info", message: "remap data directory to '/new/data'" },
      { level: "warn", message: "file link 'extra.conf' will be restored as a file at the same location" },
      { level: "warn", message: "contents of directory link 'pg_wal' will be restored in a directory at the same location" },
      { level: "detail", message: "skip 'tablespace_map' -- tablespace links will be created based on mappings" },
    ]);
    expect([...p.files].every((f) => !f.zero)).toBe(true);
  });

  test("--tablespace-map by name or OID, --tablespace-map-all, --link-all, --link-map", () => {
    expect(planRestore(manifest(), { pgPath: "/d", tablespaceMap: { fast: "/ts1" } }).targets[1]!.path).toBe("/ts1");
    expect(planRestore(manifest(), { pgPath: "/d", tablespaceMap: { "16400": "/ts2" }, tablespaceMapAll: "/all" }).targets[1]!.path).toBe("/ts2");
    const all = planRestore(manifest(), { pgPath: "/d", tablespaceMapAll: "/all", linkAll: true, linkMap: { pg_wal: "/wal2" } });
    expect(all.targets.map((t) => [t.name, t.path, t.file, t.checkPath])).toEqual([
      ["pg_data", "/d", undefined, "/d"],
      ["pg_tblspc/16400", "/all/fast", undefined, "/all/fast/PG_15_202209061"],
      ["pg_data/extra.conf", "/etc/pg", "extra.conf", "/etc/pg/extra.conf"],
      ["pg_data/pg_wal", "/wal2", undefined, "/wal2"],
    ]);
    expect(dests(all)["pg_data/extra.conf"]).toBe("/etc/pg/extra.conf");
    expect(all.paths.find((x) => x.name === "pg_data/pg_wal")!.dest).toBe("/wal2");
    expect(all.links.map((l) => [l.dest, l.destination]).sort()).toEqual([
      ["/d/extra.conf", "/etc/pg/extra.conf"], ["/d/pg_tblspc/16400", "/all/fast"], ["/d/pg_wal", "/wal2"],
    ]);
    const fileMap = planRestore(manifest(), { pgPath: "/d", linkMap: { "extra.conf": "/conf/x.conf" } });
    expect(fileMap.targets.find((t) => t.name === "pg_data/extra.conf")).toMatchObject({ path: "/conf", file: "x.conf" });
    expect(fileMap.messages.filter((m) => m.level === "info").map((m) => m.message)).toContain("map link 'extra.conf' to '/conf/x.conf'");
  });

  test("bad maps: unknown tablespace or link, a destination inside the data directory", () => {
    expect(() => planRestore(manifest(), { pgPath: "/d", tablespaceMap: { slow: "/x" } })).toThrow("unable to remap invalid tablespace 'slow'");
    expect(() => planRestore(manifest(), { pgPath: "/d", linkMap: { nolink: "/x" } })).toThrow("unable to map link 'nolink'");
    expect(() => planRestore(manifest(), { pgPath: "/d", tablespaceMap: { fast: "/d/ts" } })).toThrow("link 'pg_tblspc/16400' destination '/d/ts' is in PGDATA");
    expect(() => planRestore(manifest(), { pgPath: "/d", linkMap: { pg_wal: "wal" } })).toThrow("link 'pg_wal' destination '/d/wal' is in PGDATA");
  });

  test("selective restore: other user databases zeroed (PG_VERSION kept), in tablespaces too", () => {
    const p = planRestore(manifest(), { pgPath: "/d", dbInclude: ["app"] });
    expect(p.zeroedDbs).toEqual(["16385"]);
    expect([...p.files].filter((f) => f.zero).map((f) => f.name).sort()).toEqual([
      "pg_data/base/16385/2600", "pg_data/base/16385/pg_filenode.map", "pg_tblspc/16400/PG_15_202209061/16385/3000",
    ]);
    expect(p.messages.filter((m) => m.level === "detail").map((m) => m.message)).toEqual([
      "databases found for selective restore (1, 16384, 16385, 5)",
      "databases excluded (zeroed) from selective restore (16385)",
      "skip 'tablespace_map' -- tablespace links will be created based on mappings",
    ]);
    expect(planRestore(manifest(), { pgPath: "/d", dbExclude: ["16384", "postgres"] }).zeroedDbs).toEqual(["16384", "5"]);
    expect(planRestore(manifest(), { pgPath: "/d", dbInclude: ["app"], dbExclude: ["postgres"] }).zeroedDbs).toEqual(["16385", "5"]);
    expect(() => planRestore(manifest(), { pgPath: "/d", dbInclude: ["nosuch"] })).toThrow("database to include 'nosuch' does not exist");
    expect(() => planRestore(manifest(), { pgPath: "/d", dbExclude: ["nosuch"] })).toThrow("database to exclude 'nosuch' does not exist");
    expect(() => planRestore(manifest(), { pgPath: "/d", dbInclude: ["template1"] })).toThrow("system databases (template0, postgres, etc.) are included by default");
    expect(() => planRestore(manifest(), { pgPath: "/d", dbInclude: ["app"], dbExclude: ["app"] })).toThrow("database to include 'app' is in the exclude list");
  });
});

/** One repository's answer, or the error a restore with only this repository gives. */
function selectBackupSet(info: BackupInfo, opts: Parameters<typeof setRequest>[0]): SetChoice {
  const req = setRequest(opts);
  const choice = chooseInRepo(info, req);
  if (choice && "record" in choice) return choice;
  throw noSetError(req, info.labels());
}

describe("backup set selection", () => {
  const info = new BackupInfo({ id: 1, systemId: 1n, version: "15", catalogVersion: 1, controlVersion: 1 });
  const add = (label: string, stop: string, lsnStop: string) =>
    info.add(recordFromJson(label, { "backup-type": label.length > 16 ? "incr" : "full", "db-id": 1, "backup-timestamp-start": parseTargetTime(stop) - 10, "backup-timestamp-stop": parseTargetTime(stop), "backup-lsn-stop": lsnStop }));
  add("20240101-000000F", "2024-01-01 00:10:00+00", "0/3000100");
  add("20240101-000000F_20240102-000000I", "2024-01-02 00:10:00+00", "0/5000100");

  test("--set, latest, and by --target time or lsn (newest backup that ended before it)", () => {
    expect(selectBackupSet(info, { set: "latest", setExplicit: false, type: "default" }).record.label).toBe("20240101-000000F_20240102-000000I");
    expect(selectBackupSet(info, { set: "20240101-000000F", setExplicit: true, type: "default" }).how).toBe("set");
    expect(selectBackupSet(info, { set: "latest", setExplicit: false, type: "time", target: "2024-01-01 12:00:00+00" }).record.label).toBe("20240101-000000F");
    // Stop time strictly before the target, in whole seconds (as pgBackRest): a backup that ended in the target's second is not used.
    expect(selectBackupSet(info, { set: "latest", setExplicit: false, type: "time", target: "2024-01-02 00:10:00+00" }).record.label).toBe("20240101-000000F");
    expect(selectBackupSet(info, { set: "latest", setExplicit: false, type: "time", target: "2024-01-02 00:10:00.9+00" }).record.label).toBe("20240101-000000F");
    expect(selectBackupSet(info, { set: "latest", setExplicit: false, type: "time", target: "2024-01-02 00:10:01+00" }).record.label).toBe("20240101-000000F_20240102-000000I");
    expect(selectBackupSet(info, { set: "latest", setExplicit: true, type: "time", target: "2024-01-01 12:00:00+00" }).record.label).toBe("20240101-000000F_20240102-000000I");
    expect(selectBackupSet(info, { set: "latest", setExplicit: false, type: "lsn", target: "0/5000000" }).record.label).toBe("20240101-000000F");
    expect(selectBackupSet(info, { set: "latest", setExplicit: false, type: "lsn", target: "0/5000100" }).record.label).toBe("20240101-000000F_20240102-000000I");
  });

  test("errors: unknown set, target before every backup, unreadable time", () => {
    expect(() => selectBackupSet(info, { set: "20200101-000000F", setExplicit: true, type: "default" })).toThrow("backup set 20200101-000000F is not valid");
    expect(() => selectBackupSet(info, { set: "latest", setExplicit: false, type: "time", target: "2023-01-01 00:00:00+00" })).toThrow("unable to find backup set with stop time less than '2023-01-01 00:00:00+00'");
    expect(() => selectBackupSet(info, { set: "latest", setExplicit: false, type: "lsn", target: "0/100" })).toThrow("unable to find backup set with lsn less than or equal to '0/100'");
    expect(() => selectBackupSet(info, { set: "latest", setExplicit: false, type: "time", target: "yesterday" })).toThrow("automatic backup set selection cannot be performed with provided time 'yesterday'");
    expect(() => selectBackupSet(new BackupInfo(info.current), { set: "latest", setExplicit: false, type: "default" })).toThrow("no backup set found to restore");
  });

  test("per repository: no backups or a backup without lsn info sends the search on; a latest from before stanza-upgrade is refused", () => {
    expect(chooseInRepo(new BackupInfo(info.current), { kind: "latest" })).toEqual({ skip: "[BackupSetInvalidError] no backup sets to restore" });
    expect(chooseInRepo(info, { kind: "set", label: "20200101-000000F" })).toBeUndefined();
    expect(chooseInRepo(info, { kind: "time", target: "t", time: 0 })).toBeUndefined();

    const old = new BackupInfo({ id: 1, systemId: 1n, version: "15", catalogVersion: 1, controlVersion: 1 });
    old.add(recordFromJson("20230101-000000F", { "backup-type": "full", "db-id": 1, "backup-timestamp-start": 1, "backup-timestamp-stop": 2 }));
    const skip = chooseInRepo(old, setRequest({ set: "latest", setExplicit: false, type: "lsn", target: "0/5000000" }));
    expect(skip).toEqual({ skip: expect.stringContaining("missing required LSN info before finding a match -- backup auto-select has been disabled for this repo") });

    old.addDb({ systemId: 2n, version: "16", catalogVersion: 2, controlVersion: 2 });
    expect(() => chooseInRepo(old, { kind: "latest" })).toThrow("the latest backup set found '20230101-000000F' is from a prior version of PostgreSQL");
  });

  test("target times: offsets, fractions, local time", () => {
    expect(parseTargetTime("2024-01-01 00:00:00+00")).toBe(Date.UTC(2024, 0, 1) / 1000);
    expect(parseTargetTime("2024-01-01 02:30:00.25+02:30")).toBe(Date.UTC(2024, 0, 1) / 1000 + 0.25);
    expect(parseTargetTime("2024-01-01 00:00:00-0100")).toBe(Date.UTC(2024, 0, 1, 1) / 1000);
    expect(parseTargetTime("2024-01-01 00:00:00")).toBe(new Date(2024, 0, 1).getTime() / 1000);
  });
});

describe("plan files made from the manifest when asked for (issue 19)", () => {
  test("count, get by name and the restore order agree with iterating them; tablespace_map left out", () => {
    const m = manifest();
    for (const [name, size] of [["pg_data/base/5/1259", 1 << 20], ["pg_data/base/16384/2600", 1 << 20], ["pg_data/PG_VERSION", 3]] as const) m.files.set(name, { ...m.files.get(name)!, size });
    const p = planRestore(m, { pgPath: "/d" });
    const all = [...p.files];
    expect(p.files.count).toBe(9);
    expect(p.files.bytes).toBe(all.reduce((n, f) => n + f.size, 0));
    expect(p.files.dest("pg_data/PG_VERSION")).toBe(all.find((f) => f.name === "pg_data/PG_VERSION")!.dest);
    expect(p.files.dest("pg_data/tablespace_map")).toBeUndefined();
    expect(all.length).toBe(9);
    expect(all.map((f) => f.name)).toEqual([...all.map((f) => f.name)].sort());
    expect(p.files.get("pg_data/tablespace_map")).toBeUndefined();
    expect(p.files.get("pg_data/nope")).toBeUndefined();
    expect(p.files.get("pg_data/PG_VERSION")).toEqual(all.find((f) => f.name === "pg_data/PG_VERSION")!);
    expect([...p.files.inOrder()]).toEqual([...all].sort(fileOrder));
    expect([...p.files.inOrder()].slice(0, 2).map((f) => f.name)).toEqual(["pg_data/base/16384/2600", "pg_data/base/5/1259"]);
  });

  test("fileAt: a file of the plan at that place, under any target (what the delta clean keeps)", () => {
    const linked = fileAt(planRestore(manifest(), { pgPath: "/d", linkAll: true }));
    expect(linked("/etc/pg/extra.conf")).toBe(true);
    expect(linked("/d/extra.conf")).toBe(false);
    expect(linked("/d/PG_VERSION")).toBe(true);
    expect(linked("/d/tablespace_map")).toBe(false);
    expect(linked("/d/base/5")).toBe(false);
    expect(linked("/old/ts/PG_15_202209061/16385/3000")).toBe(true);
    expect(linked("/old/ts/PG_15_202209061/16385/9999")).toBe(false);
    const plain = fileAt(planRestore(manifest(), { pgPath: "/d" }));
    expect(plain("/d/extra.conf")).toBe(true);
    expect(plain("/d/global/pg_control")).toBe(true);
    expect(plain("/etc/pg/extra.conf")).toBe(false);
  });
});

describe("file batches for the workers", () => {
  test("large files alone, small ones together (at most 32 files or 1 MiB a batch), order kept", () => {
    const f = (name: string, size: number) => ({ name, size }) as PlanFile;
    const files = [f("a", 5 << 20), f("b", 2 << 20), ...Array.from({ length: 40 }, (_, i) => f(`s${i}`, 100 << 10)), ...Array.from({ length: 40 }, (_, i) => f(`z${i}`, 0))];
    const b = [...batches(files)];
    expect(b.map((x) => x.length)).toEqual([1, 1, 10, 10, 10, 32, 18]);
    expect(b.flat().map((x) => x.name)).toEqual(files.map((x) => x.name));
  });
});
