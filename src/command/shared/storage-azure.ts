/**
 * repoN-type=azure: the repoN-azure-* and repoN-storage-* options → the Azure driver's settings,
 * checked once with errors that name the option to set.
 */
import { err } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";
import type { AzureSettings } from "../../storage/azure/client.ts";
import { repoOptions } from "./storage-object.ts";

/** Everything a worker needs to open the same container (in-process only: it holds the key). */
export interface AzureSpec {
  settings: AzureSettings;
  chunkSize?: number;
}

export function azureSpec(cfg: Config, index: number): AzureSpec {
  const r = repoOptions(cfg, index, "azure");
  const keyType = r.str("azure-key-type") ?? "shared";
  // Managed identities need Azure's instance metadata service, which pgbunker does not call yet.
  if (keyType === "auto")
    throw err(
      "FeatureNotSupportedError",
      `${r.name("azure-key-type")}=auto is not supported by pgbunker yet: it fetches managed-identity tokens from Azure's instance metadata service`,
      `use ${r.name("azure-key-type")}=shared with the account key, or sas with a shared access signature, in ${r.name("azure-key")}.`,
    );
  const account = r.need("azure-account");
  const container = r.need("azure-container");
  const key = r.need("azure-key");
  return {
    settings: {
      ...r.common,
      account,
      container,
      key,
      keyType: keyType === "sas" ? "sas" : "shared",
      endpoint: r.str("azure-endpoint") ?? "blob.core.windows.net",
      uriStyle: r.str("azure-uri-style") === "path" ? "path" : "host",
    },
    chunkSize: r.chunkSize,
  };
}
