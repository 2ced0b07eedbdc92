/**
 * repoN-type=s3: the repoN-s3-* and repoN-storage-* options → the S3 driver's settings. Checked
 * here, once, with errors that name the option to set; storage.ts opens the driver from them.
 */
import { err } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";
import type { S3Settings } from "../../storage/s3/client.ts";
import { repoOptions } from "./storage-object.ts";

/** Everything a worker needs to open the same bucket (in-process only: it holds the secret key). */
export interface S3Spec {
  settings: S3Settings;
  chunkSize?: number;
}

export function s3Spec(cfg: Config, index: number): S3Spec {
  const r = repoOptions(cfg, index, "s3");
  const keyType = r.str("s3-key-type") ?? "shared";
  if (keyType !== "shared")
    throw err(
      "FeatureNotSupportedError",
      `${r.name("s3-key-type")}=${keyType} is not supported by pgbunker yet: it fetches temporary credentials from the cloud's ${keyType === "auto" ? "instance metadata service" : "web identity token (STS AssumeRoleWithWebIdentity)"}`,
      `use ${r.name("s3-key-type")}=shared with ${r.name("s3-key")} and ${r.name("s3-key-secret")} (and ${r.name("s3-token")} for temporary credentials).`,
    );
  const bucket = r.need("s3-bucket");
  const endpoint = r.need("s3-endpoint");
  const region = r.need("s3-region");
  const accessKeyId = r.need("s3-key");
  const secretAccessKey = r.need("s3-key-secret");
  return {
    settings: {
      ...r.common,
      bucket,
      endpoint,
      region,
      uriStyle: r.str("s3-uri-style") === "path" ? "path" : "host",
      credentials: { accessKeyId, secretAccessKey, sessionToken: r.str("s3-token") },
      kmsKeyId: r.str("s3-kms-key-id"),
    },
    chunkSize: r.chunkSize,
  };
}
