/**
 * CRC-32C of the bytes that pass through (native, hardware where the CPU has it: ~10 GB/s). Used
 * where two reads of the same bytes must be shown equal cheaply: a large file's chunk jobs and its
 * whole-file SHA-1 job read the file separately (backup/chunk.ts), and a page PostgreSQL wrote in
 * between would otherwise leave the stored bytes and the recorded SHA-1 disagreeing.
 */
import { crc32c } from "../native/helper.ts";
import type { Crc32cResult, Emit, Filter, FilterSpec } from "./filter.ts";

export class Crc32cFilter implements Filter {
  readonly spec: FilterSpec;
  #crc = 0;

  constructor(spec: Extract<FilterSpec, { type: "crc32c" }>) {
    this.spec = spec;
  }

  process(input: Uint8Array, emit: Emit): void {
    this.#crc = crc32c(input, this.#crc);
    emit(input);
  }

  flush(): void {}

  result(): Crc32cResult {
    return { type: "crc32c", id: this.spec.id, crc: this.#crc };
  }
}
