// Runs before any test file: make sure the native helper that src/native/helper.ts embeds exists.
import { setDefaultTimeout } from "bun:test";
import { buildNative } from "../build.ts";
buildNative();

// Integration tests start clusters and sshd. bun test ignores bunfig's [test] timeout (it only
// takes --timeout), so the room the suite needs is given here, for tests and hooks alike.
setDefaultTimeout(120_000);
