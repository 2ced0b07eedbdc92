/**
 * The wire format between pgbunker and a `pgbunker remote`: length-prefixed binary frames.
 *
 *   u32 length (big-endian, bytes that follow)  u8 type  u32 id  payload (length - 5 bytes)
 *
 * `id` is the request id, which is also the stream id of a file opened by that request. Control
 * payloads are UTF-8 JSON; DATA payloads are raw bytes, never re-encoded. A frame is at most
 * MAX_PAYLOAD bytes of payload, so a corrupt or foreign length is caught before it is buffered.
 */
import { concatBytes } from "../common/bytes.ts";
import { err } from "../common/error.ts";

export const FrameType = {
  /** server → client, first frame: {name, version, protocol}. */
  GREETING: 1,
  /** client → server: {cmd, ...params}. */
  REQUEST: 2,
  /** server → client: the request's JSON result. */
  RESPONSE: 3,
  /** either way: {kind, code, message, hints}; ends the request or stream with that id. */
  ERROR: 4,
  /** either way: file bytes of stream `id`. */
  DATA: 5,
  /** server → client: a read stream is complete: {results}. */
  END: 6,
  /** either way: u32 bytes the receiver of a stream has consumed (back-pressure window). */
  CREDIT: 7,
  /** client → server: stop stream `id` early. */
  CANCEL: 8,
  /** keep-alive, answered by PONG. */
  PING: 9,
  PONG: 10,
  /** client → server: the session is over, exit cleanly. */
  GOODBYE: 11,
} as const;
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

const TYPE_NAMES = new Map<number, string>(Object.entries(FrameType).map(([k, v]) => [v, k]));
export function frameTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `unknown(${type})`;
}

export const HEADER_SIZE = 9;
/** Largest payload a peer may send: a data chunk (buffer-size is at most 16MiB) or a big listing. */
export const MAX_PAYLOAD = 64 * 1024 * 1024;

export interface Frame {
  type: number;
  id: number;
  /** A view valid until the decoder is fed again (the receiver copies what it keeps). */
  payload: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The 9 header bytes of a frame whose payload has `size` bytes. */
function header(type: FrameTypeCode, id: number, size: number, into = new Uint8Array(HEADER_SIZE)): Uint8Array {
  if (size > MAX_PAYLOAD) throw err("AssertError", `frame payload of ${size} bytes exceeds ${MAX_PAYLOAD}`);
  const view = new DataView(into.buffer, into.byteOffset, HEADER_SIZE);
  view.setUint32(0, size + 5);
  view.setUint8(4, type);
  view.setUint32(5, id);
  return into;
}

/** One frame as a fresh buffer (control frames: small payloads, copied). */
export function encodeFrame(type: FrameTypeCode, id: number, payload?: Uint8Array): Uint8Array {
  const size = payload?.byteLength ?? 0;
  const out = new Uint8Array(HEADER_SIZE + size);
  header(type, id, size, out);
  if (payload) out.set(payload, HEADER_SIZE);
  return out;
}

/** A DATA frame as [header, payload]: the payload is not copied (transports write both parts). */
export function dataFrame(id: number, payload: Uint8Array): Uint8Array[] {
  return [header(FrameType.DATA, id, payload.byteLength), payload];
}

export function encodeJson(type: FrameTypeCode, id: number, value: unknown): Uint8Array {
  return encodeFrame(type, id, encoder.encode(JSON.stringify(value ?? null)));
}

export function encodeCredit(id: number, bytes: number): Uint8Array {
  const payload = new Uint8Array(4);
  new DataView(payload.buffer).setUint32(0, bytes);
  return encodeFrame(FrameType.CREDIT, id, payload);
}

export function decodeCredit(payload: Uint8Array): number {
  return new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
}

export function decodeJson<T>(payload: Uint8Array): T {
  return JSON.parse(decoder.decode(payload)) as T;
}

/**
 * Incremental decoder: feed it whatever the transport delivers, get whole frames back. A frame
 * that lies inside one chunk is handed out as a view (no copy); only frames split across chunks
 * are assembled. Transports hand over chunks they never reuse, so views stay valid.
 */
export class FrameDecoder {
  #pending: Uint8Array[] = [];
  #pendingSize = 0;
  /** Total size of the frame being assembled, once its length field has arrived. */
  #need: number | undefined;
  #head: Uint8Array = new Uint8Array(0);

  /** Decode every complete frame in `chunk` (plus what was left over), calling `onFrame` for each. */
  push(chunk: Uint8Array, onFrame: (f: Frame) => void): void {
    if (this.#head.byteLength < 64) this.#head = concatBytes([this.#head, chunk.subarray(0, 64 - this.#head.byteLength)]);
    let buf = chunk;
    if (this.#pendingSize > 0) {
      this.#pending.push(chunk);
      this.#pendingSize += chunk.byteLength;
      if (this.#need === undefined && this.#pendingSize >= 4) this.#need = 4 + this.#check(readLength(this.#pending));
      if (this.#need === undefined || this.#pendingSize < this.#need) return;
      buf = concatBytes(this.#pending);
      this.#pending = [];
      this.#pendingSize = 0;
      this.#need = undefined;
    }
    let pos = 0;
    while (buf.byteLength - pos >= 4) {
      const view = new DataView(buf.buffer, buf.byteOffset + pos);
      const length = this.#check(view.getUint32(0));
      if (buf.byteLength - pos < 4 + length) {
        this.#need = 4 + length;
        break;
      }
      onFrame({ type: view.getUint8(4), id: view.getUint32(5), payload: buf.subarray(pos + HEADER_SIZE, pos + 4 + length) });
      pos += 4 + length;
    }
    if (pos < buf.byteLength) {
      this.#pending = [buf.subarray(pos)];
      this.#pendingSize = buf.byteLength - pos;
    }
  }

  #check(length: number): number {
    if (length < 5 || length > MAX_PAYLOAD + 5) throw foreignBytes(this.#head, length);
    return length;
  }

  /** Bytes received that do not yet form a whole frame. */
  get buffered(): number {
    return this.#pendingSize;
  }

  /** The first bytes received (what a peer that is not a pgbunker remote said). */
  get head(): Uint8Array {
    return this.#head;
  }
}

/** The u32 length at the start of bytes split over several parts. */
function readLength(parts: Uint8Array[]): number {
  const four = new Uint8Array(4);
  let got = 0;
  for (const p of parts) {
    const n = Math.min(4 - got, p.byteLength);
    four.set(p.subarray(0, n), got);
    got += n;
    if (got === 4) break;
  }
  return new DataView(four.buffer).getUint32(0);
}

/** What to say when the peer sends something that is not a frame (a shell banner, another program). */
export function foreignBytes(head: Uint8Array, length?: number): Error {
  return err(
    "ProtocolError",
    `invalid protocol frame${length === undefined ? "" : ` (length ${length})`}: expected a pgbunker remote, received ${printable(head)}`,
    "make sure the remote command is pgbunker and that nothing (a login banner, a shell profile) writes to stdout on the remote host.",
  );
}

/** Up to 64 bytes as text with non-printable bytes escaped. */
export function printable(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes.subarray(0, 64)) s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : b === 0x0a ? "\\n" : `\\x${b.toString(16).padStart(2, "0")}`;
  return `'${s}'`;
}
