import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { PageChecksumFilter } from "../../../src/filter/page-checksum.ts";
import { pageChecksum, pageChecksumAvx2, pageChecksumForceBaseline, pageVerify } from "../../../src/native/helper.ts";
import { Cluster } from "../../harness/cluster.ts";

/** Relation files: base/DB/NNN, global/NNN (+ forks and segments), not the catalog maps. */
function relationFiles(dataDir: string): string[] {
  const out: string[] = [];
  for (const top of ["global", "base"]) {
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (/^\d+(_(fsm|vm|init))?(\.\d+)?$/.test(e.name) && statSync(p).size % 8192 === 0) out.push(p);
      }
    };
    walk(join(dataDir, top));
  }
  return out;
}

describe("PostgreSQL page checksums on a real initdb -k cluster", () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await Cluster.create();
    cluster.start();
    await cluster.query("create table t (id int primary key, v text)");
    await cluster.query("insert into t select g, md5(g::text) from generate_series(1, 20000) g");
    await cluster.query("update t set v = v || 'x' where id % 7 = 0");
    await cluster.query("checkpoint");
    cluster.stop();
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  test("every page of every relation file verifies", () => {
    const files = relationFiles(cluster.dataDir);
    expect(files.length).toBeGreaterThan(300);
    let pages = 0;
    for (const f of files) {
      const buf = new Uint8Array(readFileSync(f));
      const n = buf.length / 8192;
      const seg = Number(/\.(\d+)$/.exec(f)?.[1] ?? 0);
      const bad = new Uint32Array(n || 1);
      expect({ f, bad: pageVerify(buf, n, 8192, seg * 131072, 0xffffffffffffffffn, bad) }).toEqual({ f, bad: 0 });
      pages += n;
    }
    expect(pages).toBeGreaterThan(500);
  });

  test("the AVX2 and the baseline builds of the loop agree with pd_checksum on every page, at any buffer offset", () => {
    let checked = 0;
    try {
      for (const f of relationFiles(cluster.dataDir)) {
        const buf = new Uint8Array(readFileSync(f));
        const seg = Number(/\.(\d+)$/.exec(f)?.[1] ?? 0);
        // One byte in: the words are read in place, unaligned.
        const shifted = new Uint8Array(buf.length + 1).subarray(1);
        shifted.set(buf);
        for (let i = 0; i < buf.length / 8192; i++) {
          const page = buf.subarray(i * 8192, (i + 1) * 8192);
          const dv = new DataView(page.buffer, page.byteOffset);
          if (dv.getUint16(14, true) === 0) continue; // new page
          const stored = dv.getUint16(8, true);
          const block = seg * 131072 + i;
          for (const baseline of [false, true]) {
            pageChecksumForceBaseline(baseline);
            expect(pageChecksum(page, block)).toBe(stored);
            expect(pageChecksum(shifted.subarray(i * 8192, (i + 1) * 8192), block)).toBe(stored);
          }
          checked++;
        }
      }
    } finally {
      pageChecksumForceBaseline(false);
    }
    expect(checked).toBeGreaterThan(500);
    // The AVX2 build is used exactly when the CPU has it.
    expect(pageChecksumAvx2()).toBe(/\bavx2\b/.test(readFileSync("/proc/cpuinfo", "utf8")));
  });

  test("the computed checksum equals pd_checksum stored by PostgreSQL", () => {
    const f = relationFiles(cluster.dataDir).find((x) => statSync(x).size >= 8192 * 8 && !/\.\d+$/.test(x))!;
    const buf = new Uint8Array(readFileSync(f));
    for (let i = 0; i < 8; i++) {
      const page = buf.subarray(i * 8192, (i + 1) * 8192);
      if (new DataView(page.buffer, page.byteOffset).getUint16(14, true) === 0) continue; // new page
      const stored = new DataView(page.buffer, page.byteOffset).getUint16(8, true);
      expect(pageChecksum(page, i)).toBe(stored);
    }
  });

  test("a flipped byte is reported with its block number; zero pages pass; LSN past the limit is skipped", async () => {
    const rel = String((await (async () => {
      cluster.start();
      const r = await cluster.scalar("select pg_relation_filepath('t')");
      cluster.stop();
      return r;
    })()));
    const buf = new Uint8Array(readFileSync(join(cluster.dataDir, rel)));
    const pages = buf.length / 8192;
    expect(pages).toBeGreaterThan(10);
    buf[5 * 8192 + 4000] = buf[5 * 8192 + 4000]! ^ 0x40; // corrupt block 5
    buf.fill(0, 7 * 8192, 8 * 8192); // block 7 becomes a new, all-zero page

    const f = new PageChecksumFilter({ type: "page-checksum", firstBlock: 0, lsnLimit: "18446744073709551615" });
    // Feed in odd-sized pieces so pages straddle chunks.
    for (let i = 0; i < buf.length; i += 5000) f.process(buf.subarray(i, i + 5000), () => {});
    f.flush(() => {});
    const r = f.result();
    expect(r.errors).toEqual([5]);
    expect(r.valid).toBe(false);
    expect(r.align).toBe(true);

    // The same page with an LSN at/after the limit is being written: not an error.
    const lsnHi = new DataView(buf.buffer).getUint32(5 * 8192, true);
    const lsnLo = new DataView(buf.buffer).getUint32(5 * 8192 + 4, true);
    const limit = ((BigInt(lsnHi) << 32n) | BigInt(lsnLo)).toString();
    const g = new PageChecksumFilter({ type: "page-checksum", firstBlock: 0, lsnLimit: limit });
    g.process(buf, () => {});
    g.flush(() => {});
    expect(g.result().errors).not.toContain(5);

    // A page that is neither zero nor new but has pd_upper = 0 with garbage is invalid.
    const junk = new Uint8Array(8192).fill(0);
    junk[100] = 1;
    const h = new PageChecksumFilter({ type: "page-checksum", firstBlock: 0, lsnLimit: "0" });
    h.process(junk, () => {});
    h.flush(() => {});
    expect(h.result().errors).toEqual([0]);
  });

  test("block number matters: a page verified as another block fails", () => {
    const f = relationFiles(cluster.dataDir).find((x) => statSync(x).size >= 8192 * 4)!;
    const buf = new Uint8Array(readFileSync(f)).subarray(0, 8192 * 4);
    const bad = new Uint32Array(4);
    expect(pageVerify(buf, 4, 8192, 0, 0xffffffffffffffffn, bad)).toBe(0);
    expect(pageVerify(buf, 4, 8192, 1, 0xffffffffffffffffn, bad)).toBeGreaterThan(0);
  });

  test("a partial trailing page is reported as misaligned", () => {
    const f = new PageChecksumFilter({ type: "page-checksum", firstBlock: 0, lsnLimit: "0" });
    f.process(new Uint8Array(8192 + 100), () => {});
    f.flush(() => {});
    expect(f.result()).toMatchObject({ align: false, valid: false, errors: [] });
  });
});
