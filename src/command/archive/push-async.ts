/** Asynchronous archive-push (archive-async=y): not implemented yet. */
import { err } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";

export async function pushAsync(_cfg: Config, _source: string, _name: string): Promise<number> {
  throw err("FeatureNotSupportedError", "archive-async=y is not implemented yet", "set archive-async=n.");
}
