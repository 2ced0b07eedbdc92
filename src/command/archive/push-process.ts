/** The background half of asynchronous archive-push: not implemented yet. */
import { err } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";

export async function runPushProcess(_cfg: Config): Promise<number> {
  throw err("FeatureNotSupportedError", "archive-async=y is not implemented yet", "set archive-async=n.");
}
