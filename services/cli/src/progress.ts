/**
 * A progress bar with counts, rate and ETA on a terminal; plain periodic lines otherwise (CI logs
 * and `kubectl logs` should not fill with carriage returns). Both go to stderr, written at once,
 * so they never land after the totals a command prints on stdout.
 */
export class Progress {
  private readonly started = Date.now();
  private lastLog = 0;
  private current: number;
  private detail = "";
  private readonly tty = process.stderr.isTTY === true;

  /** `start`: already done before this run (a resumed replay), counted in the bar but not in the rate. */
  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly start = 0,
    private readonly logEveryMs = 5_000,
  ) {
    this.current = start;
  }

  /** `current` counts this run's work; the bar adds what was done before it. */
  update(current: number, detail: string): void {
    this.current = this.start + current;
    this.detail = detail;
    const now = Date.now();
    if (this.tty) process.stderr.write(`\r${this.line()}\x1b[K`);
    else if (now - this.lastLog >= this.logEveryMs) {
      this.lastLog = now;
      process.stderr.write(`${this.line()}\n`);
    }
  }

  note(message: string): void {
    process.stderr.write(this.tty ? `\n${message}\n` : `${message}\n`);
  }

  done(): void {
    const seconds = ((Date.now() - this.started) / 1000).toFixed(1);
    process.stderr.write(`${this.tty ? "\r" : ""}${this.line()}${this.tty ? "\x1b[K" : ""}  finished in ${seconds}s\n`);
  }

  private rate(): number {
    const seconds = (Date.now() - this.started) / 1000;
    return seconds > 0 ? Math.round(((this.current - this.start) / seconds) * 10) / 10 : 0;
  }

  private eta(): number | null {
    const rate = this.rate();
    return rate > 0 ? Math.round(Math.max(0, this.total - this.current) / rate) : null;
  }

  private line(): string {
    const width = 30;
    const share = this.total > 0 ? Math.min(1, this.current / this.total) : 1;
    const bar = this.tty ? `${"█".repeat(Math.round(share * width)).padEnd(width, "░")} ` : "";
    const eta = this.eta();
    return `${this.label.padEnd(8)} ${bar}${this.current}/${this.total}  ${this.rate()}/s  ETA ${eta === null ? "?" : `${eta}s`}  ${this.detail}`;
  }
}
