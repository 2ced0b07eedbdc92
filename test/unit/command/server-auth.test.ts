/** tls-server-auth: which client CN is served for which stanza. */
import { expect, test } from "bun:test";
import { authorized, parseServerAuth } from "../../../src/command/server/auth.ts";

test("a CN is served only for the stanzas listed for it; * for all, and for commands naming none", () => {
  const auth = parseServerAuth({ "db-1": "main, other", backup: "*" });
  expect(authorized(auth, "db-1", "main")).toBe(true);
  expect(authorized(auth, "db-1", "other")).toBe(true);
  expect(authorized(auth, "db-1", "third")).toBe(false);
  expect(authorized(auth, "db-1", undefined)).toBe(false);
  expect(authorized(auth, "backup", "anything")).toBe(true);
  expect(authorized(auth, "backup", undefined)).toBe(true);
  // CNs are matched exactly.
  expect(authorized(auth, "DB-1", "main")).toBe(false);
  expect(authorized(auth, "db-", "main")).toBe(false);
});

test("a wildcard CN or an empty stanza list is refused with what to write instead", () => {
  expect(() => parseServerAuth({ "*": "main" })).toThrow(/must name one client certificate CN, found a wildcard/);
  expect(() => parseServerAuth({ "db-*": "main" })).toThrow(/wildcard/);
  expect(() => parseServerAuth({ db: " " })).toThrow(/tls-server-auth entry for client 'db' lists no stanza/);
});
