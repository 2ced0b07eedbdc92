/**
 * repoN-s3-* / repoN-storage-* options → the S3 driver's settings: pgBackRest's names (and its
 * deprecated ones) are read, secrets stay off the command line, and what cannot work here (the
 * auto and web-id key types, a missing required option) is refused with the option to fix.
 */
import { expect, test } from "bun:test";
import { s3Spec } from "../../../src/command/shared/storage-s3.ts";
import { parseConfigText } from "../../../src/config/ini-config.ts";
import { parseConfig } from "../../../src/config/parse.ts";
import { failure } from "../../harness/failure.ts";

const BASE = ["[global]", "repo2-type=s3", "repo2-s3-bucket=bkt", "repo2-s3-endpoint=s3.eu-west-3.amazonaws.com", "repo2-s3-region=eu-west-3", "repo2-s3-key=AK", "repo2-s3-key-secret=SK", "repo2-path=/pg"];

function cfgOf(lines: string[], argv: string[] = []) {
  return parseConfig({ argv: ["--stanza=demo", ...argv, "info"], env: {}, configSections: parseConfigText(lines.join("\n"), "test.conf") });
}

test("defaults: host style on 443, TLS verified, shared keys, 5MiB chunks left to the driver", () => {
  const spec = s3Spec(cfgOf(BASE), 2);
  expect(spec.settings).toMatchObject({
    bucket: "bkt", endpoint: "s3.eu-west-3.amazonaws.com", region: "eu-west-3", port: 443, uriStyle: "host", verifyTls: true,
    credentials: { accessKeyId: "AK", secretAccessKey: "SK" }, label: "repo2",
  });
  expect(spec.settings.connectHost).toBeUndefined();
  expect(spec.chunkSize).toBeUndefined();
});

test("every option, and pgBackRest's deprecated names (repo-s3-host, -port, -verify-ssl, -ca-file)", () => {
  const spec = s3Spec(cfgOf([...BASE, "repo2-s3-token=TOK", "repo2-s3-uri-style=path", "repo2-s3-kms-key-id=arn:k", "repo2-s3-host=10.0.0.5", "repo2-s3-port=9000", "repo2-s3-verify-ssl=n", "repo2-s3-ca-file=/etc/ca.pem", "repo2-storage-ca-path=/etc/cas", "repo2-storage-upload-chunk-size=16MiB", "io-timeout=7"]), 2);
  expect(spec.settings).toMatchObject({
    connectHost: "10.0.0.5", port: 9000, uriStyle: "path", verifyTls: false, caFile: "/etc/ca.pem", caPath: "/etc/cas", kmsKeyId: "arn:k", ioTimeoutMs: 7000,
    credentials: { accessKeyId: "AK", secretAccessKey: "SK", sessionToken: "TOK" },
  });
  expect(spec.chunkSize).toBe(16 * 1024 * 1024);
});

test("secrets are refused on the command line", async () => {
  for (const opt of ["--repo2-s3-key-secret=x", "--repo2-s3-key=x", "--repo2-s3-token=x"]) {
    const e = await failure(Promise.resolve().then(() => cfgOf(BASE, [opt])));
    expect(e.kind).toBe("OptionInvalidError");
  }
});

test("auto and web-id key types need cloud metadata: refused, naming the way out", async () => {
  for (const type of ["auto", "web-id"]) {
    const e = await failure(Promise.resolve().then(() => s3Spec(cfgOf([...BASE, `repo2-s3-key-type=${type}`]), 2)));
    expect(e.kind).toBe("FeatureNotSupportedError");
    expect(e.message).toContain(`repo2-s3-key-type=${type} is not supported`);
    expect(e.hints.join(" ")).toContain("repo2-s3-key-type=shared");
  }
});

test("a missing required option names itself", async () => {
  const e = await failure(Promise.resolve().then(() => s3Spec(cfgOf(BASE.filter((l) => !l.startsWith("repo2-s3-region"))), 2)));
  expect(e.kind).toBe("OptionRequiredError");
  expect(e.message).toContain("repo2-s3-region");
});
