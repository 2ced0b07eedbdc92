import { PgbError } from "../../src/common/error.ts";
/** The error a promise rejects with (fails the test when it resolves): for asserting kind, code, message and hints. */
export async function failure(p: Promise<unknown>): Promise<{ kind: string; code: number; message: string; hints: string[] }> {
  try {
    await p;
  } catch (e) {
    return e as { kind: string; code: number; message: string; hints: string[] };
  }
  throw new Error("expected a failure");
}

/** The PgbError a function throws (fails the test when it returns or throws something else). */
export function thrown(fn: () => unknown): PgbError {
  try {
    fn();
  } catch (e) {
    if (e instanceof PgbError) return e;
    throw e;
  }
  throw new Error("expected an error");
}
