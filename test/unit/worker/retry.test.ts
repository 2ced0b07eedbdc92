/** job-retry's schedule and which failures it applies to (the pool's retries run in test/integration/job-retry). */
import { expect, test } from "bun:test";
import { err, PgbError } from "../../../src/common/error.ts";
import { parseConfig } from "../../../src/config/parse.ts";
import { jobRetry } from "../../../src/command/shared/job-retry.ts";
import { isTransient, retriedError, retryIntervals } from "../../../src/worker/retry.ts";

test("pgBackRest's schedule: job-retry entries, the first immediate, the others after job-retry-interval", () => {
  expect(retryIntervals(0, 15)).toEqual([]);
  expect(retryIntervals(1, 15)).toEqual([0]);
  expect(retryIntervals(3, 2.5)).toEqual([0, 2500, 2500]);
  const cfg = (args: string[]) => parseConfig({ argv: ["--stanza=s", "--pg1-path=/p", ...args, "backup"], configSections: new Map() });
  expect(jobRetry(cfg([]))).toEqual([0, 15000]);
  expect(jobRetry(cfg(["--job-retry=3", "--job-retry-interval=1"]))).toEqual([0, 1000, 1000]);
  expect(jobRetry(cfg(["--job-retry=0"]))).toEqual([]);
});

test("only failures of the remote connection are retried; the final error says how often it was tried", () => {
  const lost = err("ProtocolError", "connection to the pgbunker remote on database host 'db' was lost", "check the network");
  expect(isTransient(lost)).toBe(true);
  expect(isTransient(err("ProtocolTimeoutError", "timed out"))).toBe(true);
  expect(isTransient(err("HostConnectError", "unable to connect"))).toBe(true);
  expect(isTransient(err("ChecksumError", "bad"))).toBe(false);
  expect(isTransient(err("FileMissingError", "gone"))).toBe(false);
  expect(isTransient(new Error("plain"))).toBe(false);

  const after = retriedError(lost, 2, 2) as PgbError;
  expect([after.kind, after.code, after.message]).toEqual(["ProtocolError", 39, lost.message]);
  expect(after.hints).toEqual(["check the network", "the job was tried 3 times (job-retry=2): the remote host or the network keeps failing."]);
  expect((retriedError(lost, 0, 0) as PgbError).hints[1]).toStartWith("job-retry=0: set job-retry");
  const data = err("ChecksumError", "bad");
  expect(retriedError(data, 0, 0)).toBe(data);
});
