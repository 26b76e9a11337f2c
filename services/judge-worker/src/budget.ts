import type { Priority } from "@tracesift/schemas";
import type { Redis } from "ioredis";

export type BudgetOptions = {
  hourlyUsd?: number | undefined;
  dailyUsd?: number | undefined;
  /** Backfill stops at this share of a budget, keeping the rest for live traffic. */
  backfillShare: number;
  /** Whether live judging also stops once a budget is spent. */
  pauseLive: boolean;
};

/**
 * Fleet-wide spend per UTC hour and day in Redis. When a budget is reached, backfill pauses first
 * (at `backfillShare` of it), then live judging if configured; both resume in the next window.
 */
export class CostBudget {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly options: BudgetOptions,
  ) {}

  private windows(now = new Date()) {
    const iso = now.toISOString();
    const hourEnd = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), now.getUTCHours() + 1);
    const dayEnd = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
    return [
      { key: `${this.prefix}:spend:h:${iso.slice(0, 13)}`, limit: this.options.hourlyUsd, endsAt: hourEnd, ttl: 7200 },
      { key: `${this.prefix}:spend:d:${iso.slice(0, 10)}`, limit: this.options.dailyUsd, endsAt: dayEnd, ttl: 172_800 },
    ];
  }

  get enabled(): boolean {
    return this.options.hourlyUsd !== undefined || this.options.dailyUsd !== undefined;
  }

  /** Milliseconds until this priority may spend again, or 0 when it may spend now. */
  async blockedForMs(priority: Priority): Promise<number> {
    if (!this.enabled || (priority === "live" && !this.options.pauseLive)) return 0;
    const share = priority === "backfill" ? this.options.backfillShare : 1;
    const windows = this.windows().filter((w) => w.limit !== undefined);
    const spent = await this.redis.mget(...windows.map((w) => w.key));
    let until = 0;
    windows.forEach((w, i) => {
      if (Number(spent[i] ?? 0) >= (w.limit ?? Number.POSITIVE_INFINITY) * share) until = Math.max(until, w.endsAt);
    });
    return until === 0 ? 0 : Math.max(1, until - Date.now());
  }

  async record(usd: number): Promise<void> {
    if (!this.enabled || usd <= 0) return;
    const pipeline = this.redis.multi();
    for (const w of this.windows()) {
      pipeline.incrbyfloat(w.key, usd);
      pipeline.expire(w.key, w.ttl);
    }
    await pipeline.exec();
  }
}
