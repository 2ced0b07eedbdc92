/**
 * Data on stdout (repo-get, repo-ls): written synchronously, so that every byte is out before main
 * exits, and with a reader that went away (`| head`) taken as the end of the output rather than an
 * error, as pgBackRest does.
 */
import { fromSystemError } from "../../common/error.ts";
import { writeFully } from "../../protocol/transport.ts";

const encoder = new TextEncoder();

/** Write to stdout; false when the reader has closed the pipe (nothing more will be read). */
export function stdoutWrite(data: Uint8Array | string): boolean {
  try {
    writeFully(1, [typeof data === "string" ? encoder.encode(data) : data]);
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === "EPIPE") return false;
    throw fromSystemError(e, "write", "stdout");
  }
}
