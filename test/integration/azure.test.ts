/**
 * Azure repositories end to end on a real engine (Azurite over TLS, verified with the harness's
 * CA, path-style URIs): the object-repository suite (object-repo-lib.ts: every command, restores
 * compared by data, pgBackRest 2.45 and 2.59.1 restoring pgbunker's backups and the other way
 * round with one config file), then bad Azure settings: wrong key, missing container, key-type auto.
 */
import { describe, expect, test } from "bun:test";
import { AzureDriver } from "../../src/storage/azure/driver.ts";
import { Azurite } from "../harness/azurite.ts";
import { runAsPostgres } from "../harness/cluster.ts";
import { BINARY } from "../harness/pgbunker.ts";
import { keysOf, objectRepoSuite, textOf } from "./object-repo-lib.ts";
import { STANZA } from "./restore-lib.ts";

let az: Azurite;
const suite = objectRepoSuite("azure", "pgbunker-azure-repos", async () => {
  az = await Azurite.start();
  return {
    repoOptions: (i, container) => az.repoOptions(i, container),
    createPlace: (container) => az.createContainer(container),
    list: (container, prefix) => keysOf(new AzureDriver(az.client(container)), prefix),
    get: (container, name) => textOf(new AzureDriver(az.client(container)), name),
    proxyTarget: az,
    viaProxy: (port) => [`--repo1-storage-port=${port}`],
    stop: () => az.stop(),
  };
});

describe("azure settings", () => {
  test("bad Azure settings fail at once with a clear error: wrong key, missing container, key-type auto; the key is never logged", () => {
    const { env, place } = suite;
    const run = (args: string[], envVars: Record<string, string> = {}) => runAsPostgres([BINARY, `--config=${env.conf}`, `--stanza=${STANZA}`, "--repo=1", ...args], { env: envVars });
    const wrong = run(["verify"], { PGBUNKER_REPO1_AZURE_KEY: Buffer.from("wrong").toString("base64") });
    expect(wrong.code).toBe(105);
    expect(wrong.stderr).toContain(`in container '${place}' failed: HTTP 403`);
    const missing = run(["info"], { PGBUNKER_REPO1_AZURE_CONTAINER: "no-such-container" });
    expect(`${missing.stdout}${missing.stderr}`).toContain("of container 'no-such-container' failed: HTTP 404 (ContainerNotFound");
    const auto = run(["--repo1-azure-key-type=auto", "verify"]);
    expect(auto.code).toBe(67);
    expect(`${auto.stdout}${auto.stderr}`).toContain("repo1-azure-key-type=auto");
    const debug = run(["--log-level-console=debug", "info"]);
    expect(debug.code).toBe(0);
    expect(`${debug.stdout}${debug.stderr}`).not.toContain(az.key);
  }, 60_000);
});
