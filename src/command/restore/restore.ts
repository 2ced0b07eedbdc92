/** The 'restore' command (not yet implemented). */
import { err } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";

export async function run(cfg: Config): Promise<number> {
  throw err("FeatureNotSupportedError", `command '${cfg.command}' is not implemented yet`);
}
