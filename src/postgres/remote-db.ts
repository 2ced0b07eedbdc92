/**
 * A PostgreSQL session on a database host, through its `pgbunker remote`: the remote connects to
 * its local unix socket and keeps the session open across queries until close(), so a
 * non-exclusive backup's start and stop run on one session. No PostgreSQL port is opened to the
 * backup host.
 */
import type { Db, Row } from "./client.ts";
import type { ProtocolClient } from "../protocol/client.ts";

export class RemoteDb implements Db {
  readonly description: string;
  readonly #client: ProtocolClient;
  readonly #session: number;
  readonly #release: (() => Promise<void>) | undefined;
  #closed = false;

  private constructor(client: ProtocolClient, session: number, description: string, release?: () => Promise<void>) {
    this.#client = client;
    this.#session = session;
    this.description = description;
    this.#release = release;
  }

  static async open(client: ProtocolClient, release?: () => Promise<void>): Promise<RemoteDb> {
    const { session, description } = await client.request<{ session: number; description: string }>("dbOpen");
    return new RemoteDb(client, session, `${description} on ${client.peer}`, release);
  }

  query(sql: string): Promise<Row[]> {
    return this.#client.request<Row[]>("dbQuery", { session: this.#session, sql });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#client.alive) await this.#client.request("dbClose", { session: this.#session }).catch(() => {});
    await this.#release?.();
  }
}
