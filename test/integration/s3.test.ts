/**
 * S3 repositories end to end, on a real engine (Ceph RGW over TLS, verified with the harness's
 * CA): the object-repository suite (object-repo-lib.ts: every command, restores compared by data,
 * pgBackRest 2.45 and 2.59.1 restoring pgbunker's backups and the other way round with one config
 * file, a killed backup resumed, stanza-delete), then what is S3's own here: a repository host
 * whose repository is in S3 (the database host pushes, and restores, over SSH), bad S3 settings.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { S3Driver } from "../../src/storage/s3/driver.ts";
import { Cluster, mkdirAsPostgres, runAsPostgres } from "../harness/cluster.ts";
import { BINARY } from "../harness/pgbunker.ts";
import { RemoteEnv } from "../harness/remote-env.ts";
import { Rgw } from "../harness/rgw.ts";
import { keysOf, labelOf, objectRepoSuite, textOf } from "./object-repo-lib.ts";
import { STANZA } from "./restore-lib.ts";

let rgw: Rgw;
const suite = objectRepoSuite("s3", "pgbunker-s3-repos", async () => {
  rgw = await Rgw.start();
  return {
    repoOptions: (i, bucket) => rgw.repoOptions(i, bucket),
    createPlace: (bucket) => rgw.createBucket(bucket),
    list: (bucket, prefix) => keysOf(new S3Driver(rgw.client(bucket)), prefix),
    get: (bucket, name) => textOf(new S3Driver(rgw.client(bucket)), name),
    proxyTarget: rgw,
    viaProxy: (port) => [`--repo1-storage-port=${port}`],
    stop: () => rgw.stop(),
  };
});

describe("s3 only", () => {
  test("repository host with an S3 repository: archive-push and restore from the database host go through its remote", async () => {
    const keys = (prefix: string) => keysOf(new S3Driver(rgw.client(suite.place)), prefix);
    const remote = await RemoteEnv.create({ backupGlobal: { ...rgw.repoOptions(1, suite.place), "repo1-path": "/via-host", "compress-type": "lz4", "start-fast": true, "repo1-retention-full": 9 } });
    let c: Cluster | undefined;
    try {
      remote.backupHostOk(["stanza-create"]);
      await remote.cluster.query("create table t as select g from generate_series(1, 20000) g");
      const seg = await remote.switchAndWait();
      expect((await keys(`via-host/archive/${remote.stanza}/`)).some((k) => k.includes(`/${seg}-`))).toBe(true);
      const label = labelOf(remote.backupHostOk(["--type=full", "backup"]));
      const sum = await remote.cluster.tableChecksum("t");
      const target = mkdirAsPostgres(join(remote.dbDir, "restored"));
      remote.dbHostOk([`--pg1-path=${target}`, `--set=${label}`, "--type=immediate", "--target-action=promote", "restore"]);
      c = await Cluster.attach(target);
      c.writeConf({ archive_mode: "off" });
      await c.startAndWaitPromoted();
      expect(await c.tableChecksum("t")).toBe(sum);
    } finally {
      await c?.destroy();
      await remote.destroy();
    }
  }, 300_000);

  test("bad S3 settings fail at once with a clear error", () => {
    const { env, place } = suite;
    const wrong = runAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${STANZA}`, "--repo=1", "--log-level-console=warn", "verify"], { env: { PGBUNKER_REPO1_S3_KEY_SECRET: "not-the-secret" } });
    expect(wrong.code).toBe(105);
    expect(wrong.stderr).toContain(`in bucket '${place}' failed: HTTP 403`);
    const auto = runAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${STANZA}`, "--repo=1", "--repo1-s3-key-type=auto", "verify"]);
    expect(auto.code).toBe(67);
    expect(`${auto.stdout}${auto.stderr}`).toContain("repo1-s3-key-type=auto is not supported");
  });
});
