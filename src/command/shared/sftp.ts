/**
 * repoN-type=sftp: the repoN-sftp-* options as an SSH target for the SFTP driver, checked the way
 * pgBackRest checks them (same required options and combinations), so one configuration file
 * serves both. The target is plain data: it travels to worker threads inside a StorageSpec, each
 * of which opens its own SFTP session.
 */
import { join } from "node:path";
import { err } from "../../common/error.ts";
import { logWarn } from "../../common/log.ts";
import { userHome } from "../../common/user.ts";
import type { Config } from "../../config/parse.ts";
import type { HostKeyCheck, HostKeyHash, SshTarget } from "../../protocol/ssh.ts";

/** pgBackRest's default known hosts files for SFTP (OpenSSH's, with the *2 files). */
function defaultKnownHosts(): string[] {
  const ssh = join(userHome() ?? "/", ".ssh");
  return [join(ssh, "known_hosts"), join(ssh, "known_hosts2"), "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];
}

/** `~/x` → the user's home; other paths must be absolute. */
function expandPath(path: string, option: string): string {
  const p = path.trim();
  if (p === "~" || p.startsWith("~/")) return join(userHome() ?? "/", p.slice(1));
  if (!p.startsWith("/")) throw err("OptionInvalidValueError", `'${path}' is not a valid value for option '${option}'`, "give a full path, or one that starts with ~/ (the home of the user running pgbunker).");
  return p;
}

export function sftpTarget(cfg: Config, index: number): SshTarget {
  const key = <N extends string>(name: N) => `repo${index}-sftp-${name}` as const;
  const required = (name: "host" | "host-user" | "private-key-file") => {
    const v = cfg.str(key(name));
    if (v === undefined) throw err("OptionRequiredError", `${cfg.command} command requires option: ${key(name)}`, `repo${index}-type=sftp needs repo${index}-sftp-host, -sftp-host-user and -sftp-private-key-file.`);
    return v;
  };
  const host = required("host");
  const user = required("host-user");
  const keyFile = expandPath(required("private-key-file"), key("private-key-file"));
  const keyCheck = (cfg.str(key("host-key-check-type")) ?? "strict") as HostKeyCheck;
  const fingerprint = cfg.str(key("host-fingerprint"));
  const knownHosts = cfg.list(key("known-host"));

  if (fingerprint !== undefined && keyCheck !== "fingerprint" && keyCheck !== "strict")
    throw err("OptionInvalidError", `option '${key("host-fingerprint")}' not valid without option '${key("host-key-check-type")}' in ('fingerprint', 'strict')`, `remove ${key("host-fingerprint")}, or set ${key("host-key-check-type")}=fingerprint.`);
  if (knownHosts.length > 0 && keyCheck !== "strict" && keyCheck !== "accept-new")
    throw err("OptionInvalidError", `option '${key("known-host")}' not valid without option '${key("host-key-check-type")}' in ('accept-new', 'strict')`, `remove ${key("known-host")}: check type ${keyCheck} reads no known hosts file.`);
  let pinned: SshTarget["fingerprint"];
  if (keyCheck === "fingerprint") {
    if (fingerprint === undefined) throw err("OptionRequiredError", `${cfg.command} command requires option: ${key("host-fingerprint")}`, `${key("host-key-check-type")}=fingerprint compares the server's host key with it.`);
    const hash = cfg.str(key("host-key-hash-type")) as HostKeyHash | undefined;
    if (hash === undefined) throw err("OptionRequiredError", `${cfg.command} command requires option: ${key("host-key-hash-type")}`, `it says which digest ${key("host-fingerprint")} is (md5, sha1 or sha256).`);
    pinned = { hash, value: fingerprint };
  }

  const passphrase = cfg.str(key("private-key-passphrase"));
  const publicKey = cfg.str(key("public-key-file"));
  return {
    host,
    port: cfg.num(key("host-port")) ?? 22,
    user,
    keyFile,
    ...(passphrase !== undefined ? { passphrase } : {}),
    ...(publicKey !== undefined ? { publicKeyFile: expandPath(publicKey, key("public-key-file")) } : {}),
    knownHostsFiles: knownHosts.length > 0 ? knownHosts.map((f) => expandPath(f, key("known-host"))) : defaultKnownHosts(),
    keyCheck,
    ...(pinned ? { fingerprint: pinned } : {}),
    connectTimeout: cfg.num("io-timeout") ?? 60,
    option: key("host"),
    names: { port: key("host-port"), user: key("host-user"), keyFile: key("private-key-file"), keyCheck: key("host-key-check-type") },
  };
}

const warned = new Set<string>();

/** Say, once per command and server, that its host key is not checked (check type none). */
export function warnUnchecked(t: SshTarget): void {
  if (t.keyCheck !== "none" || warned.has(t.option)) return;
  warned.add(t.option);
  logWarn(`the host key of SFTP server '${t.host}:${t.port}' is not checked (${t.names?.keyCheck ?? t.option}=none): anyone between here and it can read and change the repository`);
}
