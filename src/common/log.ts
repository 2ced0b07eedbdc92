/**
 * Logging at the levels pgBackRest users know: off, error, warn, info, detail, debug, trace.
 *
 * Three sinks, each with its own threshold:
 *  - console (stdout): `log-level-console`, lines `TIMESTAMP P00   INFO: message`
 *  - stderr: `log-level-stderr`, lines `ERROR: [055]: message` (messages at or above this level go
 *    to stderr instead of stdout)
 *  - file: `log-level-file` into `log-path/STANZA-COMMAND.log`
 *
 * Secrets never reach a sink: option values marked secure are redacted before logging, and
 * `redact()` is applied to every message.
 */
import { appendFileSync, closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { localTime } from "../native/libc.ts";

export const LOG_LEVELS = ["off", "error", "warn", "info", "detail", "debug", "trace"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const RANK: Record<LogLevel, number> = { off: 0, error: 1, warn: 2, info: 3, detail: 4, debug: 5, trace: 6 };
const LABEL: Record<LogLevel, string> = {
  off: "", error: " ERROR", warn: "  WARN", info: "  INFO", detail: "DETAIL", debug: " DEBUG", trace: " TRACE",
};

export interface LogSettings {
  console: LogLevel;
  stderr: LogLevel;
  file: LogLevel;
  /** Absolute file path for the file sink, or undefined for none. */
  filePath?: string;
  timestamp: boolean;
  /** Process number shown as P00 (main) or P01.. (workers). */
  processId: number;
}

const settings: LogSettings = { console: "warn", stderr: "warn", file: "off", timestamp: true, processId: 0 };
let fileFd: number | undefined;
/** A log file is configured but not opened yet (see openLogFile). */
let filePending = false;
const secrets = new Set<string>();

export function logConfigure(next: Partial<LogSettings>): void {
  Object.assign(settings, next);
  if (fileFd !== undefined) {
    closeSync(fileFd);
    fileFd = undefined;
  }
  filePending = Boolean(settings.filePath) && settings.file !== "off";
}

/**
 * The log file is opened, and the PROCESS START banner written, only when the first line at the
 * file's level comes: a command that logs nothing at that level (archive-push with
 * log-level-file=warn, hundreds of times an hour) leaves the file as it was, as pgBackRest does.
 */
function openLogFile(): number | undefined {
  filePending = false;
  try {
    mkdirSync(settings.filePath!.replace(/\/[^/]*$/, ""), { recursive: true, mode: 0o750 });
    fileFd = openSync(settings.filePath!, "a", 0o640);
    writeSync(fileFd, "\n-------------------PROCESS START-------------------\n");
  } catch (e) {
    // A log file that cannot be opened must not stop a backup: say so on stderr once.
    process.stderr.write(`WARN: unable to open log file '${settings.filePath}': ${(e as Error).message}\n`);
    fileFd = undefined;
  }
  return fileFd;
}

export function logSettings(): Readonly<LogSettings> {
  return settings;
}

/** Register a secret value so that it is masked wherever it would appear in a log line. */
export function logSecret(value: string): void {
  if (value.length >= 4) secrets.add(value);
}

export function redact(text: string): string {
  for (const s of secrets) if (text.includes(s)) text = text.split(s).join("<redacted>");
  return text;
}

export function logWould(level: LogLevel): boolean {
  const r = RANK[level];
  return r <= RANK[settings.console] || r <= RANK[settings.stderr] || ((fileFd !== undefined || filePending || forwarder !== undefined) && r <= RANK[settings.file]);
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");
/** "YYYY-MM-DD HH:MM:SS" of the last second stamped (many lines share a second). */
let stampSecond = -1;
let stampPrefix = "";

/** Local time "YYYY-MM-DD HH:MM:SS.mmm", through libc (see native/libc.ts for why not Date). */
export function stamp(nowMs = Date.now()): string {
  const second = Math.floor(nowMs / 1000);
  if (second !== stampSecond) {
    const t = localTime(second);
    if (t) stampPrefix = `${t.year}-${pad(t.month)}-${pad(t.day)} ${pad(t.hour)}:${pad(t.minute)}:${pad(t.second)}`;
    else {
      const d = new Date(second * 1000);
      stampPrefix = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    }
    stampSecond = second;
  }
  return `${stampPrefix}.${pad(nowMs - second * 1000, 3)}`;
}

/** Hook so a progress line on the terminal can be cleared before a log line is printed. */
let beforeConsoleWrite: (() => void) | undefined;
export function logSetConsoleHook(hook: (() => void) | undefined): void {
  beforeConsoleWrite = hook;
}

/** In a worker: send log lines to the main thread, which owns the sinks. */
let forwarder: ((level: LogLevel, message: string) => void) | undefined;
export function logSetForwarder(fn: ((level: LogLevel, message: string) => void) | undefined): void {
  forwarder = fn;
}

export function log(level: LogLevel, message: string, processId = settings.processId): void {
  if (level === "off") return;
  if (forwarder) {
    if (logWould(level)) forwarder(level, message);
    return;
  }
  // Nothing takes this level: no redaction or formatting for a line nobody reads (a detail line
  // per file of a million-file backup at the default levels).
  if (!logWould(level)) return;
  const r = RANK[level];
  const text = redact(message);
  const proc = `P${String(processId).padStart(2, "0")}`;
  const body = `${proc} ${LABEL[level]}: ${text}`;

  if (r <= RANK[settings.stderr]) {
    beforeConsoleWrite?.();
    process.stderr.write(`${LABEL[level].trim()}: ${indentContinuation(text, LABEL[level].trim().length + 2)}\n`);
  } else if (r <= RANK[settings.console]) {
    beforeConsoleWrite?.();
    process.stdout.write(`${settings.timestamp ? stamp() + " " : ""}${body}\n`);
  }
  const fd = r <= RANK[settings.file] ? (fileFd ?? (filePending ? openLogFile() : undefined)) : undefined;
  if (fd !== undefined) {
    try {
      appendFileSync(fd, `${settings.timestamp ? stamp() + " " : ""}${body}\n`);
    } catch {
      // The log is best effort; the command's own errors are what matter.
    }
  }
}

function indentContinuation(text: string, width: number): string {
  return text.replace(/\n/g, "\n" + " ".repeat(width));
}

export const logError = (m: string) => log("error", m);
export const logWarn = (m: string) => log("warn", m);
export const logInfo = (m: string) => log("info", m);
export const logDetail = (m: string) => log("detail", m);
export const logDebug = (m: string) => log("debug", m);
export const logTrace = (m: string) => log("trace", m);

export function isLogLevel(v: string): v is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(v);
}
