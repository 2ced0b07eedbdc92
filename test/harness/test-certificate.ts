/**
 * A throwaway CA and a server certificate it signs, for the object-store engines of the tests
 * (RGW, Azurite, the GCS server): clients verify TLS with `caFile` as they would in production.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface TestCertificate {
  caFile: string;
  keyFile: string;
  certFile: string;
  /** Key then certificate in one file (RGW wants that). */
  pemFile: string;
}

function openssl(args: string[]): void {
  const r = Bun.spawnSync(["openssl", ...args], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr.toString()}`);
}

/**
 * In dir: ca.pem (+ ca.key), and `${name}.key`/.crt/.pem for 127.0.0.1, localhost and `extraDns`.
 * DNS:127.0.0.1 too: pgBackRest matches the host only against DNS names (and the CN).
 */
export function makeCertificate(dir: string, name: string, extraDns: string[] = []): TestCertificate {
  const f = (ext: string) => join(dir, `${name}.${ext}`);
  const caFile = join(dir, "ca.pem");
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=pgbunker test CA", "-keyout", join(dir, "ca.key"), "-out", caFile]);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", f("key"), "-out", f("csr")]);
  writeFileSync(f("ext"), `subjectAltName=IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost${extraDns.map((d) => `,DNS:${d}`).join("")}\n`);
  openssl(["x509", "-req", "-in", f("csr"), "-CA", caFile, "-CAkey", join(dir, "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", f("ext"), "-out", f("crt")]);
  writeFileSync(f("pem"), readFileSync(f("key"), "utf8") + readFileSync(f("crt"), "utf8"));
  return { caFile, keyFile: f("key"), certFile: f("crt"), pemFile: f("pem") };
}
