/**
 * One SFTP session: an SSH connection (protocol/ssh.ts: the same host key and key rules as the
 * SSH remote) with the `sftp` subsystem open on it, its requests as promises, and SFTP's answers
 * turned into pgbunker errors.
 *
 * SFTP status codes are coarse (OpenSSH's sftp-server says "Failure" for EEXIST, ENOTDIR,
 * ENOSPC ...): NO_SUCH_FILE and PERMISSION_DENIED map to ENOENT and EACCES so the posix messages
 * and kinds apply (fromSystemError); the rest keep the server's words. A request that fails
 * because the connection went away is a HostConnectError and marks the session broken, so a
 * worker reconnects (workerStorage) and job-retry may try the job again.
 */
import type { Client, SFTPWrapper } from "ssh2";
import { err, fromSystemError, PgbError } from "../../common/error.ts";
import { logDebug } from "../../common/log.ts";
import { sshConnect, type SshTarget } from "../../protocol/ssh.ts";

type Action = Parameters<typeof fromSystemError>[1];

/** SFTP v3 status codes (draft-ietf-secsh-filexfer-02) that carry a meaning we use. */
const STATUS_NO_SUCH_FILE = 2;
const STATUS_PERMISSION_DENIED = 3;

/** OpenSSH extensions the driver uses when the server offers them. */
export type SftpExtension =
  | "posix-rename@openssh.com"
  | "fsync@openssh.com"
  | "hardlink@openssh.com"
  | "lsetstat@openssh.com";

/** The SFTP status of a failed request (undefined for a lost connection). */
export function statusOf(e: unknown): number | undefined {
  const code = (e as { code?: unknown })?.code;
  return e instanceof PgbError || typeof code !== "number" ? undefined : code;
}

/** The request failed because the path (or its parent) does not exist. */
export function isMissing(e: unknown): boolean {
  return statusOf(e) === STATUS_NO_SUCH_FILE;
}

export class SftpSession {
  readonly sftp: SFTPWrapper;
  readonly #client: Client;
  readonly where: string;
  #lost: string | undefined;
  readonly #extensions: Record<string, string>;

  private constructor(client: Client, sftp: SFTPWrapper, where: string) {
    this.#client = client;
    this.sftp = sftp;
    this.where = where;
    // ssh2 keeps the server's extension list private; its ext_* methods throw when one is missing.
    this.#extensions = (sftp as unknown as { _extensions?: Record<string, string> })._extensions ?? {};
    const lost = (why: string) => {
      this.#lost ??= why;
    };
    client.on("error", (e: Error) => lost(e.message));
    client.on("close", () => lost("the SSH connection closed"));
    sftp.on("close", () => lost("the SFTP channel closed"));
  }

  /** Connect, authenticate and start the sftp subsystem. `timeout` (io-timeout, seconds) also bounds a silent server. */
  static async open(t: SshTarget, timeout: number): Promise<SftpSession> {
    const client = await sshConnect(t, { keepalive: timeout });
    const where = `${t.user}@${t.host}:${t.port}`;
    const sftp = await new Promise<SFTPWrapper>((resolve, reject) => {
      client.sftp((e, s) => (e ? reject(e) : resolve(s)));
    }).catch((e: Error) => {
      client.end();
      throw err("HostConnectError", `unable to start SFTP on ${where}: ${e.message}`, "the server must offer the sftp subsystem (sshd_config: Subsystem sftp internal-sftp, or sftp-server).");
    });
    const session = new SftpSession(client, sftp, where);
    logDebug(`sftp ${where}: extensions ${Object.keys(session.#extensions).join(", ") || "none"}`);
    return session;
  }

  get broken(): boolean {
    return this.#lost !== undefined;
  }

  /**
   * The largest write ssh2 sends as one request (the server's limits@openssh.com, else SFTP's
   * portable 34000-byte packet less overhead). Only a piece up to this size is copied when
   * written: ssh2 sends the rest of a longer one later, from the caller's buffer.
   */
  get maxWrite(): number {
    return (this.sftp as unknown as { _maxWriteLen?: number })._maxWriteLen ?? 31_952;
  }

  has(ext: SftpExtension): boolean {
    return this.#extensions[ext] !== undefined;
  }

  /**
   * Run one request; a failure is the SFTP error as the server gave it (`status` tells what it
   * was: statusOf), or HostConnectError when the connection is gone.
   */
  request<T = void>(start: (cb: (e: Error | null | undefined, value?: T) => void) => void): Promise<T> {
    if (this.#lost) return Promise.reject(this.lostError());
    return new Promise<T>((resolve, reject) => {
      const fail = (e: Error) => {
        if (typeof (e as { code?: unknown }).code === "number") return reject(e);
        // No status: ssh2 failed the request because the channel closed ("No response from
        // server") or is no longer writable.
        this.#lost ??= e.message;
        reject(this.lostError());
      };
      try {
        start((e, value) => (e ? fail(e) : resolve(value as T)));
      } catch (e) {
        fail(e as Error);
      }
    });
  }

  /** request(), with a failure turned into the error `action` on `path` means (FileMissingError for a missing file read, ...). */
  async call<T = void>(action: Action, path: string, start: (cb: (e: Error | null | undefined, value?: T) => void) => void): Promise<T> {
    try {
      return await this.request(start);
    } catch (e) {
      throw this.error(e, action, path);
    }
  }

  /** The pgbunker error for a failed request. */
  error(e: unknown, action: Action, path: string): PgbError {
    if (e instanceof PgbError) return e;
    const status = statusOf(e);
    const code = status === STATUS_NO_SUCH_FILE ? "ENOENT" : status === STATUS_PERMISSION_DENIED ? "EACCES" : undefined;
    return fromSystemError({ code, message: `the SFTP server said '${(e as Error).message}'` }, action, path);
  }

  lostError(): PgbError {
    return err("HostConnectError", `the SFTP connection to ${this.where} was lost: ${this.#lost}`, "check that the SFTP server is up and reachable; the command can be run again (a backup resumes).");
  }

  close(): void {
    this.#lost ??= "closed";
    this.#client.end();
  }
}
