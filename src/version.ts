/** The pgbunker version: one source of truth, package.json. */
import pkg from "../package.json" with { type: "json" };

export const VERSION: string = pkg.version;
