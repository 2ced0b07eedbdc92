/**
 * Reading pgBackRest-style configuration files: `[section]` headers and `key=value` lines,
 * `#` comments, blank lines, surrounding spaces trimmed, repeated keys kept in order (list
 * options). The main file plus every `*.conf` in the include path, in name order (which files:
 * location.ts).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { err } from "../common/error.ts";
import type { ConfigLocation } from "./location.ts";

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

/** The sections of every file read, and the files in the order they were read. */
export interface LoadedConfig {
  sections: ConfigSections;
  files: string[];
}

export function loadConfigFiles(loc: ConfigLocation): LoadedConfig {
  const sections: ConfigSections = new Map();
  const files: string[] = [];
  const read = (file: string) => {
    parseConfigText(readText(file), file, sections);
    files.push(file);
  };
  const main = loc.files.find((f) => existsSync(f));
  if (main !== undefined) read(main);
  else if (loc.fileRequired)
    throw err("FileMissingError", `unable to open missing config file '${loc.files[0]}'`, "check --config / --config-path (or PGBUNKER_CONFIG / PGBACKREST_CONFIG), or use --no-config.");
  if (loc.includePath !== undefined) {
    if (existsSync(loc.includePath) && statSync(loc.includePath).isDirectory()) {
      for (const name of readdirSync(loc.includePath).filter((n) => n.endsWith(".conf")).sort()) read(`${loc.includePath}/${name}`);
    } else if (loc.includeRequired) {
      throw err("PathMissingError", `config include path '${loc.includePath}' does not exist`, "create it or correct --config-include-path (or PGBUNKER_CONFIG_INCLUDE_PATH / PGBACKREST_CONFIG_INCLUDE_PATH).");
    }
  }
  return { sections, files };
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw err("FileOpenError", `unable to read config file '${file}': ${(e as Error).message}`, "check that the file is readable by this user.");
  }
}
