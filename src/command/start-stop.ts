/** start and stop (not yet implemented). */
import { err } from "../common/error.ts";
import type { Config } from "../config/parse.ts";

const notYet = async (cfg: Config): Promise<number> => {
  throw err("FeatureNotSupportedError", `command '${cfg.command}' is not implemented yet`);
};
export const runStart = notYet;
export const runStop = notYet;
