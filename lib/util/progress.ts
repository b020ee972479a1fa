/**
 * Progress reporting for long jobs: count, rate and ETA on one line of stderr
 * (redrawn in place on a terminal, printed every few seconds otherwise, so
 * logs of headless runs stay readable).
 */

export interface ProgressOptions {
  /** What is being counted, e.g. "images". */
  unit?: string;
  /** Minimum milliseconds between two printed lines when not on a TTY. */
  logIntervalMs?: number;
  /** Where lines go; defaults to stderr. Tests pass a collector. */
  sink?: (line: string, final: boolean) => void;
  /** Silence all output (library use inside notebooks that render their own). */
  quiet?: boolean;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

export class Progress {
  readonly label: string;
  readonly total: number;
  done = 0;
  private readonly start = performance.now();
  private lastPrint = 0;
  private readonly unit: string;
  private readonly interval: number;
  private readonly sink: (line: string, final: boolean) => void;
  private readonly tty: boolean;
  private readonly quiet: boolean;

  constructor(label: string, total: number, opts: ProgressOptions = {}) {
    this.label = label;
    this.total = total;
    this.unit = opts.unit ?? "items";
    this.quiet = opts.quiet ?? false;
    this.tty = !opts.sink && Deno.stderr.isTerminal();
    this.interval = opts.logIntervalMs ?? (this.tty ? 200 : 5000);
    const enc = new TextEncoder();
    this.sink = opts.sink ?? ((line, final) => {
      const text = this.tty ? `\r\x1b[2K${line}${final ? "\n" : ""}` : `${line}\n`;
      Deno.stderr.writeSync(enc.encode(text));
    });
  }

  /** Seconds since start. */
  get elapsed(): number {
    return (performance.now() - this.start) / 1000;
  }

  get rate(): number {
    return this.done / Math.max(this.elapsed, 1e-9);
  }

  line(): string {
    const pct = this.total > 0 ? ((100 * this.done) / this.total).toFixed(1) : "?";
    const eta = this.rate > 0 ? (this.total - this.done) / this.rate : Infinity;
    return `${this.label}: ${this.done}/${this.total} ${this.unit} (${pct}%) ${this.rate.toFixed(1)} ${this.unit}/s, ` +
      `elapsed ${formatDuration(this.elapsed)}, ETA ${formatDuration(eta)}`;
  }

  tick(n = 1, extra = ""): void {
    this.done += n;
    if (this.quiet) return;
    const now = performance.now();
    if (now - this.lastPrint >= this.interval && this.done < this.total) {
      this.lastPrint = now;
      this.sink(this.line() + (extra ? ` ${extra}` : ""), false);
    }
  }

  finish(extra = ""): void {
    if (this.quiet) return;
    this.sink(
      `${this.label}: ${this.done} ${this.unit} in ${formatDuration(this.elapsed)} (${this.rate.toFixed(1)} ${this.unit}/s)` +
        (extra ? ` ${extra}` : ""),
      true,
    );
  }
}
