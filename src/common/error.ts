/**
 * The one table of error kinds. Each kind has a stable name and a numeric code that is also
 * the process exit code, numbered as pgBackRest numbers them so that scripts written against
 * pgBackRest's exit codes keep working.
 *
 * Only src/main.ts prints errors and exits; everything else throws a PgbError.
 */

export const ERROR_CODES = {
  AssertError: 25,
  ChecksumError: 26,
  ConfigError: 27,
  FileInvalidError: 28,
  FormatError: 29,
  CommandRequiredError: 30,
  OptionInvalidError: 31,
  OptionInvalidValueError: 32,
  OptionRequiredError: 37,
  PgRunningError: 38,
  ProtocolError: 39,
  PathNotEmptyError: 40,
  FileOpenError: 41,
  FileReadError: 42,
  ParamRequiredError: 43,
  ArchiveMismatchError: 44,
  ArchiveDuplicateError: 45,
  VersionNotSupportedError: 46,
  PathCreateError: 47,
  CommandInvalidError: 48,
  HostConnectError: 49,
  LockAcquireError: 50,
  BackupMismatchError: 51,
  FileSyncError: 52,
  PathOpenError: 53,
  PathSyncError: 54,
  FileMissingError: 55,
  DbConnectError: 56,
  DbQueryError: 57,
  DbMismatchError: 58,
  DbTimeoutError: 59,
  FileRemoveError: 60,
  PathRemoveError: 61,
  StopError: 62,
  TermError: 63,
  FileWriteError: 64,
  ProtocolTimeoutError: 66,
  FeatureNotSupportedError: 67,
  ArchiveCommandInvalidError: 68,
  LinkExpectedError: 69,
  LinkDestinationError: 70,
  HostInvalidError: 72,
  PathMissingError: 73,
  FileMoveError: 74,
  BackupSetInvalidError: 75,
  TablespaceMapError: 76,
  PathTypeError: 77,
  LinkMapError: 78,
  FileCloseError: 79,
  DbMissingError: 80,
  DbInvalidError: 81,
  ArchiveTimeoutError: 82,
  FileModeError: 83,
  OptionMultipleValueError: 84,
  ProtocolOutputRequiredError: 85,
  LinkOpenError: 86,
  ArchiveDisabledError: 87,
  FileOwnerError: 88,
  UserMissingError: 89,
  OptionCommandError: 90,
  GroupMissingError: 91,
  PathExistsError: 92,
  FileExistsError: 93,
  MemoryError: 94,
  CryptoError: 95,
  ParamInvalidError: 96,
  PathCloseError: 97,
  FileInfoError: 98,
  JsonFormatError: 99,
  KernelError: 100,
  ServiceError: 101,
  ExecuteError: 102,
  RepoInvalidError: 103,
  CommandError: 104,
  AccessError: 105,
  ClockError: 106,
  RuntimeError: 122,
  InvalidError: 123,
  UnhandledError: 124,
  UnknownError: 125,
} as const;

export type ErrorName = keyof typeof ERROR_CODES;

/** An error with a stable kind. `hint` lines tell the user what to do. */
export class PgbError extends Error {
  readonly kind: ErrorName;
  readonly hints: string[];

  constructor(kind: ErrorName, message: string, hint?: string | string[], options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = kind;
    this.hints = hint === undefined ? [] : Array.isArray(hint) ? hint : [hint];
  }

  get code(): number {
    return ERROR_CODES[this.kind];
  }
}

/** Shorthand used everywhere: `throw err("FileMissingError", "...", "HINT text")`. */
export function err(kind: ErrorName, message: string, hint?: string | string[], cause?: unknown): PgbError {
  return new PgbError(kind, message, hint, cause === undefined ? undefined : { cause });
}

export function errorCode(e: unknown): number {
  return e instanceof PgbError ? e.code : ERROR_CODES.UnhandledError;
}

/** Error name by code (the protocol carries codes; the receiving side rebuilds the kind). */
export function errorKindByCode(code: number): ErrorName {
  for (const [name, value] of Object.entries(ERROR_CODES)) if (value === code) return name as ErrorName;
  return "UnknownError";
}

/**
 * An error as plain data, the one form in which errors cross a boundary: from a worker thread to
 * the pool, from a remote over the protocol, from the async archive process through its status.
 * The kind survives; a peer that does not know the kind is understood by its code.
 */
export interface WireError {
  kind: string;
  code: number;
  message: string;
  hints: string[];
  stack?: string;
}

export function errorToWire(e: unknown): WireError {
  if (e instanceof PgbError) return { kind: e.kind, code: e.code, message: e.message, hints: e.hints, stack: e.stack };
  const x = e as Error | undefined;
  return { kind: "UnhandledError", code: ERROR_CODES.UnhandledError, message: x?.message ?? String(e), hints: [], stack: x?.stack };
}

/** Rebuild a PgbError; `from` ("remote on backup1") is put in front of the message. */
export function errorFromWire(w: WireError, from?: string): PgbError {
  const kind: ErrorName = w.kind in ERROR_CODES ? (w.kind as ErrorName) : errorKindByCode(w.code);
  const e = err(kind, from ? `raised from ${from}: ${w.message}` : w.message, w.hints ?? []);
  if (w.stack) e.stack = w.stack;
  return e;
}

/** Map a Node/Bun system error (ENOENT, EACCES, ENOSPC, ...) to our kind for a given action. */
export function fromSystemError(
  e: unknown,
  action: "open-read" | "open-write" | "read" | "write" | "sync" | "remove" | "path-create" | "path-open" | "move" | "info" | "link",
  path: string,
): PgbError {
  if (e instanceof PgbError) return e;
  const code = (e as { code?: string })?.code ?? "";
  const detail = (e as Error)?.message ?? String(e);
  const reason = SYSTEM_REASON[code] ?? detail;
  switch (action) {
    case "open-read":
      if (code === "ENOENT") return err("FileMissingError", `unable to open missing file '${path}' for read`);
      return err("FileOpenError", `unable to open file '${path}' for read: ${reason}`, permissionHint(code));
    case "open-write":
      if (code === "ENOENT") return err("PathMissingError", `unable to open file '${path}' for write: parent path is missing`);
      return err("FileOpenError", `unable to open file '${path}' for write: ${reason}`, code === "ENOSPC" ? SPACE_HINT : permissionHint(code));
    case "read":
      return err("FileReadError", `unable to read file '${path}': ${reason}`);
    case "write":
      return err("FileWriteError", `unable to write file '${path}': ${reason}`, code === "ENOSPC" ? SPACE_HINT : permissionHint(code));
    case "sync":
      return err("FileSyncError", `unable to sync '${path}': ${reason}`);
    case "remove":
      return err("FileRemoveError", `unable to remove '${path}': ${reason}`, permissionHint(code));
    case "path-create":
      return err("PathCreateError", `unable to create path '${path}': ${reason}`, code === "ENOSPC" ? SPACE_HINT : permissionHint(code));
    case "path-open":
      if (code === "ENOENT") return err("PathMissingError", `unable to list missing path '${path}'`);
      return err("PathOpenError", `unable to open path '${path}': ${reason}`, permissionHint(code));
    case "move":
      return err("FileMoveError", `unable to move '${path}': ${reason}`, permissionHint(code));
    case "info":
      if (code === "ENOENT") return err("FileMissingError", `unable to get info for missing path/file '${path}'`);
      return err("FileInfoError", `unable to get info for path/file '${path}': ${reason}`, permissionHint(code));
    case "link":
      return err("FileOpenError", `unable to create link '${path}': ${reason}`, permissionHint(code));
  }
}

const SPACE_HINT = "free space on the device that holds this path, then run the command again.";

const SYSTEM_REASON: Record<string, string> = {
  ENOENT: "[2] No such file or directory",
  EACCES: "[13] Permission denied",
  EPERM: "[1] Operation not permitted",
  ENOSPC: "[28] No space left on device",
  EEXIST: "[17] File exists",
  ENOTDIR: "[20] Not a directory",
  EISDIR: "[21] Is a directory",
  EROFS: "[30] Read-only file system",
  EDQUOT: "[122] Disk quota exceeded",
  ENOTEMPTY: "[39] Directory not empty",
  EIO: "[5] Input/output error",
};

function permissionHint(code: string): string | undefined {
  if (code === "EACCES" || code === "EPERM")
    return "check that the user running pgbunker owns the path or has permission to it.";
  if (code === "EROFS") return "the file system is mounted read-only.";
  return undefined;
}
