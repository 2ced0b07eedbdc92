/** Asynchronous archive-get (archive-async=y): not implemented yet. */
import { err } from "../../common/error.ts";
import type { Config } from "../../config/parse.ts";

export async function getAsync(_cfg: Config, _name: string, _dest: string): Promise<number> {
  throw err("FeatureNotSupportedError", "archive-async=y is not implemented yet", "set archive-async=n.");
}
