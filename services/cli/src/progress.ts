import type { Logger } from "@tracesift/runtime";

/**
 * A progress bar with counts, rate and ETA on a terminal; plain periodic log lines otherwise
 * (CI logs and `kubectl logs` should not fill with carriage returns).
 */
export class Progress {
  private readonly started = Date.now();
  private lastLog = 0;
  private current = 0;
  private detail = "";
  private readonly tty = process.stderr.isTTY === true;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly logger: Logger,
    private readonly logEveryMs = 5_000,
  ) {}

  update(current: number, detail: string): void {
    this.current = current;
    this.detail = detail;
    const now = Date.now();
    if (this.tty) process.stderr.write(`\r${this.line()}\x1b[K`);
    else if (now - this.lastLog >= this.logEveryMs) {
      this.lastLog = now;
      this.logger.info({ stage: this.label, done: current, total: this.total, detail, ratePerSecond: this.rate(), etaSeconds: this.eta() }, "progress");
    }
  }

  note(message: string): void {
    if (this.tty) process.stderr.write(`\n${message}\n`);
    else this.logger.info(message);
  }

  done(): void {
    if (this.tty) process.stderr.write(`\r${this.line()}\x1b[K\n`);
    else this.logger.info({ stage: this.label, done: this.current, total: this.total, detail: this.detail, seconds: (Date.now() - this.started) / 1000 }, "finished");
  }

  private rate(): number {
    const seconds = (Date.now() - this.started) / 1000;
    return seconds > 0 ? Math.round((this.current / seconds) * 10) / 10 : 0;
  }

  private eta(): number | null {
    const rate = this.rate();
    return rate > 0 ? Math.round(Math.max(0, this.total - this.current) / rate) : null;
  }

  private line(): string {
    const width = 30;
    const share = this.total > 0 ? Math.min(1, this.current / this.total) : 1;
    const bar = "█".repeat(Math.round(share * width)).padEnd(width, "░");
    const eta = this.eta();
    return `${this.label.padEnd(8)} ${bar} ${this.current}/${this.total}  ${this.rate()}/s  ETA ${eta === null ? "?" : `${eta}s`}  ${this.detail}`;
  }
}
