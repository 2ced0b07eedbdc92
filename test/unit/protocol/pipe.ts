/** A remote storage (and database) served over an in-process transport pair: the protocol without SSH. */
import type { Db } from "../../../src/postgres/client.ts";
import { ProtocolClient } from "../../../src/protocol/client.ts";
import { ProtocolServer } from "../../../src/command/remote/server.ts";
import type { OpenReply } from "../../../src/protocol/client.ts";
import { transportPair, type Transport } from "../../../src/protocol/transport.ts";
import { posix } from "../../../src/storage/posix/posix.ts";
import { RemoteDriver } from "../../../src/storage/remote/remote.ts";
import { Storage } from "../../../src/storage/storage.ts";

export interface PipeRemote {
  storage: Storage;
  client: ProtocolClient;
  server: ProtocolServer;
  served: Promise<{ clean: boolean }>;
  clientEnd: Transport;
  serverEnd: Transport;
}

export async function pipeRemote(base: string, opts: { timeout?: number; splitAt?: number; dbConnect?: () => Promise<Db>; serverVersion?: string; networkCompress?: boolean } = {}): Promise<PipeRemote> {
  const [clientEnd, serverEnd] = transportPair({ splitAt: opts.splitAt });
  const server = new ProtocolServer(serverEnd, {
    driver: posix,
    open: async () => ({ base }),
    dbConnect: opts.dbConnect,
    timeout: opts.timeout ?? 30,
    version: opts.serverVersion,
  });
  const served = server.serve();
  const client = await ProtocolClient.connect(clientEnd, { peer: "test pipe", timeout: opts.timeout ?? 30 });
  const open = await client.request<OpenReply>("open", {});
  const storage = new Storage(new RemoteDriver(client, open.features, { networkCompress: opts.networkCompress }), open.base);
  return { storage, client, server, served, clientEnd, serverEnd };
}
