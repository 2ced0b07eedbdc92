/**
 * S3 repositories when things go wrong, through the built binary on a real engine (Ceph RGW over
 * TLS): the gateway itself killed (SIGKILL) in the middle of a backup and of an archive-push and
 * started again; wrong credentials, a missing bucket, a CA that did not sign the endpoint and a
 * clock 1 h off (the process runs under libfaketime, and RGW itself answers RequestTimeTooSkewed).
 * Every failure is a clear error naming bucket, key and HTTP status, a non-zero exit, and nothing
 * half-written in the bucket; afterwards verify passes and a resumed backup completes. Also: the
 * secrets never reach the log (trace), info, help or the command-begin line, and repo-hardlink is
 * refused on S3.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, copyFileSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { S3Http } from "../../src/storage/s3/client.ts";
import { sha1File } from "../harness/archive.ts";
import { Cluster, mkdirAsPostgres, PG_GID, PG_UID, runAsPostgres, spawnAsPostgres } from "../harness/cluster.ts";
import { FaultProxy } from "../harness/fault-proxy.ts";
import { BINARY } from "../harness/pgbunker.ts";
import { Rgw } from "../harness/rgw.ts";
import { partialBackup, s3Keys, storedByRun } from "../harness/s3-repo.ts";
import type { StanzaEnv } from "../harness/stanza.ts";
import { makeStanza, removeStanza, STANZA } from "./restore-lib.ts";

const BUCKET = "pgbunker-s3-failures";
const FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
let rgw: Rgw;
let proxy: FaultProxy;
let env: StanzaEnv;
let s3: S3Http;
const restored: Cluster[] = [];
let segments = 0;

const keys = (prefix = "repo/") => s3Keys(s3, prefix);

/**
 * A real WAL segment of the cluster (valid page header) under a name of timeline 9, which the
 * cluster's own archiving never uses: a file to push by hand.
 */
function segmentToPush(): { path: string; name: string } {
  const wal = join(env.cluster.dataDir, "pg_wal");
  const source = readdirSync(wal).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort()[0]!;
  const name = `00000009000000000000${(0x40 + ++segments).toString(16).toUpperCase().padStart(4, "0")}`;
  const dir = mkdirAsPostgres(join(env.base, "to-push"));
  const path = join(dir, name);
  copyFileSync(join(wal, source), path);
  chownSync(path, PG_UID, PG_GID);
  return { path, name };
}

function bunker(args: string[], extraEnv: Record<string, string> = {}) {
  return runAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${STANZA}`, ...args], { env: extraEnv });
}

/** Wait for a spawned pgbunker and collect its output. */
async function finished(p: ReturnType<typeof spawnAsPostgres>): Promise<{ code: number; output: string }> {
  const [out, errText, code] = await Promise.all([new Response(p.stdout as ReadableStream).text(), new Response(p.stderr as ReadableStream).text(), p.exited]);
  return { code, output: out + errText };
}

beforeAll(async () => {
  if (!existsSync(FAKETIME_LIB)) throw new Error(`${FAKETIME_LIB} is missing: run scripts/setup.sh (Debian package faketime)`);
  rgw = await Rgw.start();
  await rgw.createBucket(BUCKET);
  s3 = rgw.client(BUCKET);
  proxy = FaultProxy.start(rgw);
  env = await makeStanza({ global: { ...rgw.repoOptions(1, BUCKET), "repo1-path": "/repo" } });
  env.cluster.pgbenchInit(1);
  await env.cluster.query("create table t_sum as select g, md5(g::text) as v from generate_series(1, 20000) g");
}, 240_000);

afterAll(async () => {
  for (const c of restored) await c.destroy();
  proxy?.stop();
  await removeStanza(env);
  await rgw?.stop();
});

describe("s3: the gateway killed and started again", () => {
  test("mid-backup: the backup fails naming bucket and key; after the restart verify passes and the resumed backup completes with the data", async () => {
    await env.cluster.query("vacuum analyze");
    await env.cluster.query("checkpoint");
    const p = spawnAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${STANZA}`, `--repo1-storage-port=${proxy.port}`, "--type=full", "--process-max=1", "--manifest-save-threshold=1", "--log-level-console=warn", "backup"], { output: "pipe" });
    const done = finished(p);
    const deadline = Date.now() + 120_000;
    for (let seen = await partialBackup(s3, `repo/backup/${STANZA}/`, new Set()); !(seen && storedByRun(seen.m) >= 5); seen = await partialBackup(s3, `repo/backup/${STANZA}/`, new Set())) {
      if (p.exitCode !== null || Date.now() > deadline) throw new Error(`the backup ended (exit ${p.exitCode}) before five files were stored:\n${(await done).output}`);
      await Bun.sleep(50);
    }
    await rgw.killGateway();
    let r: { code: number; output: string };
    try {
      r = await done;
    } finally {
      await rgw.restartGateway();
    }
    // Every retry found the gateway gone: a clear error, not success.
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(new RegExp(`(PUT|GET|HEAD|POST) 'repo/backup/${STANZA}/\\d{8}-\\d{6}F/[^']+' in bucket '${BUCKET}'.*gave up after 5 attempts`));
    const killed = (await partialBackup(s3, `repo/backup/${STANZA}/`, new Set()))!;
    expect(storedByRun(killed.m)).toBeGreaterThan(4);
    expect(env.backupLabels()).not.toContain(killed.label);
    // The partial backup is not a backup: verify (both tools) finds the repository sound.
    expect(env.runOk(["--log-level-console=info", "verify"])).toContain("no problem found");
    expect(env.backrest(["verify"]).code).toBe(0);
    const sum = await env.cluster.tableChecksum("t_sum");
    const again = env.run(["--type=full", "--log-level-console=detail", "backup"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`resumable backup ${killed.label} of same type exists`);
    expect(again.stdout).toContain(`new backup label = ${killed.label}`);
    const dir = mkdirAsPostgres(join(env.base, "restored-after-kill"));
    env.runOk([`--pg1-path=${dir}`, `--set=${killed.label}`, "--type=immediate", "--target-action=promote", "restore"]);
    const c = await Cluster.attach(dir);
    restored.push(c);
    c.writeConf({ archive_mode: "off" });
    await c.startAndWaitPromoted();
    expect(await c.tableChecksum("t_sum")).toBe(sum);
    expect(await c.scalar("select count(*) from pgbench_accounts")).toBe("100000");
  }, 300_000);

  test("mid-archive-push (its PUT half sent): the push retries once the gateway is back and stores the segment whole, once", async () => {
    const seg = segmentToPush();
    const heldBefore = proxy.served.held;
    const paused = proxy.pauseUploadAfter(4 * 1024 * 1024);
    const p = spawnAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${STANZA}`, `--repo1-storage-port=${proxy.port}`, "--compress-type=none", "--log-level-console=warn", "archive-push", seg.path], { output: "pipe" });
    const done = finished(p);
    await Promise.race([paused, done.then((r) => Promise.reject(new Error(`archive-push ended (exit ${r.code}) before its PUT was half sent:\n${r.output}`)))]);
    // New connections wait at the proxy until the gateway is back; the half-sent PUT dies with it.
    proxy.hold();
    await rgw.killGateway();
    await rgw.restartGateway();
    proxy.release();
    const r = await done;
    expect(r.code).toBe(0);
    // The PUT was sent again on a new connection, held until the gateway was back (the retry may be
    // Bun's own: a request on a reused keep-alive connection that closes unanswered is sent again).
    expect(proxy.served.held).toBeGreaterThan(heldBefore);
    const stored = (await keys(`repo/archive/${STANZA}/15-1/0000000900000000/`)).filter((k) => k.includes(`/${seg.name}-`));
    expect(stored).toEqual([`repo/archive/${STANZA}/15-1/0000000900000000/${seg.name}-${sha1File(seg.path)}`]);
    // 16 MiB, past the 5 MiB chunk, and still one PUT: a single PUT's ETag has no "-parts" suffix.
    const head = await s3.request({ method: "HEAD", key: stored[0]! });
    expect(Number(head.headers.get("content-length"))).toBe(16 * 1024 * 1024);
    expect(head.headers.get("etag")).toMatch(/^"[0-9a-f]{32}"$/);
    const got = join(env.base, "got-after-kill");
    env.runOk(["archive-get", seg.name, got]);
    expect(sha1File(got)).toBe(sha1File(seg.path));
  }, 180_000);
});

describe("s3: bad settings fail at once, naming bucket, key and status, and write nothing", () => {
  /**
   * Run archive-push (a write) and backup with a fault: both fail on the first request, the same
   * way, and the bucket is as it was. archive-push reports every repository it could not use under
   * RepoInvalidError (103), as pgBackRest's does; backup exits with the error's own code.
   */
  async function refused(fault: { args?: string[]; env?: Record<string, string> }, expected: { code: number; message: RegExp; hint: string }): Promise<void> {
    const before = await keys();
    const seg = segmentToPush();
    for (const [args, code] of [[["archive-push", seg.path], 103], [["--type=full", "backup"], expected.code]] as const) {
      const r = bunker([...(fault.args ?? []), "--log-level-console=warn", ...args], fault.env);
      const output = r.stdout + r.stderr;
      expect({ command: args.at(-1), code: r.code, output }).toEqual({ command: args.at(-1), code, output: expect.stringMatching(expected.message) });
      expect(output).toContain(expected.hint);
    }
    expect(await keys()).toEqual(before);
  }

  test("wrong access key: HTTP 403 InvalidAccessKeyId", async () => {
    await refused({ env: { PGBUNKER_REPO1_S3_KEY: "NOSUCHKEY0000" } }, { code: 105, message: new RegExp(`GET 'repo/[^']+' in bucket '${BUCKET}' failed: HTTP 403 \\(InvalidAccessKeyId`), hint: "check repo1-s3-key, repo1-s3-key-secret" });
  }, 60_000);

  test("wrong secret: HTTP 403 SignatureDoesNotMatch", async () => {
    await refused({ env: { PGBUNKER_REPO1_S3_KEY_SECRET: "not-the-secret" } }, { code: 105, message: new RegExp(`GET 'repo/[^']+' in bucket '${BUCKET}' failed: HTTP 403 \\(SignatureDoesNotMatch`), hint: "check repo1-s3-key, repo1-s3-key-secret" });
  }, 60_000);

  test("missing bucket: HTTP 404 NoSuchBucket", async () => {
    await refused({ args: ["--repo1-s3-bucket=pgbunker-no-such-bucket"] }, { code: 73, message: /GET 'repo\/[^']+' in bucket 'pgbunker-no-such-bucket' failed: HTTP 404 \(NoSuchBucket/, hint: "create bucket 'pgbunker-no-such-bucket' or correct repo1-s3-bucket" });
  }, 60_000);

  test("verify-tls=y with a CA that did not sign the endpoint: TLS verification failed", async () => {
    const other = join(env.base, "other-ca.pem");
    const r = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=some other CA", "-keyout", join(env.base, "other-ca.key"), "-out", other], { stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(0);
    await refused({ args: ["--repo1-storage-verify-tls=y", `--repo1-storage-ca-file=${other}`] }, { code: 49, message: new RegExp(`GET 'repo/[^']+' in bucket '${BUCKET}' at https://127\\.0\\.0\\.1:${rgw.httpsPort}: TLS verification failed`), hint: "set repo1-storage-ca-file to the CA that signed the endpoint's certificate" });
  }, 60_000);

  test("a clock 1 h ahead (libfaketime): HTTP 403 RequestTimeTooSkewed, with a hint about the clock", async () => {
    await refused(
      { env: { LD_PRELOAD: FAKETIME_LIB, FAKETIME: "+1h", FAKETIME_DONT_FAKE_MONOTONIC: "1" } },
      { code: 105, message: new RegExp(`GET 'repo/[^']+' in bucket '${BUCKET}' failed: HTTP 403 \\(RequestTimeTooSkewed`), hint: "this host's clock differs from the S3 endpoint's" },
    );
  }, 60_000);
});

describe("s3: options", () => {
  test("repo1-hardlink=y is refused on S3 before anything is written", async () => {
    const before = await keys();
    const r = bunker(["--repo1-hardlink=y", "--type=full", "backup"]);
    expect(r.code).toBe(31);
    expect(r.stdout + r.stderr).toContain("option 'repo1-hardlink' cannot be used with repo1-type=s3: an object store has no hard links");
    expect(r.stdout + r.stderr).toContain("set repo1-hardlink=n");
    expect(await keys()).toEqual(before);
  }, 60_000);

  test("the key and secret never appear in the log at trace level, info, help or the command-begin line", async () => {
    const logDir = mkdirAsPostgres(join(env.base, "log-trace"));
    const seg = segmentToPush();
    const outputs: string[] = [];
    for (const args of [["archive-push", seg.path], ["--type=incr", "backup"], ["info"], ["--output=json", "info"]]) {
      const r = bunker([`--log-path=${logDir}`, "--log-level-file=trace", "--log-level-console=detail", ...args]);
      expect({ args, code: r.code, output: r.code ? r.stdout + r.stderr : "" }).toEqual({ args, code: 0, output: "" });
      outputs.push(r.stdout, r.stderr);
    }
    for (const args of [["help", "backup", "repo-s3-key-secret"], ["help", "backup", "repo-s3-key"], ["help", "backup"]]) outputs.push(bunker(args).stdout);
    const logs = readdirSync(logDir).map((f) => readFileSync(join(logDir, f), "utf8"));
    // The run really logged at trace level, with its command-begin line and the S3 requests.
    expect(logs.join("\n")).toContain("backup command begin");
    expect(logs.join("\n")).toContain("--repo1-s3-key-secret=<redacted>");
    for (const text of [...outputs, ...logs]) {
      expect(text).not.toContain(rgw.secretKey);
      expect(text).not.toContain(rgw.accessKey);
    }
  }, 180_000);
});
