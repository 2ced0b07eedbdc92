/**
 * SHA-1 through the system libcrypto (OpenSSL 3, EVP API), one FFI call per buffer.
 *
 * Why not Bun.CryptoHasher: its SHA-1 ran at ~380 MB/s on the bench machine (44 ms for one 16 MiB
 * WAL segment), OpenSSL's, which uses the CPU's SHA extensions, at ~1.7 GB/s (9-12 ms; the same
 * library pgBackRest hashes with). Every file a backup stores and every segment archive-push sends
 * is hashed, so this is on the hot path of both. node:crypto is as fast but costs ~8 ms to load,
 * which archive-push would pay per segment.
 *
 * libcrypto is loaded on first use; where it cannot be loaded, Bun.CryptoHasher does the work
 * (slower, same result).
 */
import { dlopen, FFIType, type ConvertFns, type Pointer } from "bun:ffi";

const SYMBOLS = {
  EVP_sha1: { args: [], returns: FFIType.ptr },
  EVP_MD_CTX_new: { args: [], returns: FFIType.ptr },
  EVP_MD_CTX_free: { args: [FFIType.ptr], returns: FFIType.void },
  EVP_DigestInit_ex: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  EVP_DigestUpdate: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  EVP_DigestFinal_ex: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
} as const;

type Lib = ConvertFns<typeof SYMBOLS>;

let lib: Lib | null | undefined;
let md: Pointer | null = null;

/** libcrypto, or null when it cannot be loaded (then Bun.CryptoHasher is used). */
function crypto(): Lib | null {
  if (lib !== undefined) return lib;
  try {
    lib = dlopen("libcrypto.so.3", SYMBOLS).symbols;
    md = lib.EVP_sha1() as Pointer | null;
    if (md === null) lib = null;
  } catch {
    lib = null;
  }
  return lib;
}

const cleanup = new FinalizationRegistry<Pointer>((ctx) => lib?.EVP_MD_CTX_free(ctx));
const encoder = new TextEncoder();

/** A streaming SHA-1: update() any number of times, then digest() once. */
export class Sha1 {
  #ctx: Pointer | null = null;
  #fallback: Bun.CryptoHasher | undefined;

  constructor() {
    const l = crypto();
    const ctx = (l?.EVP_MD_CTX_new() ?? null) as Pointer | null;
    if (l && ctx !== null && l.EVP_DigestInit_ex(ctx, md, null) === 1) {
      this.#ctx = ctx;
      cleanup.register(this, ctx, this);
    } else {
      if (l && ctx !== null) l.EVP_MD_CTX_free(ctx);
      this.#fallback = new Bun.CryptoHasher("sha1");
    }
  }

  update(data: Uint8Array | string): this {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    if (this.#fallback) this.#fallback.update(bytes);
    else if (bytes.byteLength > 0 && lib!.EVP_DigestUpdate(this.#ctx, bytes, bytes.byteLength) !== 1) throw new Error("EVP_DigestUpdate(sha1) failed");
    return this;
  }

  /** The digest as 40 lowercase hex digits; the hasher is spent. */
  digest(): string {
    if (this.#fallback) return this.#fallback.digest("hex");
    const out = new Uint8Array(20);
    const ok = lib!.EVP_DigestFinal_ex(this.#ctx, out, null) === 1;
    cleanup.unregister(this);
    lib!.EVP_MD_CTX_free(this.#ctx);
    this.#ctx = null;
    if (!ok) throw new Error("EVP_DigestFinal_ex(sha1) failed");
    return Buffer.from(out.buffer, 0, 20).toString("hex");
  }
}
