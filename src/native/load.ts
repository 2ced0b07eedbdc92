/**
 * Lazy dlopen of a system library with a clear error when it is missing. A library is only
 * loaded when its codec is first used, so a machine without libzstd can still run lz4 backups.
 */
import { dlopen, type ConvertFns, type FFIFunction } from "bun:ffi";
import { err } from "../common/error.ts";

export function lazyLibrary<const S extends Record<string, FFIFunction>>(soname: string, symbols: S, installHint: string): () => ConvertFns<S> {
  let lib: ConvertFns<S> | undefined;
  return () => {
    if (lib) return lib;
    try {
      lib = dlopen(soname, symbols).symbols;
    } catch (e) {
      throw err("KernelError", `unable to load ${soname}: ${(e as Error).message}`, installHint);
    }
    return lib;
  };
}
