/**
 * recovery-targets (a pgbunker addition) on real WAL of every major 10-18, run concurrently: a
 * full backup, commits bracketed by clock readings, two named restore points, more commits,
 * archived by pgbunker. The command must list exactly those two restore points, a commit range
 * that brackets the known commits, and the backup's consistency point and earliest target; a
 * restore to a listed restore point must reach it. On 15 also: a restore to a listed commit time
 * (to the microsecond: that commit in, the next out), the time filter, --output=json vs text,
 * and restore --type=name with an unknown name refused, naming the ones the archive has.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { ERROR_CODES } from "../../src/common/error.ts";
import { availableMajors, type Cluster, mkdirAsPostgres } from "../harness/cluster.ts";
import type { StanzaEnv } from "../harness/stanza.ts";
import { makeStanza, removeStanza } from "./restore-lib.ts";

const MAJORS = availableMajors();
const envs: StanzaEnv[] = [];

afterAll(async () => {
  for (const env of envs) await removeStanza(env);
});

interface Point {
  lsn: string;
  time: string;
}
interface Targets {
  name: string;
  timelines: {
    timeline: number;
    restorePoints: { name: string; time: string; lsn: string }[];
    commits: { count: number; first?: Point; last?: Point };
    aborts: { count: number };
    backups: { label: string; consistent: { lsn: string; backupEnd: boolean }; earliest?: Point; latest?: Point }[];
  }[];
}

const phases = async (c: Cluster) => (await c.query("select phase, count(*)::int as n from t group by phase order by phase")).map((r) => `${r.phase}:${r.n}`);
/** A time as PostgreSQL prints it ("2024-05-01 12:00:00.123456+00") → microseconds since the epoch. */
const micros = (t: string) => {
  const m = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.(\d{1,6}))?\+00$/.exec(t)!;
  return Date.parse(`${m[1]!.replace(" ", "T")}Z`) * 1000 + Number((m[2] ?? "").padEnd(6, "0"));
};

describe("recovery-targets on every major", () => {
  for (const major of MAJORS) {
    test.concurrent(`PostgreSQL ${major}: lists exactly the restore points, brackets the commits, and a restore to a listed point reaches it`, async () => {
      const env = await makeStanza({ major, conf: { shared_buffers: "16MB", max_connections: 10, autovacuum: "off" }, global: { "log-level-console": "warn", "archive-timeout": 120 } });
      envs.push(env);
      const c = env.cluster;
      const clock = async () => micros(await c.scalar("select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'"));
      const insert = async (phase: string) => {
        const before = await clock();
        await c.query(`insert into t select g, '${phase}' from generate_series(1, 50) g`);
        return { before, after: await clock() };
      };
      await c.query("create table t (id int, phase text)");
      await insert("p0");
      const full = /new backup label = (\S+)/.exec(await env.runOkAsync(["--type=full", "--log-level-console=info", "backup"]))![1]!;
      const p1 = await insert("p1");
      const rpA = `rp_a_${major}`;
      await c.query(`select pg_create_restore_point('${rpA}')`);
      await c.query("do $$ begin insert into t values (0, 'aborted'); raise exception 'abort it'; end $$").catch(() => undefined);
      const p2 = await insert("p2");
      const rpB = `rp_b_${major}`;
      await c.query(`select pg_create_restore_point('${rpB}')`);
      const p3 = await insert("p3");
      await insert("p4");
      await env.archiveNow(120_000);

      const doc = (JSON.parse(await env.runOkAsync(["--process-max=2", "recovery-targets", "--output=json"])) as Targets[])[0]!;
      expect(doc.timelines.map((t) => t.timeline)).toEqual([1]);
      const tl = doc.timelines[0]!;
      expect(tl.restorePoints.map((p) => p.name)).toEqual([rpA, rpB]);
      // The commit range brackets every known commit; each restore point's time lies between the commits around it.
      expect(micros(tl.commits.first!.time)).toBeLessThanOrEqual(p1.before);
      expect(micros(tl.commits.last!.time)).toBeGreaterThanOrEqual(p3.after);
      expect(micros(tl.restorePoints[0]!.time)).toBeGreaterThanOrEqual(p1.after);
      expect(micros(tl.restorePoints[0]!.time)).toBeLessThanOrEqual(p2.before);
      expect(tl.aborts.count).toBeGreaterThanOrEqual(1);
      const backup = tl.backups.find((b) => b.label === full)!;
      expect(backup.consistent.backupEnd).toBe(true);
      expect(micros(backup.earliest!.time)).toBeLessThanOrEqual(p1.after);
      expect(backup.latest).toEqual(tl.commits.last);

      const rp = await env.restoreAndStart("pgbunker", full, ["--type=name", `--target=${tl.restorePoints[1]!.name}`, "--target-action=promote"], major);
      expect(await phases(rp)).toEqual(["p0:50", "p1:50", "p2:50"]);
      rp.stop("immediate");

      if (major !== 15) return;
      // To a listed commit time: the first commit after rp_b is p3's; inclusive, p3 is in and p4 out.
      const cmd = ["recovery-targets", `--time-start=${tl.restorePoints[1]!.time}`];
      const after = (JSON.parse(await env.runOkAsync([...cmd, "--output=json"])) as Targets[])[0]!.timelines[0]!;
      expect(after.restorePoints.map((p) => p.name)).toEqual([rpB]);
      expect(micros(after.commits.first!.time)).toBeGreaterThanOrEqual(p3.before);
      expect(micros(after.commits.first!.time)).toBeLessThanOrEqual(p3.after);
      const byTime = await env.restoreAndStart("pgbunker", full, ["--type=time", `--target=${after.commits.first!.time}`, "--target-action=promote"], major);
      expect(await phases(byTime)).toEqual(["p0:50", "p1:50", "p2:50", "p3:50"]);
      byTime.stop("immediate");

      const textOut = await env.runOkAsync(cmd);
      expect(textOut).toContain(`restore point: ${rpB}, time ${after.restorePoints[0]!.time}, lsn ${after.restorePoints[0]!.lsn}\n`);
      expect(textOut).not.toContain(rpA);
      expect(textOut).toContain(`commits: ${after.commits.count}, first ${after.commits.first!.time} (lsn ${after.commits.first!.lsn})`);

      // An unknown restore point: refused before anything is written, with the names there are.
      const dest = mkdirAsPostgres(join(env.base, "never"));
      const r = await env.runAsync([`--pg1-path=${dest}`, `--set=${full}`, "--type=name", "--target=no_such_point", "restore"]);
      expect(r.code).toBe(ERROR_CODES.OptionInvalidValueError);
      expect(r.stderr).toContain("restore point 'no_such_point' is not in the archive");
      expect(r.stderr).toContain(`restore points after backup ${full}: ${rpA}, ${rpB}`);
      expect(readdirSync(dest)).toEqual([]);

      const bad = await env.runAsync(["recovery-targets", "--time-start=yesterday"]);
      expect(bad.code).toBe(ERROR_CODES.OptionInvalidValueError);
      expect(bad.stderr).toContain("'yesterday' is not a valid value for option 'time-start'");
    }, 600_000);
  }
});
