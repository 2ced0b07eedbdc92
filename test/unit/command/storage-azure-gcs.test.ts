/**
 * repoN-azure-* / repoN-gcs-* / repoN-storage-* options → the drivers' settings: pgBackRest's
 * names and defaults, secrets kept off the command line, what cannot work refused with the option.
 */
import { expect, test } from "bun:test";
import { azureSpec } from "../../../src/command/shared/storage-azure.ts";
import { gcsSpec } from "../../../src/command/shared/storage-gcs.ts";
import { parseConfigText } from "../../../src/config/ini-config.ts";
import { parseConfig } from "../../../src/config/parse.ts";
import { failure } from "../../harness/failure.ts";

const AZ = ["[global]", "repo1-type=azure", "repo1-azure-account=acct", "repo1-azure-container=cont", "repo1-azure-key=a2V5", "repo1-path=/pg"];
const GCS = ["[global]", "repo2-type=gcs", "repo2-gcs-bucket=bkt", "repo2-gcs-key=/etc/key.json", "repo2-path=/pg"];

const cfgOf = (lines: string[], argv: string[] = []) => parseConfig({ argv: ["--stanza=demo", ...argv, "info"], env: {}, configSections: parseConfigText(lines.join("\n"), "test.conf") });

test("azure defaults: host style at blob.core.windows.net:443, shared key, TLS verified", () => {
  expect(azureSpec(cfgOf(AZ), 1).settings).toMatchObject({ account: "acct", container: "cont", key: "a2V5", keyType: "shared", endpoint: "blob.core.windows.net", uriStyle: "host", port: 443, verifyTls: true, label: "repo1" });
});

test("azure: every option, and pgBackRest's deprecated repo-azure-host/-port/-verify-tls/-ca-file", () => {
  const s = azureSpec(cfgOf([...AZ, "repo1-azure-key-type=sas", "repo1-azure-endpoint=127.0.0.1", "repo1-azure-uri-style=path", "repo1-azure-host=10.0.0.5", "repo1-azure-port=10000", "repo1-azure-verify-tls=n", "repo1-azure-ca-file=/ca.pem", "repo1-storage-upload-chunk-size=8MiB"]), 1);
  expect(s.settings).toMatchObject({ keyType: "sas", endpoint: "127.0.0.1", uriStyle: "path", connectHost: "10.0.0.5", port: 10000, verifyTls: false, caFile: "/ca.pem" });
  expect(s.chunkSize).toBe(8 * 1024 * 1024);
});

test("azure: the account and key are secure (refused on the command line); a missing container is named; key-type auto is refused", async () => {
  for (const opt of ["--repo1-azure-key=x", "--repo1-azure-account=x"]) expect((await failure(Promise.resolve().then(() => cfgOf(AZ, [opt])))).kind).toBe("OptionInvalidError");
  const e = await failure(Promise.resolve().then(() => azureSpec(cfgOf(AZ.filter((l) => !l.includes("container"))), 1)));
  expect(e.kind).toBe("OptionRequiredError");
  expect(e.message).toContain("repo1-azure-container");
  const auto = await failure(Promise.resolve().then(() => azureSpec(cfgOf([...AZ, "repo1-azure-key-type=auto"]), 1)));
  expect(auto.kind).toBe("FeatureNotSupportedError");
  expect(auto.message).toContain("repo1-azure-key-type=auto");
});

test("gcs defaults: storage.googleapis.com, service key; token and auto key types; chunk sizes in 256KiB steps", async () => {
  expect(gcsSpec(cfgOf(GCS), 2).settings).toMatchObject({ bucket: "bkt", endpoint: "storage.googleapis.com", keyType: "service", key: "/etc/key.json", verifyTls: true, label: "repo2" });
  expect(gcsSpec(cfgOf([...GCS, "repo2-gcs-key-type=token", "repo2-gcs-endpoint=127.0.0.1:4443", "repo2-gcs-user-project=proj"]), 2).settings).toMatchObject({ keyType: "token", endpoint: "127.0.0.1:4443", userProject: "proj" });
  expect(gcsSpec(cfgOf([...GCS.filter((l) => !l.includes("gcs-key=")), "repo2-gcs-key-type=auto"]), 2).settings.key).toBeUndefined();
  const noKey = await failure(Promise.resolve().then(() => gcsSpec(cfgOf(GCS.filter((l) => !l.includes("gcs-key="))), 2)));
  expect(noKey.message).toContain("repo2-gcs-key");
  const chunk = await failure(Promise.resolve().then(() => gcsSpec(cfgOf([...GCS, "repo2-storage-upload-chunk-size=4100KiB"]), 2)));
  expect(chunk.kind).toBe("OptionInvalidValueError");
  expect((await failure(Promise.resolve().then(() => cfgOf(GCS, ["--repo2-gcs-key=/k"])))).kind).toBe("OptionInvalidError");
});
