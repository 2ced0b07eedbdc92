/**
 * The 'server-ping' command: is a pgbunker TLS server answering at HOST (default
 * tls-server-address) on tls-server-port? Like pgBackRest's, it is an aliveness check only: no
 * client certificate is sent and the server's is not checked; the server must greet as a
 * pgbunker server of this version. Exit 0 when it does, a clear error otherwise.
 */
import { err } from "../../common/error.ts";
import { logInfo } from "../../common/log.ts";
import type { Config } from "../../config/parse.ts";
import { ProtocolClient } from "../../protocol/client.ts";
import { tlsConnect } from "../../protocol/tls.ts";

export async function run(cfg: Config): Promise<number> {
  if (cfg.params.length > 1) throw err("ParamInvalidError", `server-ping takes at most one HOST, found ${cfg.params.length}: ${cfg.params.join(" ")}`, "run: pgbunker server-ping [HOST]");
  const host = cfg.params[0] ?? cfg.req("tls-server-address");
  const port = cfg.num("tls-server-port") ?? 8432;
  const timeout = cfg.num("io-timeout") ?? 60;
  const transport = await tlsConnect({ host, port, connectTimeout: timeout, verify: false, option: "tls-server", locatedBy: "HOST, tls-server-port" });
  const client = await ProtocolClient.connect(transport, { peer: `server ${host}:${port}`, timeout, commandHint: `check that port ${port} on ${host} is a 'pgbunker server' (tls-server-port).` });
  logInfo(`pgbunker server on ${host}:${port} answered (version ${client.greeting.version}, pid ${client.greeting.pid ?? "?"})`);
  await client.close();
  return 0;
}
