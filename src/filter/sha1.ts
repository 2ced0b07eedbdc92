/** SHA-1 of the bytes that pass through (Bun.CryptoHasher: native, no copies). */
import type { Emit, Filter, FilterSpec, Sha1Result } from "./filter.ts";

export class Sha1Filter implements Filter {
  readonly spec: FilterSpec;
  readonly #hasher = new Bun.CryptoHasher("sha1");
  #hash: string | undefined;

  constructor(spec: Extract<FilterSpec, { type: "sha1" }> = { type: "sha1" }) {
    this.spec = spec;
  }

  process(input: Uint8Array, emit: Emit): void {
    this.#hasher.update(input);
    emit(input);
  }

  flush(_emit?: Emit): void {
    this.#hash = this.#hasher.digest("hex");
  }

  result(): Sha1Result {
    return { type: "sha1", id: this.spec.id, hash: this.#hash ?? "" };
  }
}

/** SHA-1 of a whole buffer (small files: info files, manifests, WAL headers). */
export function sha1Hex(data: Uint8Array | string): string {
  return new Bun.CryptoHasher("sha1").update(data).digest("hex");
}
