/**
 * Progress of long work on a terminal: files and bytes done, rate, ETA, on one line of stderr that
 * is redrawn at most four times a second and cleared before any log line is printed. Nothing is
 * drawn when stderr is not a terminal (cron, CI, archive_command).
 */
import { logSetConsoleHook } from "./log.ts";
import { rateLimiter } from "./rate-limit.ts";

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n}B` : `${v.toFixed(v >= 100 ? 0 : 1)}${units[i]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}` : `${m}:${String(r).padStart(2, "0")}`;
}

export class Progress {
  readonly #label: string;
  readonly #totalFiles: number;
  readonly #totalBytes: number;
  readonly #start = performance.now();
  readonly #enabled: boolean;
  #files = 0;
  #bytes = 0;
  #lastDraw = 0;
  #drawn = false;

  constructor(label: string, totalFiles: number, totalBytes: number, enabled = process.stderr.isTTY === true) {
    this.#label = label;
    this.#totalFiles = totalFiles;
    this.#totalBytes = totalBytes;
    this.#enabled = enabled;
    if (enabled) logSetConsoleHook(() => this.clear());
  }

  /** Record one finished file of `bytes` bytes. */
  add(bytes: number, files = 1): void {
    this.#files += files;
    this.#bytes += bytes;
    this.#draw(false);
  }

  get bytes(): number {
    return this.#bytes;
  }

  get files(): number {
    return this.#files;
  }

  elapsedSeconds(): number {
    return (performance.now() - this.#start) / 1000;
  }

  line(): string {
    const secs = this.elapsedSeconds();
    const rate = secs > 0 ? this.#bytes / secs : 0;
    const pct = this.#totalBytes > 0 ? Math.floor((this.#bytes * 100) / this.#totalBytes) : 100;
    const eta = rate > 0 ? (this.#totalBytes - this.#bytes) / rate : Number.POSITIVE_INFINITY;
    const limiter = rateLimiter();
    // The limit counts the bytes the workers move (stored bytes), which differ from the files' sizes: show both rates.
    const limit = limiter ? `, rate-limit ${formatBytes(limiter.rate)}/s (moving ${formatBytes(limiter.grantedRate())}/s)` : "";
    return `${this.#label}: ${this.#files}/${this.#totalFiles} files, ${formatBytes(this.#bytes)}/${formatBytes(this.#totalBytes)} (${pct}%), ${formatBytes(rate)}/s, ETA ${formatDuration(eta)}${limit}`;
  }

  #draw(force: boolean): void {
    if (!this.#enabled) return;
    const now = performance.now();
    if (!force && now - this.#lastDraw < 250) return;
    this.#lastDraw = now;
    process.stderr.write(`\r\x1b[K${this.line()}`);
    this.#drawn = true;
  }

  clear(): void {
    if (this.#drawn) {
      process.stderr.write("\r\x1b[K");
      this.#drawn = false;
    }
  }

  done(): void {
    this.clear();
    if (this.#enabled) logSetConsoleHook(undefined);
  }
}
