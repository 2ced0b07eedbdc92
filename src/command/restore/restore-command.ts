/**
 * The restore_command a restore writes: this executable (or --cmd) running archive-get with the
 * options the user gave on the command line that archive-get understands, as pgBackRest does
 * (`--config=... --pg1-path=... --stanza=demo archive-get %f "%p"`), and those set through
 * PGBUNKER_* (PostgreSQL will not have that environment). Options from the config file are not
 * repeated: archive-get reads the same file. Secrets are never written out.
 */
import { basename, resolve } from "node:path";
import { optionValidFor } from "../../config/options.ts";
import { resolveOptionName, type Config } from "../../config/parse.ts";

/** Restore-only noise: how this restore logs and how many workers it used say nothing about archive-get. */
const LEFT_OUT = new Set(["log-level-console", "log-level-file", "log-level-stderr", "log-timestamp", "process-max"]);

/** How to start this program again: the compiled executable, or bun plus the entry script in development. */
export function selfCommand(): string {
  const exe = process.execPath;
  if (basename(exe) === "bun" && process.argv[1] && !process.argv[1].startsWith("/$bunfs")) return `${exe} ${resolve(process.argv[1])}`;
  return exe;
}

function shellWord(text: string): string {
  return /^[A-Za-z0-9_.,:/=@%+-]+$/.test(text) ? text : `"${text.replace(/(["\\$`])/g, "\\$1")}"`;
}

export function archiveGetCommand(cfg: Config): string {
  const omit = cfg.toJSON().values.map(([key]) => key).filter((key) => {
    const r = resolveOptionName(key);
    return !r || r.def.secure || key === "cmd" || LEFT_OUT.has(key) || !optionValidFor(r.def, "archive-get");
  });
  return `${cfg.str("cmd") ?? selfCommand()} ${cfg.cliArgs(omit, ["cli", "env"]).map(shellWord).join(" ")} archive-get %f "%p"`;
}
