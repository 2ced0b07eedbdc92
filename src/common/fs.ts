/**
 * Durability helpers for local files: fsync a directory after a rename so the rename survives a
 * crash, and write a whole file atomically (temp name, fsync, rename, directory fsync).
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { fromSystemError } from "./error.ts";

export function fsyncPath(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw fromSystemError(e, "path-open", path);
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    // Some file systems (and /proc-like mounts) refuse directory fsync; that is not data loss.
    if ((e as { code?: string }).code !== "EINVAL") throw fromSystemError(e, "sync", path);
  } finally {
    closeSync(fd);
  }
}

/** Write every byte of buf to fd (writeSync may write less than asked). */
export function writeAll(fd: number, buf: Uint8Array, path: string): void {
  let off = 0;
  while (off < buf.byteLength) {
    let n: number;
    try {
      n = writeSync(fd, buf, off, buf.byteLength - off);
    } catch (e) {
      throw fromSystemError(e, "write", path);
    }
    off += n;
  }
}

/** Atomically replace a small local file (lock files, spool status files). */
export function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o640): void {
  const tmp = `${path}.pgbunker.tmp`;
  let fd: number;
  try {
    fd = openSync(tmp, "w", mode);
  } catch (e) {
    throw fromSystemError(e, "open-write", tmp);
  }
  try {
    writeAll(fd, typeof data === "string" ? new TextEncoder().encode(data) : data, tmp);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {}
    throw fromSystemError(e, "write", tmp);
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    throw fromSystemError(e, "move", tmp);
  }
  fsyncPath(dirname(path));
}
