/**
 * pgbunker entry point: parse the configuration, set up logging, take the command's locks, run
 * the command, and turn any error into pgBackRest-style output and exit code. Nothing else
 * prints errors or exits.
 */
import { err, errorCode, PgbError } from "./common/error.ts";
import { checkStopped, Lock, type LockType } from "./common/lock.ts";
import { RateLimiter, rateLimitSet } from "./common/rate-limit.ts";
import { log, logConfigure, logDetail, logError, logSecret, type LogLevel } from "./common/log.ts";
import { configFilesText } from "./config/location.ts";
import { COMMANDS, OPTIONS } from "./config/options.ts";
import { parseConfig, type Config } from "./config/parse.ts";
import { COMMAND_MODULES } from "./command/index.ts";
import { setWorkerUrl } from "./worker/pool.ts";
import { VERSION } from "./version.ts";

setWorkerUrl(new URL("./worker.ts", import.meta.url));

/** Commands whose output on stdout is data to parse (and any --output=json): begin/end lines log at debug. */
const DATA_ON_STDOUT = new Set<string>(["info", "repo-get", "repo-ls"]);

/** Commands that manage their own locking or need none. */
function locksFor(cfg: Config): LockType[] {
  const lock = COMMANDS[cfg.command].lock;
  if (lock === "archive+backup") return ["archive", "backup"];
  if (lock === "backup") return ["backup"];
  return [];
}

function configureLogging(cfg: Config): void {
  // The remote command gets no defaults applied (its options come from the caller): use the table's.
  const level = (k: "log-level-console" | "log-level-file" | "log-level-stderr") => (cfg.str(k) ?? OPTIONS.find((o) => o.name === k)?.default ?? "off") as LogLevel;
  const stanza = cfg.str("stanza") ?? "all";
  const logPath = cfg.str("log-path");
  const file = level("log-level-file");
  logConfigure({
    console: level("log-level-console"),
    stderr: level("log-level-stderr"),
    file,
    timestamp: cfg.has("log-timestamp") ? cfg.bool("log-timestamp") : true,
    filePath: logPath && file !== "off" && cfg.command !== "remote" ? `${logPath}/${stanza}-${cfg.commandName.replace(":", "-")}.log` : undefined,
    processId: 0,
  });
}

function registerSecrets(cfg: Config): void {
  for (const def of OPTIONS.filter((o) => o.secure))
    for (const [key] of cfg.toJSON().values.filter(([k]) => k === def.name || k.endsWith(def.name.replace(/^repo-/, "-"))))
      logSecret(String(cfg.raw(key)));
}

function printError(e: PgbError): void {
  const code = String(e.code).padStart(3, "0");
  const text = [`[${code}]: ${e.message}`, ...e.hints.map((h) => `HINT: ${h}`)].join("\n");
  logError(text);
}

export async function main(argv: string[]): Promise<number> {
  let cfg: Config;
  try {
    cfg = parseConfig({ argv, env: process.env });
  } catch (e) {
    logConfigure({ console: "off", stderr: "error", file: "off", timestamp: false });
    printError(e instanceof PgbError ? e : err("UnhandledError", String((e as Error)?.message ?? e)));
    return errorCode(e);
  }

  if (cfg.command === "version") {
    process.stdout.write(`pgbunker ${VERSION}\n`);
    return 0;
  }
  if (cfg.command === "help") {
    try {
      const { helpText } = await import("./config/help.ts");
      process.stdout.write(helpText(VERSION, cfg.params));
      return 0;
    } catch (e) {
      logConfigure({ console: "off", stderr: "error", file: "off", timestamp: false });
      printError(e as PgbError);
      return errorCode(e);
    }
  }

  // The executable starts with the JIT held back (build.ts): right for archive-push/archive-get,
  // which PostgreSQL starts once per WAL segment; anything else may run long.
  if (!((cfg.command === "archive-push" || cfg.command === "archive-get") && cfg.role !== "async")) Bun.unsafe.setJITPolicy(1);

  if (cfg.bool("neutral-umask")) process.umask(0);
  configureLogging(cfg);
  registerSecrets(cfg);
  // One byte budget for the whole process: the worker pool shares it with every worker.
  const rateLimit = cfg.num("rate-limit");
  if (rateLimit !== undefined) rateLimitSet(new RateLimiter(rateLimit));

  const started = performance.now();
  const params = cfg.params.length ? `[${cfg.params.join(", ")}] ` : "";
  // Commands whose stdout is data (info's text or json) keep begin/end lines out of it, as pgBackRest does.
  const beginEnd: LogLevel = DATA_ON_STDOUT.has(cfg.command) || cfg.str("output") === "json" ? "debug" : "info";
  log(beginEnd, `${cfg.commandName} command begin ${VERSION}: ${params}${cfg.describe()}`);
  logDetail(configFilesText(cfg.configFiles));

  let lock: Lock | undefined;
  let code = 0;
  try {
    const stanza = cfg.str("stanza");
    // The remote and the TLS server serve commands that checked stop on their own host.
    const exempt = ["start", "stop", "remote", "server", "server-ping", "info", "stanza-delete"];
    if (!exempt.includes(cfg.command))
      checkStopped(cfg.get("lock-path"), stanza);
    const locks = locksFor(cfg);
    if (locks.length && stanza) lock = Lock.acquire(cfg.req("lock-path"), stanza, locks, cfg.command);
    const loader = COMMAND_MODULES[cfg.command];
    if (!loader) throw err("CommandInvalidError", `command '${cfg.command}' is not available`);
    const mod = await loader();
    code = (await mod.run(cfg)) ?? 0;
    const ms = Math.round(performance.now() - started);
    log(beginEnd, `${cfg.commandName} command end: completed successfully (${ms}ms)`);
  } catch (e) {
    const pe = e instanceof PgbError ? e : err("UnhandledError", (e as Error)?.stack ?? String(e));
    printError(pe);
    code = pe.code;
    log(beginEnd, `${cfg.commandName} command end: aborted with exception [${String(code).padStart(3, "0")}]`);
  } finally {
    lock?.release();
  }
  return code;
}

if (import.meta.main) {
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    process.on(sig, () => {
      logError(`[063]: terminated on signal [${sig}]`);
      process.exit(63);
    });
  }
  const code = await main(process.argv.slice(2));
  process.exit(code);
}
