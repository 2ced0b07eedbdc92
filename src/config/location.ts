/**
 * Which configuration files to read, from --config / --config-path / --config-include-path /
 * --no-config (command line or environment), with pgBackRest's rules:
 *
 * - nothing given: the default file (optional) and the default include directory (optional);
 * - --config=FILE: only FILE, which must exist (the default include directory is not read);
 * - --config-path=DIR: DIR/<file> and DIR/conf.d, both optional, unless named explicitly too;
 * - --config-include-path=DIR: *.conf in DIR, which must exist, plus the default file (optional);
 * - --no-config: no main file; the include directory only when --config-path or
 *   --config-include-path is given.
 *
 * The default home is pgbunker's (/etc/pgbunker) when it holds pgbunker.conf or conf.d, else
 * pgBackRest's (/etc/pgbackrest), with pgBackRest's fallback to /etc/pgbackrest.conf when its
 * default file is missing. Under --config-path=DIR the file is DIR/pgbunker.conf, or
 * DIR/pgbackrest.conf when only that exists.
 */
import { existsSync, statSync } from "node:fs";
import { CONFIG_HOME } from "./options.ts";

/** What was given on the command line or in the environment (undefined: not given). */
export interface ConfigLocationInput {
  config?: string;
  configNegated: boolean;
  configPath?: string;
  includePath?: string;
}

export interface ConfigLocation {
  /** Main file: the first of these that exists is read; empty with --no-config. */
  files: string[];
  /** The main file was named explicitly: one of `files` must exist. */
  fileRequired: boolean;
  /** Directory of *.conf files; undefined: none is read. */
  includePath?: string;
  includeRequired: boolean;
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** `etc`: where the default homes live (tests point it at a scratch directory). */
export function configLocation(given: ConfigLocationInput, etc = "/etc"): ConfigLocation {
  const at = (path: string) => (etc === "/etc" ? path : `${etc}${path.slice("/etc".length)}`);
  const own = at(CONFIG_HOME.pgbunker.path);
  const ownFile = `${own}/${CONFIG_HOME.pgbunker.file}`;
  let files: string[];
  let includeDefault: string;
  if (given.configPath !== undefined) {
    const dir = given.configPath;
    files = [`${dir}/${CONFIG_HOME.pgbunker.file}`, `${dir}/${CONFIG_HOME.pgbackrest.file}`];
    includeDefault = `${dir}/${CONFIG_HOME.include}`;
  } else if (existsSync(ownFile) || isDir(`${own}/${CONFIG_HOME.include}`)) {
    files = [ownFile];
    includeDefault = `${own}/${CONFIG_HOME.include}`;
  } else {
    const theirs = at(CONFIG_HOME.pgbackrest.path);
    files = [`${theirs}/${CONFIG_HOME.pgbackrest.file}`, at(CONFIG_HOME.pgbackrest.legacy)];
    includeDefault = `${theirs}/${CONFIG_HOME.include}`;
  }

  const configGiven = given.config !== undefined || given.configNegated;
  const readInclude = !configGiven || given.configPath !== undefined || given.includePath !== undefined;
  return {
    files: given.configNegated ? [] : given.config !== undefined ? [given.config] : files,
    fileRequired: given.config !== undefined && !given.configNegated,
    includePath: readInclude ? (given.includePath ?? includeDefault) : undefined,
    includeRequired: given.includePath !== undefined,
  };
}

/** For check's report and the log: which files a command's configuration came from. */
export function configFilesText(files: readonly string[]): string {
  return files.length ? `configuration read from ${files.map((f) => `'${f}'`).join(", ")}` : "no configuration file read";
}
