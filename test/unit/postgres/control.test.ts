import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { crc32c, crc32cForceTable } from "../../../src/native/helper.ts";
import { parsePgControl } from "../../../src/postgres/control.ts";
import { PG_VERSION_MAX, PG_VERSIONS, pgVersion, pgVersionFromControl, pgVersionFromWalMagic } from "../../../src/postgres/version.ts";
import { parseWalHeader } from "../../../src/postgres/wal.ts";
import { availableMajors, Cluster, mustRun, SYSTEM_BIN } from "../../harness/cluster.ts";
import { PG19_CATALOG_VERSION, PG19_CONTROL_VERSION, PG19_WAL_MAGIC, pg19Control, pg19WalSegment } from "../../harness/pg19.ts";

describe("CRC-32C", () => {
  const vectors: [string, number][] = [
    ["", 0],
    ["a", 0xc1d04330],
    ["123456789", 0xe3069283],
    ["The quick brown fox jumps over the lazy dog", 0x22620404],
  ];
  test("known vectors, hardware and table paths agree", () => {
    for (const force of [false, true]) {
      crc32cForceTable(force);
      for (const [s, want] of vectors) expect(crc32c(new TextEncoder().encode(s))).toBe(want);
      const big = new Uint8Array(100_003).map((_, i) => (i * 13) & 0xff);
      expect(crc32c(big.subarray(50_000), crc32c(big.subarray(0, 50_000)))).toBe(crc32c(big));
    }
    crc32cForceTable(false);
  });
});

describe("pg_control of real clusters, every available major", () => {
  const clusters: Cluster[] = [];
  afterAll(async () => {
    for (const c of clusters) await c.destroy();
  });

  for (const major of availableMajors()) {
    test(`PostgreSQL ${major}: CRC validates and facts match the version table`, async () => {
      const c = await Cluster.create({ major });
      clusters.push(c);
      const buf = new Uint8Array(readFileSync(join(c.dataDir, "global/pg_control")));
      const ctl = parsePgControl(buf);
      expect(ctl.version).toBe(String(major));
      expect(ctl.pageSize).toBe(8192);
      expect(ctl.walSegmentSize).toBe(16 * 1024 * 1024);
      expect(ctl.relSegSize).toBe(131072);
      expect(ctl.dataChecksumVersion).toBe(1);
      expect(ctl.timeline).toBe(1);
      expect(ctl.systemId > 0n).toBe(true);

      // The first WAL segment carries the same system id and this major's page magic.
      const wal = readFileSync(join(c.dataDir, "pg_wal/000000010000000000000001"));
      const head = parseWalHeader(new Uint8Array(wal.subarray(0, 64)), "000000010000000000000001");
      expect(head.systemId).toBe(ctl.systemId);
      expect(head.magic).toBe(ctl.facts.walMagic);

      // A flipped byte is refused by the CRC.
      const bad = buf.slice();
      bad[20] = bad[20]! ^ 1;
      expect(() => parsePgControl(bad)).toThrow(/invalid CRC/);

      if (major === 15) {
        const out = mustRun([join(SYSTEM_BIN, "pg_controldata"), c.dataDir]);
        expect(out).toContain(`Database system identifier:           ${ctl.systemId}`);
        expect(out).toContain(`Catalog version number:               ${ctl.catalogVersion}`);
      }
    });
  }

  test("unknown control/catalog versions are refused with a clear error", () => {
    expect(() => pgVersionFromControl(999, 1)).toThrow(/unexpected control version/);
    expect(pgVersionFromControl(1300, PG_VERSIONS.find((v) => v.major === 15)!.catalogVersion).major).toBe(15);
  });
});

// No PostgreSQL 19 binaries can be had: its files are built from the facts (test/harness/pg19.ts).
describe("PostgreSQL 19 from facts", () => {
  const systemId = 7512345678901234567n;

  test("pg_control: version, system id and the fields after 19's new slru_pages_per_segment", () => {
    const ctl = parsePgControl(pg19Control({ systemId, checkpoint: 0x3000060n, timeline: 3, walSegmentSize: 64 * 1024 * 1024 }));
    expect(ctl).toMatchObject({
      version: "19", systemId, controlVersion: PG19_CONTROL_VERSION, catalogVersion: PG19_CATALOG_VERSION,
      pageSize: 8192, relSegSize: 131072, walPageSize: 8192, walSegmentSize: 64 * 1024 * 1024,
      dataChecksumVersion: 1, checkpointLsn: 0x3000060n, timeline: 3,
    });
    expect(parsePgControl(pg19Control({ systemId, dataChecksums: false })).dataChecksumVersion).toBe(0);
    expect(PG_VERSION_MAX).toBe(19);
    expect(pgVersion("19").major).toBe(19);
  });

  test("pg_control: a later development catalog is still 19; a flipped byte fails the CRC at 19's offset", () => {
    expect(parsePgControl(pg19Control({ systemId, catalogVersion: 202609011 })).version).toBe("19");
    const bad = pg19Control({ systemId });
    bad[240] = bad[240]! ^ 1;
    expect(() => parsePgControl(bad)).toThrow(/invalid CRC/);
  });

  test("WAL page header: 19's magic and the system id", () => {
    const name = "000000010000000000000002";
    const head = parseWalHeader(pg19WalSegment({ systemId, segmentNo: 2n }).subarray(0, 64), name);
    expect(head).toMatchObject({ magic: PG19_WAL_MAGIC, systemId, timeline: 1, segmentSize: 16 * 1024 * 1024, pageSize: 8192, pageAddress: 2n * 16n * 1024n * 1024n });
    expect(pgVersionFromWalMagic(head.magic)?.version).toBe("19");
  });
});
