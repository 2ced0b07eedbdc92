/**
 * Output buffers of the codecs, kept for the next file of this thread. A fresh 1 MiB buffer is
 * new memory: the kernel faults in and zeroes each of its pages, and the allocator unmaps it
 * again after a collection (a TLB flush across every thread). In a backup of many files that
 * was ~5% of the CPU (memset and page faults in the profile); a file now takes a buffer another
 * file gave back. Per JavaScript thread (module state is per worker), at most POOL_MAX buffers.
 */
const POOL_MAX = 4;
const pool: Uint8Array[] = [];

/** A buffer of at least `size` bytes (contents undefined): the smallest pooled one that fits, or a new one. */
export function takeBuffer(size: number): Uint8Array {
  let best = -1;
  for (let i = 0; i < pool.length; i++) if (pool[i]!.byteLength >= size && (best < 0 || pool[i]!.byteLength < pool[best]!.byteLength)) best = i;
  if (best < 0) return new Uint8Array(size);
  return pool.splice(best, 1)[0]!;
}

/**
 * Give a buffer back. Views of it handed out by the last call stay readable until the thread's
 * next codec call (every consumer of codec output is synchronous: it hashes or copies the view
 * before returning), so a codec may give its buffer back in its last call.
 */
export function giveBuffer(buf: Uint8Array): void {
  if (pool.length < POOL_MAX) {
    pool.push(buf);
    return;
  }
  // Keep the largest: a small file's buffer is cheap to make again, a large one is not.
  let smallest = 0;
  for (let i = 1; i < pool.length; i++) if (pool[i]!.byteLength < pool[smallest]!.byteLength) smallest = i;
  if (pool[smallest]!.byteLength < buf.byteLength) pool[smallest] = buf;
}
