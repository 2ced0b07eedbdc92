/**
 * job-retry over a real sshd (test/harness/remote-env.ts): the backup host backs up the database
 * host, and the remote a backup worker talks to is killed once, mid-copy. The fault is made
 * deterministic by the database host's pgbunker command, a wrapper (remote-fault.ts) that kills
 * its Nth start after it has sent a fixed number of bytes: start 1 is the backup's main session
 * (PostgreSQL queries, pg_control), start 2 the worker's (file data).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, backupLabel } from "../harness/pgbunker.ts";
import { RemoteEnv } from "../harness/remote-env.ts";
import { RemoteFault } from "../harness/remote-fault.ts";

let env: RemoteEnv;
let fault: RemoteFault;

beforeAll(async () => {
  env = await RemoteEnv.create();
  fault = RemoteFault.create(join(env.base, "fault"), BINARY);
  env.writeConfigs({ backupStanza: { "pg1-host-cmd": fault.command } });
  // A few MB of table data, so the worker's session carries far more than the cut-off.
  await env.cluster.query("create table t as select g, md5(g::text) as v from generate_series(1, 60000) g");
  env.backupHostOk(["stanza-create"]);
});

afterAll(async () => {
  await env?.destroy();
});

const BACKUP = ["--type=full", "--process-max=1", "--start-fast", "--log-level-console=info", "backup"];

describe("job-retry: a backup worker's remote is killed mid-copy", () => {
  test("job-retry=1: the job is tried again on a new session, the backup completes and restores the same data", async () => {
    const sum = await env.cluster.tableChecksum("t");
    fault.arm(2, 256 * 1024);
    const r = env.backupHost(["--job-retry=1", ...BACKUP]);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    expect(r.stderr.split("\n").filter((l) => l.startsWith("ERROR"))).toEqual([]);
    // The worker's session was killed once, then a third session finished the job.
    expect(fault.starts()).toBe(3);
    expect(fault.killed()).toBe(true);
    expect(r.stderr).toMatch(/WARN: backup-file job on process 1 failed: \[039\] connection to the pgbunker remote on database host '127\.0\.0\.1' was lost.*; retry 1 of 1 now/);
    const label = backupLabel(r.stdout);
    expect(env.labels()).toContain(label);
    // pgBackRest verifies what was written; the restore (on the database host, through the
    // repository host) has the table as it was.
    expect(env.backrest(["verify"]).code).toBe(0);
    const { cluster: c } = await env.restoreOnDbHost("restored", [`--set=${label}`, "--type=immediate", "--target-action=promote"]);
    expect(await c.tableChecksum("t")).toBe(sum);
    c.stop();
  });

  test("job-retry=0: the backup fails with ProtocolError (039), says how to retry, and adds no backup", () => {
    const before = env.labels();
    fault.arm(2, 256 * 1024);
    const r = env.backupHost(["--job-retry=0", ...BACKUP]);
    expect(r.code).toBe(39);
    expect(fault.starts()).toBe(2);
    expect(r.stderr).toMatch(/ERROR: \[039\]: connection to the pgbunker remote on database host '127\.0\.0\.1' was lost/);
    expect(r.stderr).toContain("HINT: job-retry=0: set job-retry (and job-retry-interval) to try a job again after a lost connection.");
    expect(r.stderr).not.toContain("retry 1 of");
    expect(env.labels()).toEqual(before);
    // The partial backup is not trusted: no new backup directory became a backup.
    const dirs = readdirSync(join(env.repo, "backup", env.stanza)).filter((d) => /^\d{8}-\d{6}F$/.test(d));
    expect(dirs.filter((d) => !before.includes(d)).every((d) => !readdirSync(join(env.repo, "backup", env.stanza, d)).includes("backup.manifest"))).toBe(true);
    expect(readFileSync(join(env.backupDir, "log", `${env.stanza}-backup.log`), "utf8")).toContain("aborted with exception [039]");
  });
});
