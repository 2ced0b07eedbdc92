/**
 * tls-server-auth: which client certificate CN may be served for which stanza. Each entry is
 * CLIENT-CN=STANZA[,STANZA...]; `*` as the list authorises every stanza (and commands that name
 * none, such as info across stanzas). A CN is matched exactly: wildcards are refused.
 */
import { err } from "../../common/error.ts";

export type ServerAuth = ReadonlyMap<string, "*" | ReadonlySet<string>>;

export function parseServerAuth(entries: Record<string, string>): ServerAuth {
  const out = new Map<string, "*" | ReadonlySet<string>>();
  for (const [rawCn, rawList] of Object.entries(entries)) {
    const cn = rawCn.trim();
    const list = rawList.trim();
    if (!cn || cn.includes("*"))
      throw err("OptionInvalidValueError", `tls-server-auth entry '${rawCn}=${rawList}' must name one client certificate CN, found ${cn ? "a wildcard" : "none"}`, "list each client CN on its own: tls-server-auth=CLIENT-CN=STANZA[,STANZA] (a stanza list may be *).");
    if (!list)
      throw err("OptionInvalidValueError", `tls-server-auth entry for client '${cn}' lists no stanza`, `use tls-server-auth=${cn}=STANZA[,STANZA], or ${cn}=* for every stanza.`);
    out.set(cn, list === "*" ? "*" : new Set(list.split(",").map((s) => s.trim()).filter(Boolean)));
  }
  return out;
}

/** May the client with this CN be served for this stanza (undefined: a command naming no stanza)? */
export function authorized(auth: ServerAuth, cn: string, stanza: string | undefined): boolean {
  const allowed = auth.get(cn);
  if (allowed === undefined) return false;
  if (allowed === "*") return true;
  return stanza !== undefined && allowed.has(stanza);
}
