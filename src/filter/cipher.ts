/**
 * AES-256-CBC in OpenSSL's salted format, as pgBackRest encrypts repositories:
 * "Salted__" + 8-byte salt, then the ciphertext; key and IV from EVP_BytesToKey with SHA-1 and one
 * iteration over passphrase + salt. "Raw" (pgBackRest's block incremental and raw bundles) leaves
 * the magic out: the 8-byte salt, then the ciphertext.
 */
import type { Cipher, Decipher } from "node:crypto";
import { err } from "../common/error.ts";
import type { Emit, Filter, FilterSpec, PlainResult } from "./filter.ts";

/**
 * node:crypto, loaded on first use: importing it costs ~12ms of CPU at startup, which every
 * command (archive-push runs once per WAL segment) would pay although few use encryption.
 */
let nodeCrypto: typeof import("node:crypto") | undefined;
function crypto(): typeof import("node:crypto") {
  return (nodeCrypto ??= require("node:crypto") as typeof import("node:crypto"));
}

const MAGIC = new TextEncoder().encode("Salted__");

/** What to do when data does not decrypt (repository files are encrypted with passphrases kept in the info files). */
export const WRONG_PASS_HINT = "check repo-cipher-pass: it must be the passphrase the stanza was created with (if it is, the file is damaged: run 'pgbunker verify').";
const HEADER = 16;

/** OpenSSL EVP_BytesToKey(SHA-1, count 1): 32-byte key + 16-byte IV. */
export function bytesToKey(pass: Uint8Array, salt: Uint8Array): { key: Buffer; iv: Buffer } {
  const parts: Buffer[] = [];
  let prev: Buffer = Buffer.alloc(0);
  while (Buffer.concat(parts).length < 48) {
    prev = crypto().createHash("sha1").update(prev).update(pass).update(salt).digest();
    parts.push(prev);
  }
  const all = Buffer.concat(parts);
  return { key: all.subarray(0, 32), iv: all.subarray(32, 48) };
}

export class CipherFilter implements Filter {
  readonly spec: FilterSpec;
  readonly #pass: Uint8Array;
  #cipher: Cipher | Decipher | undefined;
  readonly #header = new Uint8Array(HEADER);
  #headerLen = 0;
  /** Bytes before the ciphertext: magic + salt, or only the salt when raw. */
  readonly #headerSize: number;

  constructor(spec: Extract<FilterSpec, { type: "encrypt" | "decrypt" }>) {
    this.spec = spec;
    this.#pass = new TextEncoder().encode(spec.pass);
    this.#headerSize = spec.raw ? HEADER - MAGIC.byteLength : HEADER;
  }

  #startEncrypt(emit: Emit): void {
    const salt = crypto().randomBytes(8);
    const { key, iv } = bytesToKey(this.#pass, salt);
    this.#cipher = crypto().createCipheriv("aes-256-cbc", key, iv);
    const head = new Uint8Array(this.#headerSize);
    if (this.#headerSize === HEADER) head.set(MAGIC, 0);
    head.set(salt, this.#headerSize - salt.byteLength);
    emit(head);
  }

  process(input: Uint8Array, emit: Emit): void {
    if (this.spec.type === "encrypt") {
      if (!this.#cipher) this.#startEncrypt(emit);
      const out = this.#cipher!.update(input);
      if (out.byteLength) emit(out);
      return;
    }
    let rest = input;
    if (!this.#cipher) {
      const size = this.#headerSize;
      const take = Math.min(size - this.#headerLen, rest.byteLength);
      this.#header.set(rest.subarray(0, take), this.#headerLen);
      this.#headerLen += take;
      rest = rest.subarray(take);
      if (this.#headerLen < size) return;
      if (size === HEADER && !MAGIC.every((b, i) => this.#header[i] === b))
        throw err("CryptoError", "cipher header invalid: the data is not encrypted or not in OpenSSL's salted format", "check repo-cipher-type and repo-cipher-pass.");
      const { key, iv } = bytesToKey(this.#pass, this.#header.subarray(size - 8, size));
      this.#cipher = crypto().createDecipheriv("aes-256-cbc", key, iv);
    }
    if (rest.byteLength) {
      const out = this.#cipher.update(rest);
      if (out.byteLength) emit(out);
    }
  }

  flush(emit: Emit): void {
    if (this.spec.type === "encrypt" && !this.#cipher) this.#startEncrypt(emit);
    if (!this.#cipher) throw err("CryptoError", "encrypted data is truncated: no cipher header", "the file is incomplete or corrupt.");
    let out: Buffer;
    try {
      out = this.#cipher.final();
    } catch {
      throw err("CryptoError", "unable to decrypt: wrong passphrase or corrupt data", WRONG_PASS_HINT);
    }
    if (out.byteLength) emit(out);
  }

  result(): PlainResult {
    return { type: this.spec.type as "encrypt" | "decrypt", id: this.spec.id };
  }
}
