/**
 * Verifies PostgreSQL data-page checksums of a relation file as its bytes stream past.
 * Whole pages go to the native helper in one call per buffer; a page split across two buffers is
 * completed in a small carry buffer. New (all-zero) pages are valid; pages with an LSN at or past
 * the backup start are skipped (they are being written and WAL replay will rewrite them).
 */
import { pageVerify } from "../native/helper.ts";
import type { Emit, Filter, FilterSpec, PageChecksumResult } from "./filter.ts";

/** Keep at most this many failed page numbers per file (the count is always exact). */
const ERROR_CAP = 65536;

export class PageChecksumFilter implements Filter {
  readonly spec: FilterSpec;
  readonly #pageSize: number;
  readonly #firstBlock: number;
  readonly #lsnLimit: bigint;
  readonly #carry: Uint8Array;
  #carryLen = 0;
  #pagesSeen = 0;
  #bad = new Uint32Array(1024);
  readonly #errors: number[] = [];
  #errorTotal = 0;
  #align = true;

  constructor(spec: Extract<FilterSpec, { type: "page-checksum" }>) {
    this.spec = spec;
    this.#pageSize = spec.pageSize ?? 8192;
    this.#firstBlock = spec.firstBlock;
    this.#lsnLimit = BigInt(spec.lsnLimit);
    this.#carry = new Uint8Array(this.#pageSize);
  }

  #verify(buf: Uint8Array, pages: number): void {
    if (this.#bad.length < pages) this.#bad = new Uint32Array(pages);
    const n = pageVerify(buf, pages, this.#pageSize, this.#firstBlock + this.#pagesSeen, this.#lsnLimit, this.#bad);
    for (let i = 0; i < n; i++) {
      if (this.#errors.length < ERROR_CAP) this.#errors.push(this.#pagesSeen + this.#bad[i]!);
    }
    this.#errorTotal += n;
    this.#pagesSeen += pages;
  }

  process(input: Uint8Array, emit: Emit): void {
    const ps = this.#pageSize;
    let pos = 0;
    if (this.#carryLen > 0) {
      const take = Math.min(ps - this.#carryLen, input.byteLength);
      this.#carry.set(input.subarray(0, take), this.#carryLen);
      this.#carryLen += take;
      pos = take;
      if (this.#carryLen === ps) {
        this.#verify(this.#carry, 1);
        this.#carryLen = 0;
      }
    }
    const whole = Math.floor((input.byteLength - pos) / ps);
    if (whole > 0) this.#verify(input.subarray(pos, pos + whole * ps), whole);
    pos += whole * ps;
    if (pos < input.byteLength) {
      this.#carry.set(input.subarray(pos), 0);
      this.#carryLen = input.byteLength - pos;
    }
    emit(input);
  }

  flush(_emit?: Emit): void {
    // A partial page at the end: PostgreSQL extends relations a whole page at a time, so this is a
    // file being extended (or truncated) right now; it is reported as misaligned, not as corrupt.
    if (this.#carryLen > 0) this.#align = false;
  }

  result(): PageChecksumResult {
    return {
      type: "page-checksum",
      id: this.spec.id,
      valid: this.#errorTotal === 0 && this.#align,
      align: this.#align,
      errors: this.#errors,
      errorTotal: this.#errorTotal,
    };
  }
}
