// Runs before any test file: make sure the native helper that src/native/helper.ts embeds exists.
import { buildNative } from "../build.ts";
buildNative();
