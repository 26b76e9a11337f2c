import type { Lease, Priority } from "./types.ts";

/** A reservation; `finish` settles (with a token count) or releases (without) it in Redis. */
export class RedisLease implements Lease {
  private done = false;

  constructor(
    readonly id: string,
    readonly priority: Priority,
    readonly tokens: number,
    readonly waitedMs: number,
    readonly admittedAt: number,
    private readonly finish: (actualTokens: number | undefined) => Promise<void>,
  ) {}

  // Idempotent: a second settle would apply its correction twice, and a finally-block release
  // after settle() is a common pattern.
  async settle(usage: { actualTokens: number }): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.finish(Number.isFinite(usage.actualTokens) ? usage.actualTokens : this.tokens);
  }

  async release(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.finish(undefined);
  }
}
