import { expect, test } from "bun:test";
import { excludeDecision, isRelationFile, relationSegment, replicatedOnStandby, unloggedSkips } from "../../../src/postgres/exclude.ts";

const rules = { user: ["junk/", "notes.txt"], tablespaceVersionDir: "PG_15_202209061" };

test("what a backup skips, keeps empty, and keeps", () => {
  const cases: [string, "file" | "path" | "link" | "special", string][] = [
    ["pg_wal", "path", "skip-contents"],
    ["pg_replslot", "path", "skip-contents"],
    ["pg_stat_tmp", "path", "skip-contents"],
    ["pg_subtrans", "path", "skip-contents"],
    ["pg_stat", "path", "keep"],
    ["postmaster.pid", "file", "skip"],
    ["postmaster.opts", "file", "skip"],
    ["backup_label", "file", "skip"],
    ["recovery.signal", "file", "skip"],
    ["postgresql.conf", "file", "keep"],
    ["global/pg_internal.init", "file", "skip"],
    ["base/5/pg_internal.init", "file", "skip"],
    ["base/pgsql_tmp", "path", "skip"],
    ["base/5/t3_16384", "file", "skip"],
    ["base/5/16384", "file", "keep"],
    ["pg_tblspc/16394/PG_15_202209061", "path", "keep"],
    ["pg_tblspc/16394/PG_14_202107181", "path", "skip"],
    ["pg_tblspc/16394/PG_15_202209061/5/t2_1", "file", "skip"],
    ["junk", "path", "skip-contents"],
    ["notes.txt", "file", "skip"],
    ["socket", "special", "skip"],
  ];
  for (const [rel, type, want] of cases) expect(`${rel}: ${excludeDecision(rel, type, rules)}`).toBe(`${rel}: ${want}`);
});

test("unlogged relations: every fork and segment but the init fork is skipped", () => {
  const skip = unloggedSkips(["16384", "16384_init", "16384_fsm", "16384.1", "16390", "16390_vm"]);
  expect([...skip].sort()).toEqual(["16384", "16384.1", "16384_fsm"]);
  expect(unloggedSkips(["1", "2_fsm"]).size).toBe(0);
});

test("relation files and segment numbers (page checksum block numbers)", () => {
  expect(isRelationFile("base/5/16384.2", rules)).toBe(true);
  expect(isRelationFile("global/1262", rules)).toBe(true);
  expect(isRelationFile("pg_tblspc/1/PG_15_202209061/5/16395_vm", rules)).toBe(true);
  expect(isRelationFile("base/5/PG_VERSION", rules)).toBe(false);
  expect(isRelationFile("pg_xact/0000", rules)).toBe(false);
  expect(relationSegment("16384.2")).toBe(2);
  expect(relationSegment("16384")).toBe(0);
});

test("backup-standby: relations and transaction status from the standby, pg_control and the rest from the primary", () => {
  for (const rel of ["base/5/16384", "base/5/16384_fsm", "global/1262", "pg_tblspc/16400/PG_15_202209061/5/16401", "pg_xact/0000", "pg_multixact/offsets/0000", "pg_commit_ts/0000"])
    expect(`${rel} ${replicatedOnStandby(rel)}`).toBe(`${rel} true`);
  for (const rel of ["global/pg_control", "postgresql.conf", "postgresql.auto.conf", "PG_VERSION", "pg_logical/replorigin_checkpoint", "pg_twophase/00000300", "backup_label", "base"])
    expect(`${rel} ${replicatedOnStandby(rel)}`).toBe(`${rel} false`);
});
