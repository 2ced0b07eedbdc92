/**
 * THE table of commands and options. Names, types, defaults, allowed values and the commands
 * each option applies to follow pgBackRest 2.45's documentation (command.html and
 * configuration.html), so that a pgBackRest configuration file and command line work here
 * unchanged. Help text is generated from this table; the parser validates against it.
 *
 * Where pgbunker's default differs from pgBackRest's, the entry says so in `note`.
 */
import { COMPRESS_LEVEL_DEFAULT, COMPRESS_LEVEL_RANGE, COMPRESS_TYPES } from "../common/compress-type.ts";

export const COMMANDS = {
  "archive-get": { summary: "Get a WAL segment from the archive (PostgreSQL restore_command).", params: "SEGMENT DESTINATION", lock: false },
  "archive-push": { summary: "Push a WAL segment to the archive (PostgreSQL archive_command).", params: "WAL-PATH", lock: "archive" },
  annotate: { summary: "Add or change annotations of a backup.", params: "", lock: "backup" },
  backup: { summary: "Back up a PostgreSQL cluster into the repository.", params: "", lock: "backup" },
  "backup-copy": { summary: "Copy backup sets and the WAL they need from one repository (--repo) to another (--repo-target), re-compressing and re-encrypting as the target is configured (pgbunker command).", params: "", lock: "backup" },
  check: { summary: "Check the configuration: database, repository and WAL archiving.", params: "", lock: false },
  expire: { summary: "Remove backups and WAL that fall outside the retention policy.", params: "", lock: "backup" },
  help: { summary: "Show help for a command or an option.", params: "[COMMAND [OPTION]]", lock: false },
  info: { summary: "Show the backups and WAL archive held in the repository.", params: "", lock: false },
  "repo-get": { summary: "Print a file of the repository to stdout: decrypted, not decompressed (pipe it through lz4 -d, gzip -d, ...).", params: "FILE", lock: false },
  "repo-ls": { summary: "List files in the repository (PATH relative to repo-path, or absolute inside it).", params: "[PATH]", lock: false },
  "repo-rekey": { summary: "Change the passphrase of an encrypted repository (repoN-cipher-pass → repoN-cipher-pass-new) without rewriting backups or WAL (pgbunker addition).", params: "", lock: "archive+backup" },
  "recovery-targets": { summary: "List where the archive lets a restore stop, per timeline: named restore points, commit and abort time ranges, and each backup's earliest and latest target (pgbunker addition).", params: "", lock: false },
  remote: { summary: "Serve the pgbunker protocol on stdin/stdout (started by pgbunker over SSH).", params: "", lock: false },
  server: { summary: "Serve remote hosts over TLS (repoN-host-type=tls / pgN-host-type=tls): a long-running daemon, no SSH needed.", params: "", lock: false },
  "server-ping": { summary: "Check that a pgbunker TLS server answers (no client certificate needed).", params: "[HOST]", lock: false },
  restore: { summary: "Restore a backup into a PostgreSQL data directory.", params: "", lock: false },
  "self-check": { summary: "Check the native layer (lz4, zlib, page checksums, CRC-32C) and worker threads.", params: "", lock: false },
  "stanza-create": { summary: "Create the repository structure for a stanza.", params: "", lock: "archive+backup" },
  "stanza-delete": { summary: "Delete a stanza and everything it holds in the repository.", params: "", lock: "archive+backup" },
  "stanza-upgrade": { summary: "Record a PostgreSQL major upgrade in the stanza.", params: "", lock: "archive+backup" },
  start: { summary: "Allow pgbunker processes to run again after stop.", params: "", lock: false },
  stop: { summary: "Stop pgbunker processes from running for a stanza (or all).", params: "", lock: false },
  verify: { summary: "Verify the contents of the repository against recorded checksums.", params: "", lock: false },
  version: { summary: "Print the pgbunker version.", params: "", lock: false },
} as const;

export type CommandName = keyof typeof COMMANDS;
export const COMMAND_NAMES = Object.keys(COMMANDS) as CommandName[];

export type OptionType = "boolean" | "integer" | "size" | "time" | "string" | "path" | "enum" | "list" | "hash";

/** Where an option may appear in a config file. `stanza`: only in stanza sections. `cli`: command line only. */
export type OptionSection = "global" | "stanza" | "cli";

export interface CommandOverride {
  default?: string;
  allow?: readonly string[];
  required?: boolean;
}

export interface OptionDef {
  name: string;
  type: OptionType;
  summary: string;
  section: OptionSection;
  commands: readonly CommandName[];
  default?: string;
  allow?: readonly string[];
  /** Inclusive numeric range, in the option's unit (bytes for size, seconds for time). */
  range?: readonly [number, number];
  /** repoN-* or pgN-* options. The name in the table has no index (repo-path). */
  indexed?: "repo" | "pg";
  /** Never accepted on the command line; never logged. */
  secure?: boolean;
  required?: boolean;
  /** Per-command default/allowed values (backup --type vs restore --type). */
  byCommand?: Partial<Record<CommandName, CommandOverride>>;
  /** Older pgBackRest names still accepted in config files and on the command line. */
  deprecated?: readonly string[];
  note?: string;
  /** Accepted for compatibility but not implemented: setting it to a non-default value is an error. */
  unsupported?: boolean;
  /** Valid only when another option has one of these values (checked at parse time). */
  depends?: { option: string; values: readonly string[] };
  /** Default and inclusive range that depend on another option's value (compress-level by compress-type). */
  byValueOf?: { option: string; defaults: Readonly<Record<string, number>>; ranges: Readonly<Record<string, readonly [number, number]>> };
}

// ---- command sets (as documented per option) -------------------------------------------

const ALL: readonly CommandName[] = COMMAND_NAMES.filter((c) => c !== "help" && c !== "version");
const SELF_CHECK: readonly CommandName[] = ["self-check"];
/** Commands that touch the repository. */
const REPO: readonly CommandName[] = [
  "annotate", "archive-get", "archive-push", "backup", "backup-copy", "check", "expire", "info", "recovery-targets", "repo-get", "repo-ls", "repo-rekey", "restore",
  "stanza-create", "stanza-delete", "stanza-upgrade", "verify", "remote",
];
/** Commands that may reach the repository through a repository host (not backup/expire: they run there). */
const REPO_HOST: readonly CommandName[] = REPO.filter((c) => c !== "backup" && c !== "expire" && c !== "remote");
/** Commands that talk to PostgreSQL. */
const PG: readonly CommandName[] = ["backup", "check", "stanza-create", "stanza-delete", "stanza-upgrade", "remote"];
/** Commands that need the data directory. */
const PG_PATH: readonly CommandName[] = ["archive-get", "archive-push", "backup", "check", "restore", "stanza-create", "stanza-delete", "stanza-upgrade", "remote"];
const IO: readonly CommandName[] = REPO;
const REMOTE_CAPABLE: readonly CommandName[] = [
  "archive-get", "archive-push", "backup", "backup-copy", "check", "info", "repo-get", "repo-ls", "restore", "stanza-create", "stanza-delete",
  "stanza-upgrade", "verify", "remote",
];
/** Commands that run parallel jobs in worker processes (pgBackRest's "local" role). */
const JOBS: readonly CommandName[] = ["archive-get", "archive-push", "backup", "backup-copy", "recovery-targets", "restore", "verify"];
const LOCKING: readonly CommandName[] = [
  "annotate", "archive-get", "archive-push", "backup", "backup-copy", "expire", "info", "repo-rekey", "restore", "stanza-create", "stanza-delete",
  "stanza-upgrade", "start", "stop", "remote",
];

const LOG_LEVELS = ["off", "error", "warn", "info", "detail", "debug", "trace"] as const;
const BUFFER_SIZES = ["16KiB", "32KiB", "64KiB", "128KiB", "256KiB", "512KiB", "1MiB", "2MiB", "4MiB", "8MiB", "16MiB"] as const;
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
/** repoN-storage-upload-chunk-size by repoN-type, as pgBackRest 2.59.1 allows it. */
const UPLOAD_CHUNK_RANGE = { s3: [5 * MiB, 1 * GiB], azure: [4 * MiB, 1 * GiB], gcs: [4 * MiB, 1 * GiB] } as const;
const TiB = 1024 * GiB;
const PiB = 1024 * TiB;

/**
 * Where the configuration is looked for when --config, --config-path and --config-include-path
 * are not given (config/location.ts applies the rules): pgbunker's own place when it has a file
 * or a conf.d there, else pgBackRest's (with pgBackRest's fallback to the pre-2.0
 * /etc/pgbackrest.conf), so a host migrating from pgBackRest needs no --config.
 */
export const CONFIG_HOME = {
  pgbunker: { path: "/etc/pgbunker", file: "pgbunker.conf" },
  pgbackrest: { path: "/etc/pgbackrest", file: "pgbackrest.conf", legacy: "/etc/pgbackrest.conf" },
  include: "conf.d",
} as const;
const CONFIG_DEFAULT_TEXT =
  `${CONFIG_HOME.pgbunker.path}/${CONFIG_HOME.pgbunker.file} when it or ${CONFIG_HOME.pgbunker.path}/${CONFIG_HOME.include} exists, ` +
  `else ${CONFIG_HOME.pgbackrest.path}/${CONFIG_HOME.pgbackrest.file} (or the older ${CONFIG_HOME.pgbackrest.legacy})`;
const CONFIG_LOCATION_NOTE = [
  `Default configuration: ${CONFIG_DEFAULT_TEXT}, plus *.conf in the ${CONFIG_HOME.include} directory beside it.`,
  `With --config-path=DIR: DIR/${CONFIG_HOME.pgbunker.file} (or DIR/${CONFIG_HOME.pgbackrest.file}) and DIR/${CONFIG_HOME.include}. A file or directory named`,
  "explicitly (--config, --config-include-path, or PGBUNKER_/PGBACKREST_ environment variables) must exist;",
  "--config alone reads no include directory; --no-config reads no main file. 'pgbunker check' logs what it read.",
].join("\n");
/** What a remote reads when repoN-/pgN-host-config* are not set: its own default location. */
const REMOTE_CONFIG_TEXT = "(default: the remote host's own default location, see 'pgbunker help check config')";

/** Keeps each entry's literal name, type and allowed values, from which OptionKey and the getters' value types are derived. */
const o = <const D extends OptionDef>(def: D): D => def;

const TLS_CA_TEXT = "(default: the system's CA store; with both set, either may have signed it)";
const SERVER: readonly CommandName[] = ["server"];
const SERVER_PING: readonly CommandName[] = ["server", "server-ping"];

const TABLE = [
  // ---- archive -------------------------------------------------------------------------------
  o({ name: "archive-async", type: "boolean", default: "n", section: "global", commands: ["archive-get", "archive-push"], summary: "Push and get WAL asynchronously through a spool queue." }),
  o({ name: "archive-get-queue-max", type: "size", default: "128MiB", range: [0, 4 * PiB], section: "global", commands: ["archive-get"], summary: "Largest amount of WAL prefetched into the spool by async archive-get." }),
  o({ name: "archive-header-check", type: "boolean", default: "y", section: "global", commands: ["archive-push"], summary: "Check the WAL segment header's system id and version before pushing." }),
  o({ name: "archive-missing-retry", type: "boolean", default: "y", section: "global", commands: ["archive-get"], summary: "Retry a missing segment in async archive-get rather than trusting the queue." }),
  o({ name: "archive-push-batch-size", type: "size", default: "16GiB", range: [MiB, 4 * PiB], section: "global", commands: ["archive-push"], summary: "Most WAL one run of the asynchronous archive-push process pushes before it exits, so the next run rechecks archive-push-queue-max (whole segments, at least one).", note: "pgBackRest 2.59 option." }),
  o({ name: "archive-push-queue-max", type: "size", range: [0, 4 * PiB], section: "global", commands: ["archive-push"], summary: "Largest WAL queue in pg_wal before WAL is dropped (archiving then breaks PITR).", deprecated: ["archive-queue-max"] }),
  o({ name: "archive-timeout", type: "time", default: "60", range: [0.1, 86400], section: "global", commands: ["archive-get", "archive-push", "backup", "check"], summary: "Seconds to wait for WAL to reach the archive." }),

  // ---- backup --------------------------------------------------------------------------------
  o({ name: "annotation", type: "hash", section: "cli", commands: ["annotate", "backup"], summary: "Annotation KEY=VALUE stored with the backup (repeatable; KEY= removes the key).", byCommand: { annotate: { required: true } } }),
  o({ name: "archive-check", type: "boolean", default: "y", section: "global", commands: ["archive-push", "backup", "check"], summary: "Wait until the WAL a backup needs is in the archive." }),
  o({ name: "archive-copy", type: "boolean", default: "n", section: "global", commands: ["backup"], summary: "Copy the WAL needed for consistency into the backup itself." }),
  o({ name: "archive-mode-check", type: "boolean", default: "y", section: "global", commands: ["archive-push", "backup", "check"], summary: "Refuse archive_mode=always on a primary with several archivers." }),
  o({ name: "backup-standby", type: "boolean", default: "n", section: "global", commands: ["backup", "check"], summary: "Copy files from a standby instead of the primary." }),
  o({ name: "checksum-page", type: "boolean", section: "global", commands: ["backup"], summary: "Verify data page checksums during backup (on by default when the cluster has them)." }),
  o({ name: "exclude", type: "list", section: "global", commands: ["backup"], summary: "Path or file under the data directory to leave out of the backup (repeatable)." }),
  o({ name: "expire-auto", type: "boolean", default: "y", section: "global", commands: ["backup"], summary: "Run expire after a successful backup." }),
  o({ name: "manifest-save-threshold", type: "size", default: "1GiB", range: [1, TiB], section: "global", commands: ["backup", "backup-copy"], summary: "Bytes copied between saves of the resumable partial manifest." }),
  o({ name: "resume", type: "boolean", default: "y", section: "global", commands: ["backup"], summary: "Resume an interrupted backup of the same type." }),
  o({ name: "start-fast", type: "boolean", default: "n", section: "global", commands: ["backup"], summary: "Force an immediate checkpoint when the backup starts." }),
  o({ name: "stop-auto", type: "boolean", default: "n", section: "global", commands: ["backup"], summary: "Stop a stale backup left running in PostgreSQL (exclusive backups only)." }),

  // ---- general -------------------------------------------------------------------------------
  o({ name: "buffer-size", type: "size", default: "1MiB", allow: BUFFER_SIZES, section: "global", commands: IO, summary: "Size of the buffers used for copying, compression and checksums." }),
  o({ name: "cmd", type: "path", section: "global", commands: REMOTE_CAPABLE, summary: "pgbunker command used when pgbunker starts itself (archive_command, restore_command, remotes)." }),
  o({ name: "cmd-ssh", type: "string", default: "ssh", section: "global", commands: REMOTE_CAPABLE, summary: "Kept for pgBackRest configuration files; pgbunker's SSH client is built in." }),
  o({ name: "compress", type: "boolean", default: "y", section: "global", commands: ["archive-push", "backup"], summary: "Deprecated: use compress-type." }),
  o({ name: "compress-level", type: "integer", range: [-7, 22], byValueOf: { option: "compress-type", defaults: COMPRESS_LEVEL_DEFAULT, ranges: COMPRESS_LEVEL_RANGE }, section: "global", commands: ["archive-push", "backup", "backup-copy"], summary: "Compression level (default per type: lz4 1, gz 6, zst 3, bz2 9; range per type: lz4 -5..12, gz 0..9, zst -7..22, bz2 1..9)." }),
  o({ name: "compress-level-network", type: "integer", default: "3", range: [0, 9], section: "global", commands: IO, summary: "Compression level for data sent over the network when not otherwise compressed." }),
  o({ name: "compress-type", type: "enum", default: "lz4", allow: COMPRESS_TYPES, section: "global", commands: ["archive-push", "backup", "backup-copy"], summary: "Compression for files in the repository (backup-copy: of the copies; unset, a copy keeps the source backup's).", note: "pgBackRest defaults to gz; pgbunker defaults to lz4." }),
  o({ name: "config", type: "path", section: "cli", commands: ALL, summary: `Configuration file (default: ${CONFIG_DEFAULT_TEXT}).`, note: CONFIG_LOCATION_NOTE }),
  o({ name: "config-include-path", type: "path", section: "cli", commands: ALL, summary: `Directory of additional *.conf files (default: ${CONFIG_HOME.include} beside the default configuration file).`, note: CONFIG_LOCATION_NOTE }),
  o({ name: "config-path", type: "path", section: "cli", commands: ALL, summary: `Base directory for the configuration file and include path (default: ${CONFIG_HOME.pgbunker.path}, else ${CONFIG_HOME.pgbackrest.path}).`, note: CONFIG_LOCATION_NOTE }),
  o({ name: "db-timeout", type: "time", default: "1800", range: [0.1, 604800], section: "global", commands: ["archive-get", "archive-push", "backup", "check", "repo-get", "repo-ls", "stanza-create", "stanza-delete", "stanza-upgrade", "remote"], summary: "Seconds a database query may take (backup start/stop waits included)." }),
  o({ name: "delta", type: "boolean", default: "n", section: "global", commands: ["backup", "restore"], summary: "Compare files by checksum instead of size and time." }),
  o({ name: "dry-run", type: "boolean", default: "n", section: "cli", commands: ["expire"], summary: "Report what would be removed without removing it." }),
  o({ name: "archive-expire-before", type: "string", section: "cli", commands: ["expire"], summary: "Also remove WAL earlier than this segment that no kept backup needs (what PostgreSQL passes archive_cleanup_command as %r)." }),
  o({ name: "oldest", type: "boolean", default: "n", section: "cli", commands: ["expire"], summary: "Expire the oldest full backup set (with its dependents and WAL) while another full backup remains; not with --set." }),
  o({ name: "io-timeout", type: "time", default: "60", range: [0.1, 3600], section: "global", commands: [...IO, ...SERVER_PING], summary: "Seconds an I/O operation may stall." }),
  o({ name: "job-retry", type: "integer", default: "2", range: [0, 360], section: "global", commands: JOBS, byCommand: { "archive-get": { default: "1" }, "archive-push": { default: "1" } }, summary: "Times a parallel job (a file of a backup, restore or verify) is tried again when its connection to a remote host failed.", note: "pgBackRest retries a failed job whatever the error; pgbunker retries only lost or failed remote connections (ProtocolError, ProtocolTimeoutError, HostConnectError): other errors would fail again. archive-get and archive-push accept it for pgBackRest configurations; a WAL segment whose transfer failed is tried again by PostgreSQL (and the asynchronous queue), not by job-retry." }),
  o({ name: "job-retry-interval", type: "time", default: "15", range: [0, 900], section: "global", commands: JOBS, summary: "Seconds to wait before each retry after the first (the first retry is immediate)." }),
  o({ name: "lock-path", type: "path", default: "/tmp/pgbunker", section: "global", commands: LOCKING, summary: "Directory for lock and stop files." }),
  o({ name: "neutral-umask", type: "boolean", default: "y", section: "global", commands: ALL, summary: "Use umask 0000 so modes come only from the manifest." }),
  o({ name: "process-max", type: "integer", default: "1", range: [1, 999], section: "global", commands: ["archive-get", "archive-push", "backup", "backup-copy", "recovery-targets", "remote", "restore", "verify", ...SELF_CHECK], summary: "Worker processes for compression, checksums and transfer." }),
  o({ name: "protocol-timeout", type: "time", default: "1830", range: [0.1, 604800], section: "global", commands: [...IO, ...SERVER], summary: "Seconds to wait for a remote or worker to answer." }),
  o({ name: "rate-limit", type: "size", range: [KiB, 4 * PiB], section: "global", commands: ["archive-push", "backup", "backup-copy", "restore"], summary: "Most bytes per second moved by all workers together (the repository's stored bytes for backup, restore and backup-copy; the WAL read for archive-push), such as 20MiB; unset: no limit.", note: "pgbunker option: keeps a backup from saturating a production disk or network link." }),
  o({ name: "raw", type: "boolean", default: "n", section: "cli", commands: ["repo-get"], summary: "Print the stored bytes as they are, without decrypting (repo-get never decompresses)." }),
  o({ name: "sck-keep-alive", type: "boolean", default: "y", section: "global", commands: IO, summary: "Enable socket keep-alive on remote connections." }),
  o({ name: "spool-path", type: "path", default: "/var/spool/pgbunker", section: "global", commands: ["archive-get", "archive-push"], summary: "Directory for the asynchronous archive queue." }),
  o({ name: "stanza", type: "string", section: "cli", commands: ["annotate", "archive-get", "archive-push", "backup", "backup-copy", "check", "expire", "info", "recovery-targets", "remote", "repo-get", "repo-ls", "repo-rekey", "restore", "stanza-create", "stanza-delete", "stanza-upgrade", "start", "stop", "verify"], summary: "Name of the stanza (the cluster's section in config and repository).", byCommand: { "archive-get": { required: true }, "archive-push": { required: true }, backup: { required: true }, "backup-copy": { required: true }, check: { required: true }, annotate: { required: true }, restore: { required: true }, "stanza-create": { required: true }, "stanza-delete": { required: true }, "stanza-upgrade": { required: true } } }),
  o({ name: "tcp-keep-alive-count", type: "integer", range: [1, 32], section: "global", commands: IO, summary: "Keep-alive probes before a connection is considered dead." }),
  o({ name: "tcp-keep-alive-idle", type: "integer", range: [1, 3600], section: "global", commands: IO, summary: "Seconds idle before keep-alive probes start." }),
  o({ name: "tcp-keep-alive-interval", type: "integer", range: [1, 900], section: "global", commands: IO, summary: "Seconds between keep-alive probes." }),

  // ---- log -----------------------------------------------------------------------------------
  o({ name: "log-level-console", type: "enum", default: "warn", allow: LOG_LEVELS, section: "global", commands: ALL, summary: "Level logged to stdout." }),
  o({ name: "log-level-file", type: "enum", default: "info", allow: LOG_LEVELS, section: "global", commands: ALL, summary: "Level logged to the log file." }),
  o({ name: "log-level-stderr", type: "enum", default: "warn", allow: LOG_LEVELS, section: "global", commands: ALL, summary: "Level logged to stderr (instead of stdout)." }),
  o({ name: "log-path", type: "path", default: "/var/log/pgbunker", section: "global", commands: ALL, summary: "Directory of log files (one per stanza and command)." }),
  o({ name: "log-subprocess", type: "boolean", default: "n", section: "global", commands: REPO, summary: "Let workers and remotes write their own log files." }),
  o({ name: "log-timestamp", type: "boolean", default: "y", section: "global", commands: ALL, summary: "Prefix log lines with a timestamp." }),

  // ---- repository ----------------------------------------------------------------------------
  o({ name: "repo", type: "integer", range: [1, 256], section: "cli", commands: ["annotate", "archive-get", "backup", "backup-copy", "expire", "info", "recovery-targets", "repo-get", "repo-ls", "repo-rekey", "restore", "stanza-delete", "verify"], summary: "Which configured repository to use (repoN)." }),
  o({ name: "repo-target", type: "integer", range: [1, 256], section: "cli", commands: ["backup-copy"], required: true, summary: "Repository the backups are copied into (repoN; --repo is the one they are copied from).", note: "pgbunker option." }),
  o({ name: "repo-block", type: "boolean", default: "n", indexed: "repo", section: "global", commands: ["backup"], summary: "Block-level incremental backup, in pgBackRest's format (needs repo-bundle): a changed file stores only its changed blocks and a map." }),
  o({ name: "repo-block-age-map", type: "hash", indexed: "repo", section: "global", commands: ["backup"], summary: "Block incremental age map DAYS=MULTIPLIER: files older than DAYS get blocks MULTIPLIER times larger (0: no block incremental); default 7=2, 14=4, 28=0." }),
  o({ name: "repo-block-checksum-size-map", type: "hash", indexed: "repo", section: "global", commands: ["backup"], summary: "Block incremental checksum size map BLOCK-SIZE=BYTES (at least 6); default 32KiB=7 up to 4MiB=12." }),
  o({ name: "repo-block-size-map", type: "hash", indexed: "repo", section: "global", commands: ["backup"], summary: "Block incremental size map FILE-SIZE=BLOCK-SIZE: files of at least FILE-SIZE use BLOCK-SIZE blocks; default 16KiB=8KiB up to 914MiB=88KiB." }),
  o({ name: "repo-block-size-super", type: "size", default: "256KiB", range: [32 * KiB, 16 * MiB], indexed: "repo", section: "global", commands: ["backup"], summary: "Block incremental super block size of diff/incr backups (changed blocks compressed together)." }),
  o({ name: "repo-block-size-super-full", type: "size", default: "1MiB", range: [32 * KiB, 16 * MiB], indexed: "repo", section: "global", commands: ["backup"], summary: "Block incremental super block size of full backups." }),
  o({ name: "repo-bundle", type: "boolean", default: "n", indexed: "repo", section: "global", commands: ["backup"], summary: "Bundle small files into larger repository files." }),
  o({ name: "repo-bundle-limit", type: "size", default: "2MiB", range: [8 * KiB, PiB], indexed: "repo", section: "global", commands: ["backup"], summary: "Largest file put in a bundle." }),
  o({ name: "repo-bundle-size", type: "size", default: "20MiB", range: [MiB, PiB], indexed: "repo", section: "global", commands: ["backup"], summary: "Target size of a bundle." }),
  o({ name: "repo-cipher-pass", type: "string", indexed: "repo", secure: true, section: "global", commands: REPO, summary: "Passphrase of an encrypted repository." }),
  o({ name: "repo-cipher-pass-new", type: "string", indexed: "repo", secure: true, section: "global", commands: ["repo-rekey"], summary: "The passphrase repo-rekey gives the repository (repo-cipher-pass is the current one).", note: "pgbunker option. After repo-rekey, set repo-cipher-pass to this value (and remove this option)." }),
  o({ name: "repo-cipher-type", type: "enum", default: "none", allow: ["none", "aes-256-cbc"], indexed: "repo", section: "global", commands: REPO, summary: "Repository encryption." }),
  o({ name: "repo-hardlink", type: "boolean", default: "n", indexed: "repo", section: "global", commands: ["backup"], summary: "Hard-link the files a diff or incr backup refers to into its own directory." }),
  o({ name: "repo-host", type: "string", indexed: "repo", section: "global", commands: REPO_HOST, summary: "Repository host reached over SSH or TLS (repo-host-type).", deprecated: ["backup-host"] }),
  o({ name: "repo-host-ca-file", type: "path", indexed: "repo", section: "global", commands: REPO_HOST, summary: `TLS: CA certificates that must have signed the repository host's server certificate ${TLS_CA_TEXT}.` }),
  o({ name: "repo-host-ca-path", type: "path", indexed: "repo", section: "global", commands: REPO_HOST, summary: `TLS: directory of CA certificates (PEM files) for the repository host ${TLS_CA_TEXT}.` }),
  o({ name: "repo-host-cert-file", type: "path", indexed: "repo", section: "global", commands: REPO_HOST, summary: "TLS: client certificate sent to the repository host to prove who we are (its CN must be in the server's tls-server-auth for the stanza; required with repo-host-type=tls)." }),
  o({ name: "repo-host-cmd", type: "path", indexed: "repo", section: "global", commands: REPO_HOST, summary: "pgbunker executable on the repository host.", deprecated: ["backup-cmd"] }),
  o({ name: "repo-host-config", type: "path", indexed: "repo", section: "global", commands: REPO_HOST, summary: `Configuration file on the repository host ${REMOTE_CONFIG_TEXT}.`, deprecated: ["backup-config"] }),
  o({ name: "repo-host-config-include-path", type: "path", indexed: "repo", section: "global", commands: REPO_HOST, summary: `Include path on the repository host ${REMOTE_CONFIG_TEXT}.` }),
  o({ name: "repo-host-config-path", type: "path", indexed: "repo", section: "global", commands: REPO_HOST, summary: `Configuration path on the repository host ${REMOTE_CONFIG_TEXT}.` }),
  o({ name: "repo-host-key-file", type: "path", indexed: "repo", section: "global", commands: REPO_HOST, summary: "SSH: private key for the repository host (default: ~/.ssh/id_ed25519, id_ecdsa, id_rsa). TLS: key of repo-host-cert-file (required with repo-host-type=tls)." }),
  o({ name: "repo-host-key-check", type: "enum", default: "strict", allow: ["strict", "accept-new"], indexed: "repo", section: "global", commands: REPO_HOST, summary: "SSH host key checking: strict refuses a host missing from known_hosts; accept-new records its key on first connection. A changed key is always refused.", note: "pgbunker option (pgBackRest relies on the ssh command's StrictHostKeyChecking)." }),
  o({ name: "repo-host-known-hosts", type: "path", indexed: "repo", section: "global", commands: REPO_HOST, summary: "known_hosts file for the repository host (default: ~/.ssh/known_hosts of the user; /etc/ssh/ssh_known_hosts is always read).", note: "pgbunker option (OpenSSH's UserKnownHostsFile)." }),
  o({ name: "repo-host-port", type: "integer", range: [0, 65535], indexed: "repo", section: "global", commands: REPO_HOST, summary: "Port of the repository host (default: 22 with ssh, 8432 with tls).", deprecated: ["backup-ssh-port"] }),
  o({ name: "repo-host-type", type: "enum", default: "ssh", allow: ["ssh", "tls"], indexed: "repo", section: "global", commands: REPO_HOST, summary: "Transport to the repository host: ssh (runs pgbunker remote there over SSH) or tls (connects to 'pgbunker server' there, with a client certificate)." }),
  o({ name: "repo-host-user", type: "string", default: "pgbackrest", indexed: "repo", section: "global", commands: REPO_HOST, summary: "User on the repository host.", deprecated: ["backup-user"] }),
  o({ name: "repo-path", type: "path", default: "/var/lib/pgbackrest", indexed: "repo", section: "global", commands: REPO, summary: "Repository directory.", note: "Same default as pgBackRest so an existing repository is found." }),
  o({ name: "repo-retention-archive", type: "integer", range: [1, 9999999], indexed: "repo", section: "global", commands: ["backup", "expire", "verify"], summary: "Backups whose WAL is kept for point-in-time recovery.", deprecated: ["retention-archive"], note: "Also read by verify, to tell WAL gaps made by archive retention from real ones." }),
  o({ name: "repo-retention-archive-type", type: "enum", default: "full", allow: ["full", "diff", "incr"], indexed: "repo", section: "global", commands: ["backup", "expire", "verify"], summary: "Backup type counted by repo-retention-archive.", deprecated: ["retention-archive-type"] }),
  o({ name: "repo-retention-diff", type: "integer", range: [1, 9999999], indexed: "repo", section: "global", commands: ["backup", "expire", "verify"], summary: "Differential backups to keep.", deprecated: ["retention-diff"] }),
  o({ name: "repo-retention-full", type: "integer", range: [1, 9999999], indexed: "repo", section: "global", commands: ["backup", "expire", "verify"], summary: "Full backups to keep (count) or days to keep them (time).", deprecated: ["retention-full"] }),
  o({ name: "repo-retention-full-type", type: "enum", default: "count", allow: ["count", "time"], indexed: "repo", section: "global", commands: ["backup", "expire", "verify"], summary: "How repo-retention-full is counted." }),
  o({ name: "repo-retention-history", type: "integer", range: [0, 9999999], indexed: "repo", section: "global", commands: ["backup", "expire"], summary: "Days of backup.history manifests to keep." }),
  o({ name: "repo-type", type: "enum", default: "posix", allow: ["azure", "cifs", "gcs", "posix", "s3", "sftp"], indexed: "repo", section: "global", commands: REPO, summary: "Repository storage type: posix, cifs, s3, azure, gcs or sftp." }),
  o({ name: "repo-sftp-host", type: "string", indexed: "repo", section: "global", commands: REPO, summary: "SFTP server holding the repository (repo-type=sftp; required)." }),
  o({ name: "repo-sftp-host-port", type: "integer", default: "22", range: [1, 65535], indexed: "repo", section: "global", commands: REPO, summary: "SSH port of the SFTP server." }),
  o({ name: "repo-sftp-host-user", type: "string", indexed: "repo", section: "global", commands: REPO, summary: "User on the SFTP server that owns the repository (required)." }),
  o({ name: "repo-sftp-private-key-file", type: "string", indexed: "repo", section: "global", commands: REPO, summary: "Private key to authenticate to the SFTP server with (required; a leading ~ is the user's home)." }),
  o({ name: "repo-sftp-public-key-file", type: "string", indexed: "repo", section: "global", commands: REPO, summary: "Public key of repo-sftp-private-key-file (optional: pgbunker derives it, and checks it matches when given)." }),
  o({ name: "repo-sftp-private-key-passphrase", type: "string", secure: true, indexed: "repo", section: "global", commands: REPO, summary: "Passphrase of repo-sftp-private-key-file, when it has one." }),
  o({ name: "repo-sftp-host-key-hash-type", type: "enum", allow: ["md5", "sha1", "sha256"], indexed: "repo", section: "global", commands: REPO, summary: "Digest of the server's host key that repo-sftp-host-fingerprint is written in.", note: "pgBackRest requires it whatever the check type; pgbunker only with repo-sftp-host-key-check-type=fingerprint." }),
  o({ name: "repo-sftp-host-fingerprint", type: "string", indexed: "repo", section: "global", commands: REPO, summary: "Hex digest of the server's host key (awk '{print $2}' ssh_host_xxx_key.pub | base64 -d | sha256sum), checked with repo-sftp-host-key-check-type=fingerprint." }),
  o({ name: "repo-sftp-host-key-check-type", type: "enum", default: "strict", allow: ["accept-new", "fingerprint", "none", "strict"], indexed: "repo", section: "global", commands: REPO, summary: "Host key check: strict refuses a server missing from the known hosts files; accept-new records its key on first connection; a changed key is always refused. fingerprint compares with repo-sftp-host-fingerprint; none checks nothing (warned on every command)." }),
  o({ name: "repo-sftp-known-host", type: "list", indexed: "repo", section: "global", commands: REPO, summary: "Known hosts file to check the server against (repeatable; full or ~ paths). Default: ~/.ssh/known_hosts, ~/.ssh/known_hosts2, /etc/ssh/ssh_known_hosts, /etc/ssh/ssh_known_hosts2." }),
  o({ name: "repo-storage-verify-tls", type: "boolean", default: "y", indexed: "repo", section: "global", commands: REPO, summary: "Verify the object store's TLS certificate.", deprecated: ["repo-azure-verify-tls", "repo-s3-verify-ssl", "repo-s3-verify-tls"], note: "n accepts any certificate: for tests only." }),
  // ---- S3 repositories (repoN-type=s3; repoN-path is the key prefix) --------------------------
  o({ name: "repo-s3-bucket", type: "string", indexed: "repo", section: "global", commands: REPO, summary: "S3 bucket holding the repository." }),
  o({ name: "repo-s3-endpoint", type: "string", indexed: "repo", section: "global", commands: REPO, summary: "S3 endpoint host name (e.g. s3.us-east-1.amazonaws.com)." }),
  o({ name: "repo-s3-region", type: "string", indexed: "repo", section: "global", commands: REPO, summary: "S3 region (signs every request)." }),
  o({ name: "repo-s3-key", type: "string", indexed: "repo", secure: true, section: "global", commands: REPO, summary: "S3 access key id (repo-s3-key-type=shared)." }),
  o({ name: "repo-s3-key-secret", type: "string", indexed: "repo", secure: true, section: "global", commands: REPO, summary: "S3 secret access key (repo-s3-key-type=shared)." }),
  o({ name: "repo-s3-token", type: "string", indexed: "repo", secure: true, section: "global", commands: REPO, summary: "S3 session token of temporary credentials." }),
  o({ name: "repo-s3-key-type", type: "enum", default: "shared", allow: ["shared", "auto", "web-id"], indexed: "repo", section: "global", commands: REPO, summary: "Where S3 credentials come from: shared keys (auto and web-id, from cloud metadata, are not supported yet)." }),
  o({ name: "repo-s3-uri-style", type: "enum", default: "host", allow: ["host", "path"], indexed: "repo", section: "global", commands: REPO, summary: "host: bucket.endpoint; path: endpoint/bucket." }),
  o({ name: "repo-s3-kms-key-id", type: "string", indexed: "repo", section: "global", commands: REPO, summary: "SSE-KMS key id: new objects are encrypted by the store with it." }),
  o({ name: "repo-s3-role", type: "string", indexed: "repo", section: "global", commands: REPO, summary: "AWS role of repo-s3-key-type=auto (not supported yet)." }),
  o({ name: "repo-storage-host", type: "string", indexed: "repo", section: "global", commands: REPO, summary: "Connect to this host instead of the endpoint.", deprecated: ["repo-azure-host", "repo-s3-host"] }),
  o({ name: "repo-storage-port", type: "integer", default: "443", range: [1, 65535], indexed: "repo", section: "global", commands: REPO, summary: "Object store port.", deprecated: ["repo-azure-port", "repo-s3-port"] }),
  o({ name: "repo-storage-ca-file", type: "path", indexed: "repo", section: "global", commands: REPO, summary: "CA certificate file (PEM) that verifies the object store.", deprecated: ["repo-azure-ca-file", "repo-s3-ca-file"] }),
  o({ name: "repo-storage-ca-path", type: "path", indexed: "repo", section: "global", commands: REPO, summary: "Directory of CA certificates that verify the object store.", deprecated: ["repo-azure-ca-path", "repo-s3-ca-path"] }),
  // pgBackRest 2.59.1's ranges: s3 5MiB..1GiB (S3's smallest part), azure and gcs 4MiB..1GiB.
  o({ name: "repo-storage-upload-chunk-size", type: "size", range: [4 * MiB, 1 * GiB], byValueOf: { option: "repo-type", defaults: {}, ranges: UPLOAD_CHUNK_RANGE }, indexed: "repo", section: "global", commands: REPO, summary: "Part, block or chunk size of uploads, and the memory each upload holds (default: s3 5MiB, azure and gcs 4MiB; range: s3 5MiB..1GiB, azure and gcs 4MiB..1GiB)." }),
  // ---- Azure Blob repositories (repoN-type=azure; repoN-path is the blob name prefix) ---------
  o({ name: "repo-azure-account", type: "string", indexed: "repo", secure: true, section: "global", commands: REPO, summary: "Azure storage account holding the repository." }),
  o({ name: "repo-azure-container", type: "string", indexed: "repo", section: "global", commands: REPO, summary: "Azure container holding the repository." }),
  o({ name: "repo-azure-endpoint", type: "string", default: "blob.core.windows.net", indexed: "repo", section: "global", commands: REPO, summary: "Azure blob service endpoint (account.endpoint with uri-style host)." }),
  o({ name: "repo-azure-key", type: "string", indexed: "repo", secure: true, section: "global", commands: REPO, summary: "Azure shared key (base64) or shared access signature, per repo-azure-key-type." }),
  o({ name: "repo-azure-key-type", type: "enum", default: "shared", allow: ["shared", "sas", "auto"], indexed: "repo", section: "global", commands: REPO, summary: "Azure authorization: shared key or sas (auto, managed identities, is refused)." }),
  o({ name: "repo-azure-uri-style", type: "enum", default: "host", allow: ["host", "path"], indexed: "repo", section: "global", commands: REPO, summary: "host: account.endpoint/container; path: endpoint/account/container (Azurite)." }),
  // ---- GCS repositories (repoN-type=gcs; repoN-path is the object name prefix) ---------------
  o({ name: "repo-gcs-bucket", type: "string", indexed: "repo", section: "global", commands: REPO, summary: "GCS bucket holding the repository." }),
  o({ name: "repo-gcs-endpoint", type: "string", default: "storage.googleapis.com", indexed: "repo", section: "global", commands: REPO, summary: "GCS endpoint host[:port] (JSON API)." }),
  o({ name: "repo-gcs-key", type: "string", indexed: "repo", secure: true, section: "global", commands: REPO, summary: "GCS service account key file (key-type service) or access token (key-type token)." }),
  o({ name: "repo-gcs-key-type", type: "enum", default: "service", allow: ["service", "token", "auto"], indexed: "repo", section: "global", commands: REPO, summary: "GCS authorization: service key file (signed JWT), token, or auto (the instance's service account from the metadata server)." }),
  o({ name: "repo-gcs-user-project", type: "string", indexed: "repo", section: "global", commands: REPO, summary: "GCS project billed for requests (requester pays buckets)." }),

  // ---- restore -------------------------------------------------------------------------------
  o({ name: "archive-mode", type: "enum", default: "preserve", allow: ["off", "preserve"], section: "global", commands: ["restore"], summary: "Keep archive_mode as it was, or turn it off in the restored cluster." }),
  o({ name: "db-exclude", type: "list", section: "global", commands: ["restore"], summary: "Database to restore as empty sparse files (repeatable)." }),
  o({ name: "db-include", type: "list", section: "global", commands: ["recovery-targets", "restore"], summary: "Restore only these user databases (repeatable); recovery-targets: count only their commits and aborts." }),
  o({ name: "force", type: "boolean", default: "n", section: "cli", commands: ["backup", "restore", "stanza-delete", "stop"], summary: "Force the operation (see the command's help)." }),
  o({ name: "link-all", type: "boolean", default: "n", section: "global", commands: ["restore"], summary: "Restore every symlink of the backup as a symlink." }),
  o({ name: "link-map", type: "hash", section: "global", commands: ["restore"], summary: "Restore link NAME to PATH (NAME=PATH, repeatable)." }),
  o({ name: "recovery-option", type: "hash", section: "global", commands: ["restore"], summary: "Recovery setting KEY=VALUE written into the recovery configuration (repeatable).", depends: { option: "type", values: ["default", "immediate", "lsn", "name", "standby", "time", "xid"] } }),
  o({ name: "set", type: "string", section: "cli", commands: ["annotate", "backup-copy", "expire", "info", "restore", "verify"], summary: "Backup set (label; backup-copy: unset copies every set).", byCommand: { restore: { default: "latest" }, annotate: { required: true } } }),
  o({ name: "tablespace-map", type: "hash", section: "global", commands: ["restore"], summary: "Restore tablespace NAME or OID to PATH (repeatable)." }),
  o({ name: "tablespace-map-all", type: "path", section: "global", commands: ["restore"], summary: "Restore all tablespaces under this directory." }),
  o({ name: "target", type: "string", section: "cli", commands: ["restore"], summary: "Recovery target (time, xid, lsn or restore point name, per --type).", depends: { option: "type", values: ["lsn", "name", "time", "xid"] } }),
  o({ name: "target-action", type: "enum", default: "pause", allow: ["pause", "promote", "shutdown"], section: "global", commands: ["restore"], summary: "What the cluster does when it reaches the target.", depends: { option: "type", values: ["immediate", "lsn", "name", "time", "xid"] } }),
  o({ name: "target-exclusive", type: "boolean", default: "n", section: "cli", commands: ["restore"], summary: "Stop just before the target instead of just after it.", depends: { option: "type", values: ["lsn", "time", "xid"] } }),
  o({ name: "target-timeline", type: "string", section: "global", commands: ["restore"], summary: "Timeline to recover along (number, current or latest).", depends: { option: "type", values: ["default", "lsn", "name", "standby", "time", "xid"] } /* as pgBackRest 2.45: not with immediate (restore sets it to current itself) */ }),
  o({
    name: "type", type: "enum", section: "cli", commands: ["backup", "info", "restore"], summary: "Backup type (backup, info) or recovery type (restore).",
    byCommand: {
      backup: { default: "incr", allow: ["full", "diff", "incr"] },
      info: { allow: ["full", "diff", "incr"] },
      restore: { default: "default", allow: ["default", "immediate", "lsn", "name", "none", "preserve", "standby", "time", "xid"] },
    },
  }),

  // ---- info / verify / repo-ls ---------------------------------------------------------------
  o({ name: "output", type: "enum", section: "cli", commands: ["info", "recovery-targets", "repo-ls", "verify"], summary: "Output format.", byCommand: { info: { default: "text", allow: ["text", "json"] }, "recovery-targets": { default: "text", allow: ["text", "json"] }, "repo-ls": { default: "text", allow: ["text", "json"] }, verify: { default: "none", allow: ["none", "text", "json"] } } }),
  o({ name: "time-start", type: "string", section: "cli", commands: ["recovery-targets"], summary: "List only restore points, commits and aborts at or after this time (YYYY-MM-DD HH:MM:SS[.frac][+/-HH[:MM]], local time without an offset).", note: "pgbunker option." }),
  o({ name: "time-stop", type: "string", section: "cli", commands: ["recovery-targets"], summary: "List only restore points, commits and aborts at or before this time (same format as time-start).", note: "pgbunker option." }),
  o({ name: "verbose", type: "boolean", default: "n", section: "cli", commands: ["verify"], summary: "Report every file checked, not only problems." }),
  o({ name: "filter", type: "string", section: "cli", commands: ["repo-ls"], summary: "Regular expression the listed names must match." }),
  o({ name: "recurse", type: "boolean", default: "n", section: "cli", commands: ["repo-ls"], summary: "List subdirectories too." }),
  o({ name: "sort", type: "enum", default: "asc", allow: ["none", "asc", "desc"], section: "cli", commands: ["repo-ls"], summary: "Sort order of the listing." }),
  o({ name: "ignore-missing", type: "boolean", default: "n", section: "cli", commands: ["repo-get"], summary: "Exit 1 with nothing printed, instead of failing, when the file is missing." }),
  o({ name: "online", type: "boolean", default: "y", section: "cli", commands: ["backup", "stanza-create", "stanza-upgrade"], summary: "Work with a running cluster (no: take values from pg_control of a stopped one)." }),

  // ---- stanza (PostgreSQL) -------------------------------------------------------------------
  o({ name: "pg-database", type: "string", default: "postgres", indexed: "pg", section: "stanza", commands: PG, summary: "Database to connect to." }),
  o({ name: "pg-host", type: "string", indexed: "pg", section: "stanza", commands: PG, summary: "Database host reached over SSH or TLS (pg-host-type).", deprecated: ["db-host"] }),
  o({ name: "pg-host-ca-file", type: "path", indexed: "pg", section: "stanza", commands: PG, summary: `TLS: CA certificates that must have signed the database host's server certificate ${TLS_CA_TEXT}.` }),
  o({ name: "pg-host-ca-path", type: "path", indexed: "pg", section: "stanza", commands: PG, summary: `TLS: directory of CA certificates (PEM files) for the database host ${TLS_CA_TEXT}.` }),
  o({ name: "pg-host-cert-file", type: "path", indexed: "pg", section: "stanza", commands: PG, summary: "TLS: client certificate sent to the database host to prove who we are (its CN must be in the server's tls-server-auth for the stanza; required with pg-host-type=tls)." }),
  o({ name: "pg-host-cmd", type: "path", indexed: "pg", section: "stanza", commands: PG, summary: "pgbunker executable on the database host.", deprecated: ["db-cmd"] }),
  o({ name: "pg-host-config", type: "path", indexed: "pg", section: "stanza", commands: PG, summary: `Configuration file on the database host ${REMOTE_CONFIG_TEXT}.`, deprecated: ["db-config"] }),
  o({ name: "pg-host-config-include-path", type: "path", indexed: "pg", section: "stanza", commands: PG, summary: `Include path on the database host ${REMOTE_CONFIG_TEXT}.` }),
  o({ name: "pg-host-config-path", type: "path", indexed: "pg", section: "stanza", commands: PG, summary: `Configuration path on the database host ${REMOTE_CONFIG_TEXT}.` }),
  o({ name: "pg-host-key-file", type: "path", indexed: "pg", section: "stanza", commands: PG, summary: "SSH: private key for the database host (default: ~/.ssh/id_ed25519, id_ecdsa, id_rsa). TLS: key of pg-host-cert-file (required with pg-host-type=tls)." }),
  o({ name: "pg-host-key-check", type: "enum", default: "strict", allow: ["strict", "accept-new"], indexed: "pg", section: "stanza", commands: PG, summary: "SSH host key checking: strict refuses a host missing from known_hosts; accept-new records its key on first connection. A changed key is always refused.", note: "pgbunker option (pgBackRest relies on the ssh command's StrictHostKeyChecking)." }),
  o({ name: "pg-host-known-hosts", type: "path", indexed: "pg", section: "stanza", commands: PG, summary: "known_hosts file for the database host (default: ~/.ssh/known_hosts of the user; /etc/ssh/ssh_known_hosts is always read).", note: "pgbunker option (OpenSSH's UserKnownHostsFile)." }),
  o({ name: "pg-host-port", type: "integer", range: [0, 65535], indexed: "pg", section: "stanza", commands: PG, summary: "Port of the database host (default: 22 with ssh, 8432 with tls).", deprecated: ["db-ssh-port"] }),
  o({ name: "pg-host-type", type: "enum", default: "ssh", allow: ["ssh", "tls"], indexed: "pg", section: "stanza", commands: PG, summary: "Transport to the database host: ssh (runs pgbunker remote there over SSH) or tls (connects to 'pgbunker server' there, with a client certificate)." }),
  o({ name: "pg-host-user", type: "string", default: "postgres", indexed: "pg", section: "stanza", commands: PG, summary: "User on the database host.", deprecated: ["db-user"] }),
  o({ name: "pg-path", type: "path", indexed: "pg", section: "stanza", commands: PG_PATH, summary: "PostgreSQL data directory.", deprecated: ["db-path"], byCommand: { "archive-get": { required: true }, "archive-push": { required: true }, backup: { required: true }, check: { required: true }, restore: { required: true }, "stanza-create": { required: true }, "stanza-upgrade": { required: true } } }),
  o({ name: "pg-port", type: "integer", default: "5432", range: [0, 65535], indexed: "pg", section: "stanza", commands: PG, summary: "PostgreSQL port.", deprecated: ["db-port"] }),
  o({ name: "pg-socket-path", type: "path", indexed: "pg", section: "stanza", commands: PG, summary: "Directory of PostgreSQL's unix socket.", deprecated: ["db-socket-path"] }),
  o({ name: "pg-user", type: "string", indexed: "pg", section: "stanza", commands: PG, summary: "PostgreSQL user to connect as (default: the OS user)." }),

  // ---- TLS server ----------------------------------------------------------------------------
  o({ name: "tls-server-address", type: "string", default: "localhost", section: "global", commands: SERVER_PING, summary: "Address the TLS server listens on (server-ping: the host to ping when none is given)." }),
  o({ name: "tls-server-port", type: "integer", default: "8432", range: [1, 65535], section: "global", commands: SERVER_PING, summary: "Port the TLS server listens on." }),
  o({ name: "tls-server-cert-file", type: "path", required: true, section: "global", commands: SERVER, summary: "Server certificate (PEM) sent to clients to prove this host's identity: its names must include the name clients connect to (repoN-host / pgN-host)." }),
  o({ name: "tls-server-key-file", type: "path", required: true, section: "global", commands: SERVER, summary: "Key of tls-server-cert-file (PEM, unencrypted)." }),
  o({ name: "tls-server-ca-file", type: "path", required: true, section: "global", commands: SERVER, summary: "CA certificates (PEM) one of which must have signed a client's certificate." }),
  o({ name: "tls-server-auth", type: "hash", required: true, section: "global", commands: SERVER, summary: "Clients allowed, CLIENT-CN=STANZA[,STANZA...] (repeatable; STANZA * for every stanza): a client whose certificate CN is not listed for the stanza it asks for is refused.", note: "A CN may not be a wildcard. Re-read on SIGHUP, as are the certificate files; the stanza sections are read for each connection." }),

  // ---- internal: set by pgbunker when it starts itself ---------------------------------------
  o({ name: "remote-type", type: "enum", allow: ["pg", "repo"], section: "cli", commands: ["remote"], summary: "Internal: which side this remote serves." }),
] as const satisfies readonly OptionDef[];

export const OPTIONS: readonly OptionDef[] = TABLE;

// ---- typed access -------------------------------------------------------------------------
// The keys a Config holds and the type of each value, derived from the table above, so that a
// misspelt option name or a wrong value type is a compile error rather than a silent undefined.

type Defs = (typeof TABLE)[number];
export type OptionName = Defs["name"];
type Rest<N, P extends string> = N extends `${P}-${infer R}` ? R : never;
/** The key of a table entry: `process-max`, `repo${number}-path`, `pg${number}-port`. */
type KeyOfDef<D> = D extends { indexed: "repo"; name: infer N }
  ? `repo${number}-${Rest<N, "repo">}`
  : D extends { indexed: "pg"; name: infer N }
    ? `pg${number}-${Rest<N, "pg">}`
    : D extends { name: infer N extends string }
      ? N
      : never;
export type OptionKey = KeyOfDef<Defs>;
/** Index-free names of the repoN- and pgN- options (`repo-path`), for Config.repoKey/pgKey. */
export type RepoOptionName = Extract<Defs, { indexed: "repo" }>["name"];
export type PgOptionName = Extract<Defs, { indexed: "pg" }>["name"];
type DefOfKey<K> = Defs extends infer D ? (D extends unknown ? (K extends KeyOfDef<D> ? D : never) : never) : never;
type ValueOfDef<D> = D extends { type: "boolean" }
  ? boolean
  : D extends { type: "integer" | "size" | "time" }
    ? number
    : D extends { type: "list" }
      ? string[]
      : D extends { type: "hash" }
        ? Record<string, string>
        : D extends { type: "enum"; allow: readonly (infer A)[] }
          ? A
          : string;
/** The type of an option's value. */
export type OptionValueOf<K extends OptionKey> = ValueOfDef<DefOfKey<K>>;
/** Options the table gives a default (byCommand may give another per command): their getter never returns undefined. */
export type DefaultedKey = { [K in OptionKey]: DefOfKey<K> extends { default: string } ? K : never }[OptionKey];

const BY_NAME = new Map(OPTIONS.map((d) => [d.name, d]));

export function optionDef(name: string): OptionDef | undefined {
  return BY_NAME.get(name);
}

export function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

export function optionValidFor(def: OptionDef, command: CommandName): boolean {
  return command === "remote" || def.commands.includes(command);
}

/** The effective default and allowed list of an option for a command. */
export function optionRules(def: OptionDef, command: CommandName): { default?: string; allow?: readonly string[]; required: boolean } {
  const over = def.byCommand?.[command];
  return {
    default: over?.default ?? def.default,
    allow: over?.allow ?? def.allow,
    required: over?.required ?? def.required ?? false,
  };
}

export const INDEX_MAX = { repo: 256, pg: 256 } as const;
