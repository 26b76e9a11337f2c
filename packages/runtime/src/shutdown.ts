import type { Logger } from "pino";

type Closer = { name: string; close: () => Promise<void> };

/**
 * Closes resources in reverse order of registration on SIGTERM/SIGINT, under one deadline:
 * a stuck close must not keep a pod in Terminating until Kubernetes kills it mid-write.
 */
export class Shutdown {
  private readonly closers: Closer[] = [];
  private running: Promise<void> | null = null;

  constructor(
    private readonly logger: Logger,
    private readonly deadlineMs: number,
  ) {}

  add(name: string, close: () => Promise<void>): void {
    this.closers.push({ name, close });
  }

  onSignals(exit: (code: number) => void = (code) => process.exit(code)): void {
    const handler = (signal: NodeJS.Signals) => {
      this.logger.info({ signal }, "shutting down");
      void this.run().then(
        () => exit(0),
        () => exit(1),
      );
    };
    process.once("SIGTERM", handler);
    process.once("SIGINT", handler);
  }

  run(): Promise<void> {
    this.running ??= this.closeAll();
    return this.running;
  }

  private async closeAll(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`shutdown deadline of ${this.deadlineMs} ms exceeded`)), this.deadlineMs);
      timer.unref();
    });
    const sequence = (async () => {
      for (const c of [...this.closers].reverse()) {
        try {
          await c.close();
        } catch (err) {
          this.logger.error({ err, resource: c.name }, "close failed");
        }
      }
    })();
    try {
      await Promise.race([sequence, deadline]);
      this.logger.info("shutdown complete");
    } catch (err) {
      this.logger.error({ err }, "shutdown incomplete");
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
}
