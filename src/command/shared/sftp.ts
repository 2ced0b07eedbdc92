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
  // Options the check type does not read: refused on the command line as pgBackRest refuses
  // them; from a config file (which may serve other check types too) ignored, as pgBackRest does.
  const usable = (name: "host-fingerprint" | "known-host", types: readonly HostKeyCheck[], hint: string): boolean => {
    if (!cfg.has(key(name)) || types.includes(keyCheck)) return cfg.has(key(name));
    if (cfg.source(key(name)) === "cli")
      throw err("OptionInvalidError", `option '${key(name)}' not valid without option '${key("host-key-check-type")}' in (${types.map((t) => `'${t}'`).join(", ")})`, hint);
    return false;
  };
  const fingerprint = usable("host-fingerprint", ["fingerprint", "strict"], `remove ${key("host-fingerprint")}, or set ${key("host-key-check-type")}=fingerprint.`) ? cfg.str(key("host-fingerprint")) : undefined;
  const knownHosts = usable("known-host", ["accept-new", "strict"], `remove ${key("known-host")}: check type ${keyCheck} reads no known hosts file.`) ? cfg.list(key("known-host")) : [];

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
