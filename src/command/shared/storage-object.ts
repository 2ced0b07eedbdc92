/**
 * What every object-store repository reads the same way (repoN-storage-*, io-timeout) and the
 * one way a required repoN- option is demanded, for storage-s3.ts, storage-azure.ts and
 * storage-gcs.ts.
 */
import { err } from "../../common/error.ts";
import type { RepoOptionName } from "../../config/options.ts";
import type { Config } from "../../config/parse.ts";

/** `s3-bucket` for repoN-s3-bucket: the names of the repoN- options without their prefix. */
type Suffix<N> = N extends `repo-${infer R}` ? R : never;
export type RepoOptionSuffix = Suffix<RepoOptionName>;

export interface RepoOptions {
  /** repoN-name for a suffix. */
  name(suffix: RepoOptionSuffix): `repo${number}-${RepoOptionSuffix}`;
  /** A string option's value, or undefined. */
  str(suffix: RepoOptionSuffix): string | undefined;
  /** A required string option: missing or empty is an OptionRequiredError naming it. */
  need(suffix: RepoOptionSuffix): string;
  /** The settings every HTTP driver takes from repoN-storage-* and io-timeout. */
  common: { connectHost?: string; port: number; verifyTls: boolean; caFile?: string; caPath?: string; ioTimeoutMs?: number; label: string };
  chunkSize?: number;
}

export function repoOptions(cfg: Config, index: number, type: string): RepoOptions {
  const name = (suffix: RepoOptionSuffix) => `repo${index}-${suffix}` as const;
  const str = (suffix: RepoOptionSuffix) => cfg.str(name(suffix));
  const need = (suffix: RepoOptionSuffix): string => {
    const v = str(suffix);
    if (v === undefined || v === "") throw err("OptionRequiredError", `${cfg.command} command requires option: ${name(suffix)}`, `repo${index}-type=${type} needs ${name(suffix)} (set it in the configuration file).`);
    return v;
  };
  const ioTimeout = cfg.num("io-timeout");
  return {
    name,
    str,
    need,
    common: {
      connectHost: str("storage-host"),
      port: cfg.num(name("storage-port")) ?? 443,
      verifyTls: str("storage-verify-tls") === undefined ? true : cfg.bool(name("storage-verify-tls")),
      caFile: str("storage-ca-file"),
      caPath: str("storage-ca-path"),
      ioTimeoutMs: ioTimeout === undefined ? undefined : ioTimeout * 1000,
      label: `repo${index}`,
    },
    chunkSize: cfg.num(name("storage-upload-chunk-size")),
  };
}
