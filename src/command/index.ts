/**
 * Command name → module, loaded on demand so a short command (archive-push from PostgreSQL's
 * archive_command) does not pay for loading the backup or SSH code.
 */
import type { CommandName } from "../config/options.ts";
import type { Config } from "../config/parse.ts";

export interface CommandModule {
  /** Run the command; the return value is the exit code (0 when undefined). */
  run(cfg: Config): Promise<number | void>;
}

type Loader = () => Promise<CommandModule>;

export const COMMAND_MODULES: Partial<Record<CommandName, Loader>> = {
  annotate: () => import("./annotate/annotate.ts"),
  "archive-get": () => import("./archive/get/get.ts"),
  "archive-push": () => import("./archive/push/push.ts"),
  backup: () => import("./backup/backup.ts"),
  "backup-copy": () => import("./backup-copy/backup-copy.ts"),
  check: () => import("./check/check.ts"),
  expire: () => import("./expire/expire.ts"),
  info: () => import("./info/info.ts"),
  "recovery-targets": () => import("./recovery-targets/recovery-targets.ts"),
  remote: () => import("./remote/remote.ts"),
  "repo-get": () => import("./repo-get/repo-get.ts"),
  "repo-ls": () => import("./repo-ls/repo-ls.ts"),
  "repo-rekey": () => import("./repo-rekey/repo-rekey.ts"),
  restore: () => import("./restore/restore.ts"),
  "self-check": () => import("./self-check/self-check.ts"),
  server: () => import("./server/server.ts"),
  "server-ping": () => import("./server-ping/server-ping.ts"),
  "stanza-create": () => import("./stanza/stanza.ts").then((m) => ({ run: m.runCreate })),
  "stanza-upgrade": () => import("./stanza/stanza.ts").then((m) => ({ run: m.runUpgrade })),
  "stanza-delete": () => import("./stanza/stanza.ts").then((m) => ({ run: m.runDelete })),
  start: () => import("./control/control.ts").then((m) => ({ run: m.runStart })),
  stop: () => import("./control/control.ts").then((m) => ({ run: m.runStop })),
  verify: () => import("./verify/verify.ts"),
};
