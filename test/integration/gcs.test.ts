/**
 * GCS repositories end to end against the harness's GCS JSON-API server (gcs-server.ts, in a
 * process of its own; no real GCS engine is available here, so this is the only GCS tested): the
 * object-repository suite (object-repo-lib.ts: every command, restores compared by data,
 * pgBackRest 2.45 and 2.59.1 restoring pgbunker's backups and the other way round with one config
 * file, service key → JWT → token for both tools), then bad GCS settings.
 */
import { describe, expect, test } from "bun:test";
import { GcsDriver } from "../../src/storage/gcs/driver.ts";
import { runAsPostgres } from "../harness/cluster.ts";
import { gcsRepoOptions, GcsServerProcess } from "../harness/gcs-server.ts";
import { BINARY } from "../harness/pgbunker.ts";
import { keysOf, objectRepoSuite, textOf } from "./object-repo-lib.ts";
import { STANZA } from "./restore-lib.ts";

let gcs: GcsServerProcess;
const suite = objectRepoSuite("gcs", "pgbunker-gcs-repos", async () => {
  gcs = await GcsServerProcess.start();
  return {
    repoOptions: (i, bucket) => gcsRepoOptions(gcs, i, bucket),
    createPlace: (bucket) => gcs.createBucket(bucket),
    list: (bucket, prefix) => keysOf(new GcsDriver(gcs.client(bucket)), prefix),
    get: (bucket, name) => textOf(new GcsDriver(gcs.client(bucket)), name),
    proxyTarget: gcs,
    viaProxy: (port) => [`--repo1-gcs-endpoint=${gcs.host}:${port}`],
    stop: () => gcs.stop(),
  };
});

describe("gcs settings", () => {
  test("bad GCS settings fail at once with a clear error: wrong token, missing bucket, missing key file, chunk size", () => {
    const { env, place } = suite;
    const run = (args: string[], envVars: Record<string, string> = {}) => runAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${STANZA}`, "--repo=1", ...args], { env: envVars });
    const token = run(["--repo1-gcs-key-type=token", "verify"], { PGBUNKER_REPO1_GCS_KEY: "not-a-token" });
    expect(token.code).toBe(105);
    expect(token.stderr).toContain(`in bucket '${place}' failed: HTTP 401 (Invalid Credentials)`);
    expect(token.stderr).not.toContain("not-a-token");
    const missing = run(["info"], { PGBUNKER_REPO1_GCS_BUCKET: "no-such-bucket" });
    expect(`${missing.stdout}${missing.stderr}`).toContain("of bucket 'no-such-bucket' failed: HTTP 404 (The specified bucket does not exist.)");
    const noKey = run(["info"], { PGBUNKER_REPO1_GCS_KEY: "/nonexistent/key.json" });
    expect(`${noKey.stdout}${noKey.stderr}`).toContain("unable to read the GCS service key file");
    const chunk = run(["--repo1-storage-upload-chunk-size=4100KiB", "verify"]);
    expect(chunk.code).toBe(32);
    expect(`${chunk.stdout}${chunk.stderr}`).toContain("not a multiple of 256KiB");
  }, 60_000);
});
