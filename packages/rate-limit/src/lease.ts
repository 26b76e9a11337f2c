import type { Lease, MeterValues, Priority, SettleUsage } from "./types.ts";

/** A reservation; `finish` settles (with usage) or releases (without) it in Redis. */
export class RedisLease implements Lease {
  private done = false;

  constructor(
    readonly id: string,
    readonly priority: Priority,
    readonly reserved: MeterValues,
    readonly waitedMs: number,
    readonly admittedAt: number,
    private readonly finish: (usage: SettleUsage | undefined) => Promise<void>,
  ) {}

  // Idempotent: a second settle would apply its correction twice, and a finally-block release
  // after settle() is a common pattern.
  async settle(usage: SettleUsage): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.finish(usage);
  }

  async release(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.finish(undefined);
  }
}
