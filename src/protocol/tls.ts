/**
 * TLS transport (Bun's node:tls, i.e. BoringSSL: no crypto of our own): the client side connects
 * to a `pgbunker server` with a client certificate and checks the server's certificate against
 * the configured CAs and the host name; both sides carry the protocol on the TLS stream.
 *
 * Mutual TLS is decided by the server (command/server/): it asks for a certificate, completes
 * the handshake whatever it gets, and refuses an untrusted or missing certificate with a
 * protocol error the client can print, rather than a bare TLS alert.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import { concatBytes } from "../common/bytes.ts";
import { err, type PgbError } from "../common/error.ts";
import { logDebug } from "../common/log.ts";
import type { Transport } from "./transport.ts";

export interface TlsTarget {
  host: string;
  port: number;
  /** Client certificate and its key (PEM); without them the server only answers a ping. */
  certFile?: string;
  keyFile?: string;
  /** false: do not check the server's certificate (server-ping: aliveness only). */
  verify?: boolean;
  /** CAs for the server certificate (else the system's). */
  caFile?: string;
  caPath?: string;
  /** Seconds to wait for the TCP connection and the TLS handshake. */
  connectTimeout: number;
  /** Option prefix for hints: `repo1-host`, `pg1-host`. */
  option: string;
  /** What names the host and port, for hints (default: the option and its -port). */
  locatedBy?: string;
}

/** Read a PEM file named by an option; a clear error names the option. */
export function readPem(file: string, option: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw err("FileOpenError", `unable to read '${file}' (${option}): ${(e as Error).message}`, "the file must exist and be readable by the user running pgbunker.");
  }
}

/**
 * The CA certificates from a file and/or a directory (every regular file in it, as OpenSSL's
 * hashed CApath holds them); undefined when neither is set, so the system store applies.
 */
export function readCas(caFile: string | undefined, caPath: string | undefined, option: string): string[] | undefined {
  if (!caFile && !caPath) return undefined;
  const out: string[] = [];
  if (caFile) out.push(readPem(caFile, `${option}-ca-file`));
  if (caPath) {
    let names: string[];
    try {
      names = readdirSync(caPath).sort();
    } catch (e) {
      throw err("PathOpenError", `unable to list CA path '${caPath}' (${option}-ca-path): ${(e as Error).message}`);
    }
    for (const name of names) {
      const file = join(caPath, name);
      if (statSync(file).isFile()) out.push(readPem(file, `${option}-ca-path`));
    }
  }
  return out;
}

function where(t: { host: string; port: number }): string {
  return `${t.host}:${t.port}`;
}

/** Certificate verification failures, as OpenSSL names them (the server's certificate). */
const UNTRUSTED = /CERT|SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY|ALTNAME|ISSUER/;

/** What OpenSSL says when the peer answers with something other than TLS (sshd, HTTP). */
const NOT_TLS = /WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|UNKNOWN_PROTOCOL|HTTP_REQUEST/;

function connectError(t: TlsTarget, e: Error & { code?: string }): PgbError {
  const code = e.code ?? "";
  if (NOT_TLS.test(code))
    return err(
      "HostConnectError",
      `unable to connect to ${where(t)} over TLS: the server does not speak TLS (${code})`,
      `port ${t.port} on ${t.host} runs another service: point ${t.locatedBy ?? `${t.option}-port`} at the port of 'pgbunker server' there (tls-server-port, default 8432).`,
    );
  if (UNTRUSTED.test(code))
    return err(
      "HostConnectError",
      `unable to connect to ${where(t)} over TLS: the server's certificate is not trusted (${code}: ${e.message})`,
      [
        `${t.option}-ca-file (or ${t.option}-ca-path) must hold the CA that signed the server's certificate (tls-server-cert-file on ${t.host}),`,
        `and that certificate must name '${t.host}' (${t.option}) in its subject alternative names.`,
      ],
    );
  return err(
    "HostConnectError",
    `unable to connect to ${where(t)} over TLS: ${code ? `${code}: ` : ""}${e.message}`,
    `check that 'pgbunker server' runs on ${t.host} and listens on port ${t.port} (${t.locatedBy ?? `${t.option}, ${t.option}-port`}; tls-server-address and tls-server-port there).`,
  );
}

/** Connect with our client certificate and check the server's; the socket carries the protocol. */
export function tlsConnect(t: TlsTarget): Promise<Transport> {
  const cert = t.certFile ? readPem(t.certFile, `${t.option}-cert-file`) : undefined;
  const key = t.keyFile ? readPem(t.keyFile, `${t.option}-key-file`) : undefined;
  const ca = readCas(t.caFile, t.caPath, t.option);
  return new Promise<Transport>((resolve, reject) => {
    let settled = false;
    let socket: TLSSocket;
    try {
      socket = connect({ host: t.host, port: t.port, servername: isIp(t.host) ? undefined : t.host, cert, key, ca, rejectUnauthorized: t.verify !== false });
    } catch (e) {
      // Raised before any connection: the PEM files are not a certificate, key or CA, or do not match.
      return reject(err("FileInvalidError", `unable to use the TLS files of ${t.option} (${t.option}-cert-file, -key-file, -ca-file/-ca-path): ${(e as Error).message}`, "each must be PEM: the client certificate, its unencrypted key, the CA certificates."));
    }
    const fail = (e: PgbError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    };
    const timer = setTimeout(
      () => fail(err("HostConnectError", `unable to connect to ${where(t)} over TLS: no answer within ${t.connectTimeout}s (io-timeout)`, `check that ${t.host} is reachable on port ${t.port}.`)),
      t.connectTimeout * 1000,
    );
    socket.once("secureConnect", () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      logDebug(`tls ${where(t)}: connected (${socket.getProtocol()}, ${socket.getCipher()?.name})`);
      resolve(tlsTransport(socket));
    });
    socket.once("error", (e: Error & { code?: string }) => fail(connectError(t, e)));
    socket.once("close", () => fail(err("HostConnectError", `unable to connect to ${where(t)} over TLS: the server closed the connection during the handshake`, `check that port ${t.port} on ${t.host} is a 'pgbunker server' (not another service).`)));
  });
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}

/**
 * A TLS socket (either side) as a Transport. Writes are copied (the caller reuses its buffers);
 * the protocol's credits bound what waits in the socket's queue.
 */
export function tlsTransport(socket: TLSSocket): Transport {
  let closed = false;
  let onCloseCb: ((error?: Error) => void) | undefined;
  const finish = (e?: Error) => {
    if (closed) return;
    closed = true;
    onCloseCb?.(e);
  };
  return {
    write(parts) {
      if (!closed && !socket.destroyed) socket.write(concatBytes(parts));
    },
    start(onData, onClose) {
      onCloseCb = onClose;
      socket.on("data", (chunk: Uint8Array) => onData(chunk));
      socket.on("end", () => finish());
      socket.on("error", (e: Error) => finish(e));
      socket.on("close", () => finish(new Error("the TLS connection closed")));
    },
    close() {
      if (closed) return;
      closed = true;
      socket.end();
    },
  };
}
