/**
 * repoN-type=s3: the repoN-s3-* and repoN-storage-* options → the S3 driver's settings. Checked
 * here, once, with errors that name the option to set; storage.ts opens the driver from them.
 */
import { err } from "../../common/error.ts";
import type { RepoOptionName } from "../../config/options.ts";
import type { Config } from "../../config/parse.ts";
import type { S3Settings } from "../../storage/s3/client.ts";

/** Everything a worker needs to open the same bucket (in-process only: it holds the secret key). */
export interface S3Spec {
  settings: S3Settings;
  chunkSize?: number;
}

/** `s3-bucket` for repoN-s3-bucket: the names of the repoN- options without their prefix. */
type Suffix<N> = N extends `repo-${infer R}` ? R : never;
type RepoOptionSuffix = Suffix<RepoOptionName>;

export function s3Spec(cfg: Config, index: number): S3Spec {
  const o = (name: RepoOptionSuffix) => `repo${index}-${name}` as const;
  const need = (name: RepoOptionSuffix): string => {
    const v = cfg.str(o(name));
    if (v === undefined || v === "") throw err("OptionRequiredError", `${cfg.command} command requires option: ${o(name)}`, `repo${index}-type=s3 needs ${o(name)} (set it in the configuration file).`);
    return v;
  };
  const keyType = cfg.str(o("s3-key-type")) ?? "shared";
  if (keyType !== "shared")
    throw err(
      "FeatureNotSupportedError",
      `${o("s3-key-type")}=${keyType} is not supported by pgbunker yet: it fetches temporary credentials from the cloud's ${keyType === "auto" ? "instance metadata service" : "web identity token (STS AssumeRoleWithWebIdentity)"}`,
      `use ${o("s3-key-type")}=shared with ${o("s3-key")} and ${o("s3-key-secret")} (and ${o("s3-token")} for temporary credentials).`,
    );
  const bucket = need("s3-bucket");
  const endpoint = need("s3-endpoint");
  const region = need("s3-region");
  const accessKeyId = need("s3-key");
  const secretAccessKey = need("s3-key-secret");
  const ioTimeout = cfg.num("io-timeout");
  return {
    settings: {
      bucket,
      endpoint,
      region,
      connectHost: cfg.str(o("storage-host")),
      port: cfg.num(o("storage-port")) ?? 443,
      uriStyle: cfg.str(o("s3-uri-style")) === "path" ? "path" : "host",
      credentials: { accessKeyId, secretAccessKey, sessionToken: cfg.str(o("s3-token")) },
      verifyTls: cfg.str(o("storage-verify-tls")) === undefined ? true : cfg.bool(o("storage-verify-tls")),
      caFile: cfg.str(o("storage-ca-file")),
      caPath: cfg.str(o("storage-ca-path")),
      kmsKeyId: cfg.str(o("s3-kms-key-id")),
      ioTimeoutMs: ioTimeout === undefined ? undefined : ioTimeout * 1000,
      label: `repo${index}`,
    },
    chunkSize: cfg.num(o("storage-upload-chunk-size")),
  };
}
