/**
 * Conversion of one option's text (from the command line, environment or a config file) into its
 * typed value, with pgBackRest's rules: booleans y/n, sizes with 1024-based units, times in
 * (fractional) seconds, absolute paths, enumerations, KEY=VALUE pairs.
 */
import { err } from "../common/error.ts";
import type { OptionDef } from "./options.ts";

export type OptionValue = boolean | number | string | string[] | Record<string, string>;

const SIZE_UNITS: Record<string, number> = {
  "": 1, b: 1,
  k: 1024, kb: 1024, kib: 1024,
  m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4,
  p: 1024 ** 5, pb: 1024 ** 5, pib: 1024 ** 5,
};

export function parseSize(text: string): number | undefined {
  const m = /^(\d+)\s*([a-zA-Z]*)$/.exec(text.trim());
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2]!.toLowerCase()];
  return unit === undefined ? undefined : Number(m[1]) * unit;
}

export function formatSize(bytes: number): string {
  for (const [unit, mult] of [["PiB", 1024 ** 5], ["TiB", 1024 ** 4], ["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const)
    if (bytes >= mult && bytes % mult === 0) return `${bytes / mult}${unit}`;
  return String(bytes);
}

function invalid(def: OptionDef, text: string, what = "is not valid for"): never {
  const hint = def.allow ? `allowed values: ${def.allow.join(", ")}.` : typeHint(def);
  throw err("OptionInvalidValueError", `'${text}' ${what} '${def.name}' option`, hint);
}

function typeHint(def: OptionDef): string | undefined {
  switch (def.type) {
    case "boolean": return "use y or n in a config file; --OPTION or --no-OPTION on the command line.";
    case "integer": return def.range ? `expected a whole number from ${def.range[0]} to ${def.range[1]}.` : "expected a whole number.";
    case "size": return def.range ? `expected a size from ${formatSize(def.range[0])} to ${formatSize(def.range[1])}, such as 512KiB, 16MiB or 1GB.` : "expected a size such as 1048576, 512KiB, 16MiB or 1GB.";
    case "time": return "expected seconds, such as 60 or 0.5.";
    case "path": return "expected an absolute path (beginning with /).";
    case "hash": return "expected KEY=VALUE.";
    default: return undefined;
  }
}

/** Normalise a path as pgBackRest does: must be absolute; trailing and doubled slashes removed. */
export function normalizePath(text: string): string | undefined {
  if (!text.startsWith("/")) return undefined;
  let p = text.replace(/\/+/g, "/");
  if (p.length > 1 && p.endsWith("/")) p = p.slice(0, -1);
  return p;
}

/** Convert a single text value. `allow` is the effective allowed list for the command. */
export function convertValue(def: OptionDef, text: string, allow?: readonly string[]): OptionValue {
  switch (def.type) {
    case "boolean":
      if (text === "y") return true;
      if (text === "n") return false;
      return invalid(def, text);
    case "integer": {
      if (!/^-?\d+$/.test(text)) return invalid(def, text);
      const n = Number(text);
      if (def.range && (n < def.range[0] || n > def.range[1])) return invalid(def, text, "is out of range for");
      return n;
    }
    case "size": {
      const n = parseSize(text);
      if (n === undefined) return invalid(def, text);
      if (allow && !allow.some((a) => parseSize(a) === n)) return invalid({ ...def, allow }, text, "is not allowed for");
      if (def.range && (n < def.range[0] || n > def.range[1])) return invalid(def, text, "is out of range for");
      return n;
    }
    case "time": {
      if (!/^\d+(\.\d+)?$/.test(text)) return invalid(def, text);
      const n = Number(text);
      if (def.range && (n < def.range[0] || n > def.range[1])) return invalid(def, text, "is out of range for");
      return n;
    }
    case "path": {
      const p = normalizePath(text);
      if (p === undefined) return invalid(def, text);
      return p;
    }
    case "enum":
      if (allow && !allow.includes(text)) return invalid({ ...def, allow }, text, "is not allowed for");
      return text;
    case "string":
      if (text === "") return invalid(def, text);
      return text;
    case "list":
      return [text];
    case "hash": {
      const eq = text.indexOf("=");
      // pgBackRest reports a malformed pair as an invalid option (031), not an invalid value.
      if (eq <= 0) throw err("OptionInvalidError", `key/value '${text}' not valid for '${def.name}' option`, typeHint(def));
      return { [text.slice(0, eq)]: text.slice(eq + 1) };
    }
  }
}

/** Render a typed value back to option text (for the command-begin log line and for remotes). */
export function renderValue(def: OptionDef, value: OptionValue): string[] {
  switch (def.type) {
    case "boolean": return [value ? "y" : "n"];
    case "size": return [formatSize(value as number)];
    case "list": return value as string[];
    case "hash": return Object.entries(value as Record<string, string>).map(([k, v]) => `${k}=${v}`);
    default: return [String(value)];
  }
}
