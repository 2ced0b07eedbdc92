/**
 * repoN-type=gcs: the repoN-gcs-* and repoN-storage-* options → the GCS driver's settings,
 * checked once with errors that name the option to set. As pgBackRest, the endpoint carries its
 * own port (host[:port]); repoN-storage-host/-port do not apply to GCS.
 */
import { err } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";
import type { GcsKeyType } from "../../storage/gcs/auth.ts";
import type { GcsSettings } from "../../storage/gcs/client.ts";
import { repoOptions } from "./storage-object.ts";

/** Everything a worker needs to open the same bucket (in-process only: it may hold a token). */
export interface GcsSpec {
  settings: GcsSettings;
  chunkSize?: number;
}

/** Resumable uploads take chunks in multiples of 256 KiB. */
const GCS_CHUNK_QUANTUM = 256 * 1024;

export function gcsSpec(cfg: Config, index: number): GcsSpec {
  const r = repoOptions(cfg, index, "gcs");
  const bucket = r.need("gcs-bucket");
  const keyType = (r.str("gcs-key-type") ?? "service") as GcsKeyType;
  const key = keyType === "auto" ? undefined : r.need("gcs-key");
  if (r.chunkSize !== undefined && r.chunkSize % GCS_CHUNK_QUANTUM !== 0)
    throw err("OptionInvalidValueError", `${r.name("storage-upload-chunk-size")}=${r.chunkSize} is not a multiple of 256KiB, as GCS resumable uploads require`, `set ${r.name("storage-upload-chunk-size")} to e.g. 4MiB (pgBackRest's default for GCS).`);
  const { verifyTls, caFile, caPath, ioTimeoutMs, label } = r.common;
  return {
    settings: { bucket, endpoint: r.str("gcs-endpoint") ?? "storage.googleapis.com", keyType, key, userProject: r.str("gcs-user-project"), verifyTls, caFile, caPath, ioTimeoutMs, label },
    chunkSize: r.chunkSize,
  };
}
