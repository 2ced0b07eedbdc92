/** Counts the bytes that pass through. */
import type { Emit, Filter, FilterSpec, SizeResult } from "./filter.ts";

export class SizeFilter implements Filter {
  readonly spec: FilterSpec;
  #size = 0;

  constructor(spec: Extract<FilterSpec, { type: "size" }> = { type: "size" }) {
    this.spec = spec;
  }

  process(input: Uint8Array, emit: Emit): void {
    this.#size += input.byteLength;
    emit(input);
  }

  flush(_emit?: Emit): void {}

  result(): SizeResult {
    return { type: "size", id: this.spec.id, size: this.#size };
  }
}
