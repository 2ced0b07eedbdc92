/** The error a promise rejects with (fails the test when it resolves): for asserting kind, code, message and hints. */
export async function failure(p: Promise<unknown>): Promise<{ kind: string; code: number; message: string; hints: string[] }> {
  try {
    await p;
  } catch (e) {
    return e as { kind: string; code: number; message: string; hints: string[] };
  }
  throw new Error("expected a failure");
}
