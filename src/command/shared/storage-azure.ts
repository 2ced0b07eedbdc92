/**
 * repoN-type=azure: the repoN-azure-* and repoN-storage-* options → the Azure driver's settings,
 * checked once with errors that name the option to set (key-type auto is refused by the table).
 */
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
  const account = r.need("azure-account");
  const container = r.need("azure-container");
  const key = r.need("azure-key");
  return {
    settings: {
      ...r.common,
      account,
      container,
      key,
      keyType: r.str("azure-key-type") === "sas" ? "sas" : "shared",
      endpoint: r.str("azure-endpoint") ?? "blob.core.windows.net",
      uriStyle: r.str("azure-uri-style") === "path" ? "path" : "host",
    },
    chunkSize: r.chunkSize,
  };
}
