/**
 * JSON with 64-bit integers kept exact: PostgreSQL system identifiers exceed 2^53, so integers
 * that do not fit a double are parsed to BigInt and rendered back as bare digits. Rendering sorts
 * object keys (pgBackRest's readers expect sorted keys) and writes no whitespace.
 */
import { err } from "./error.ts";

export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | { [k: string]: JsonValue };

export function jsonParse(text: string): JsonValue {
  let pos = 0;
  const fail = (what: string): never => {
    throw err("JsonFormatError", `invalid JSON at position ${pos}: ${what} in '${text.length > 80 ? text.slice(0, 80) + "..." : text}'`);
  };
  const ws = () => {
    while (pos < text.length && " \t\r\n".includes(text[pos]!)) pos++;
  };
  const value = (): JsonValue => {
    ws();
    const c = text[pos];
    if (c === "{") {
      pos++;
      const obj: Record<string, JsonValue> = {};
      ws();
      if (text[pos] === "}") {
        pos++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[pos] !== '"') fail("expected a key");
        const k = str();
        ws();
        if (text[pos++] !== ":") fail("expected ':'");
        obj[k] = value();
        ws();
        const d = text[pos++];
        if (d === "}") return obj;
        if (d !== ",") fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      pos++;
      const arr: JsonValue[] = [];
      ws();
      if (text[pos] === "]") {
        pos++;
        return arr;
      }
      for (;;) {
        arr.push(value());
        ws();
        const d = text[pos++];
        if (d === "]") return arr;
        if (d !== ",") fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    if (text.startsWith("true", pos)) return (pos += 4), true;
    if (text.startsWith("false", pos)) return (pos += 5), false;
    if (text.startsWith("null", pos)) return (pos += 4), null;
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(pos, pos + 64));
    if (!m) return fail("unexpected character");
    pos += m[0].length;
    if (!m[2] && !m[3]) {
      const n = Number(m[0]);
      return Number.isSafeInteger(n) ? n : BigInt(m[0]);
    }
    return Number(m[0]);
  };
  const str = (): string => {
    const start = pos;
    pos++;
    let simple = true;
    while (pos < text.length && text[pos] !== '"') {
      if (text[pos] === "\\") {
        simple = false;
        pos++;
      }
      pos++;
    }
    if (pos >= text.length) fail("unterminated string");
    pos++;
    const raw = text.slice(start, pos);
    return simple ? raw.slice(1, -1) : (JSON.parse(raw) as string);
  };
  const v = value();
  ws();
  if (pos !== text.length) fail("trailing characters");
  return v;
}

export function jsonRender(v: unknown, sortKeys = true): string {
  if (v === null || v === undefined) return "null";
  switch (typeof v) {
    case "bigint": return v.toString();
    case "number":
      if (!Number.isFinite(v)) throw err("AssertError", `cannot render ${v} as JSON`);
      return String(v);
    case "boolean": return v ? "true" : "false";
    case "string": return JSON.stringify(v);
    case "object": {
      if (Array.isArray(v)) return `[${v.map((x) => jsonRender(x, sortKeys)).join(",")}]`;
      const keys = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined);
      if (sortKeys) keys.sort(byteOrder);
      return `{${keys.map((k) => `${JSON.stringify(k)}:${jsonRender((v as Record<string, unknown>)[k], sortKeys)}`).join(",")}}`;
    }
    default: throw err("AssertError", `cannot render ${typeof v} as JSON`);
  }
}

/** Plain code-unit order (= byte order for ASCII), the order pgBackRest writes keys in. */
export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
