/**
 * The little XML S3 and Azure answer with (listings, multipart, errors): flat elements with text,
 * read by tag name. Not a general XML parser: their answers have no attributes or CDATA we need.
 */

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

export function xmlDecode(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e: string) => {
    if (e.startsWith("#x")) return String.fromCodePoint(Number.parseInt(e.slice(2), 16));
    if (e.startsWith("#")) return String.fromCodePoint(Number.parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? m;
  });
}

export function xmlEncode(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&${Object.keys(ENTITIES).find((k) => ENTITIES[k] === c)};`);
}

/** Inner text of every <tag>…</tag> (no nesting of the same tag in these answers). */
export function xmlAll(xml: string, tag: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, "g");
  for (let m = re.exec(xml); m; m = re.exec(xml)) out.push(m[1]!);
  return out;
}

/** Decoded text of the first <tag>, or undefined. */
export function xmlText(xml: string, tag: string): string | undefined {
  const v = xmlAll(xml, tag)[0];
  return v === undefined ? undefined : xmlDecode(v);
}
