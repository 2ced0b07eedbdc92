/**
 * The job retry schedule a command's options ask for (job-retry, job-retry-interval), as the
 * worker pool takes it: see worker/retry.ts for what is retried and when.
 */
import type { Config } from "../../config/parse.ts";
import { retryIntervals } from "../../worker/retry.ts";

export function jobRetry(cfg: Config): number[] {
  return retryIntervals(cfg.get("job-retry"), cfg.get("job-retry-interval"));
}
