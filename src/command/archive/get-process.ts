/** The background half of asynchronous archive-get: not implemented yet. */
import { err } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";

export async function runGetProcess(_cfg: Config): Promise<number> {
  throw err("FeatureNotSupportedError", "archive-async=y is not implemented yet", "set archive-async=n.");
}
