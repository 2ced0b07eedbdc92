/**
 * A PostgreSQL session over the local unix socket (npm `postgres`). Every result comes back as
 * text (queries cast what they need), so the same rows can cross the remote protocol unchanged.
 *
 * `Db` is the interface commands use; a remote database host provides the same interface through
 * the protocol, so commands do not branch on local vs remote.
 */
import postgres from "postgres";
import { err } from "../common/error.ts";
import { logDebug } from "../common/log.ts";
import { userName } from "../common/user.ts";

export type Row = Record<string, string | null>;

export interface Db {
  /** Run one statement; rows with every column as text (or null). */
  query(sql: string): Promise<Row[]>;
  close(): Promise<void>;
  /** Where the session is connected, for messages. */
  readonly description: string;
}

export interface DbOptions {
  socketPath?: string;
  port: number;
  database: string;
  user?: string;
  /** Seconds a statement may run (db-timeout). */
  timeout: number;
  applicationName?: string;
}

const decoder = new TextDecoder();

export const DEFAULT_SOCKET_PATH = "/var/run/postgresql";

export class LocalDb implements Db {
  readonly description: string;
  readonly #sql: postgres.Sql;
  readonly #timeoutMs: number;
  #closed = false;

  private constructor(sql: postgres.Sql, description: string, timeoutMs: number) {
    this.#sql = sql;
    this.description = description;
    this.#timeoutMs = timeoutMs;
  }

  static async connect(opts: DbOptions): Promise<LocalDb> {
    const dir = opts.socketPath ?? DEFAULT_SOCKET_PATH;
    // Like libpq: the operating system user's name (from the password database, not $USER).
    const user = opts.user ?? userName(process.getuid?.() ?? -1) ?? process.env.USER ?? "postgres";
    const description = `dbname='${opts.database}' port=${opts.port} host='${dir}' user='${user}'`;
    const sql = postgres({
      path: `${dir}/.s.PGSQL.${opts.port}`,
      database: opts.database,
      username: user,
      max: 1,
      idle_timeout: 0,
      connect_timeout: Math.max(1, Math.ceil(Math.min(opts.timeout, 60))),
      onnotice: () => {},
      prepare: false,
      connection: { application_name: opts.applicationName ?? "pgbunker" },
      fetch_types: false,
    });
    const db = new LocalDb(sql, description, opts.timeout * 1000);
    try {
      await sql.unsafe("select 1");
    } catch (e) {
      await sql.end({ timeout: 1 }).catch(() => {});
      const msg = (e as Error).message;
      throw err("DbConnectError", `unable to connect to '${description}': ${msg}`, [
        "is PostgreSQL running, and do pg1-socket-path and pg1-port match its unix_socket_directories and port?",
      ]);
    }
    return db;
  }

  async query(text: string): Promise<Row[]> {
    logDebug(`db query: ${text}`);
    let timer: Timer | undefined;
    try {
      // raw(): every column as the server's text bytes, no client-side type parsing.
      const run = this.#sql.unsafe(text).raw();
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(err("DbQueryError", `query timed out after ${this.#timeoutMs / 1000}s: ${text}`, "raise db-timeout if the database is busy.")), this.#timeoutMs);
      });
      const result = await Promise.race([run, timeout]);
      const cols = (result as unknown as { columns: { name: string }[] }).columns ?? [];
      return (result as unknown as unknown[][]).map((vals) => {
        const row: Row = {};
        cols.forEach((c, i) => {
          const v = vals[i] as Uint8Array | null | undefined;
          row[c.name] = v === null || v === undefined ? null : decoder.decode(v);
        });
        return row;
      });
    } catch (e) {
      if ((e as { kind?: string }).kind) throw e;
      throw err("DbQueryError", `unable to execute query '${text}': ${(e as Error).message}`);
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#sql.end({ timeout: 5 }).catch(() => {});
  }
}
