/**
 * Reading pgBackRest-style configuration files: `[section]` headers and `key=value` lines,
 * `#` comments, blank lines, surrounding spaces trimmed, repeated keys kept in order (list
 * options). The main file plus every `*.conf` in the include path, in name order.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { err } from "../common/error.ts";

export interface ConfigEntry {
  key: string;
  value: string;
  file: string;
  line: number;
}

/** section name → entries in file order (sections from several files merged). */
export type ConfigSections = Map<string, ConfigEntry[]>;

export function parseConfigText(text: string, file: string, into: ConfigSections = new Map()): ConfigSections {
  let section: string | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("[")) {
      if (!line.endsWith("]"))
        throw err("ConfigError", `invalid section header '${line}' at line ${i + 1} of '${file}'`, "section headers look like [global] or [main:backup].");
      section = line.slice(1, -1).trim();
      if (!into.has(section)) into.set(section, []);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq <= 0)
      throw err("ConfigError", `invalid line '${line}' at line ${i + 1} of '${file}': expected key=value`, "each option line looks like process-max=4.");
    if (section === undefined)
      throw err("ConfigError", `option '${line.slice(0, eq).trim()}' at line ${i + 1} of '${file}' is outside any section`, "put it under [global] or a [STANZA] section.");
    into.get(section)!.push({ key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim(), file, line: i + 1 });
  }
  return into;
}

export interface ConfigLocation {
  /** Main file; undefined when --no-config. */
  file?: string;
  /** Whether the file was named explicitly (then it must exist). */
  fileExplicit: boolean;
  includePath?: string;
  includeExplicit: boolean;
}

export function loadConfigFiles(loc: ConfigLocation): ConfigSections {
  const sections: ConfigSections = new Map();
  if (loc.file !== undefined) {
    if (existsSync(loc.file)) parseConfigText(readText(loc.file), loc.file, sections);
    else if (loc.fileExplicit)
      throw err("FileMissingError", `unable to open missing config file '${loc.file}'`, "check --config / --config-path, or use --no-config.");
  }
  if (loc.includePath !== undefined) {
    if (existsSync(loc.includePath) && statSync(loc.includePath).isDirectory()) {
      for (const name of readdirSync(loc.includePath).filter((n) => n.endsWith(".conf")).sort())
        parseConfigText(readText(`${loc.includePath}/${name}`), `${loc.includePath}/${name}`, sections);
    } else if (loc.includeExplicit) {
      throw err("PathMissingError", `config include path '${loc.includePath}' does not exist`, "create it or correct --config-include-path.");
    }
  }
  return sections;
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw err("FileOpenError", `unable to read config file '${file}': ${(e as Error).message}`, "check that the file is readable by this user.");
  }
}
