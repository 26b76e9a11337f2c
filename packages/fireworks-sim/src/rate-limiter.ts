export const WINDOW_MS = 60_000;

export type Limits = { rpm?: number | undefined; tpm?: number | undefined };

export type RateDecision = {
  ok: boolean;
  /** Which limit refused the request. */
  exceeded?: "requests" | "tokens";
  /** How long until the refused request would fit, from the window's contents. */
  retryAfterMs: number;
  headers: Record<string, string>;
};

type Entry = { at: number; tokens: number };

/**
 * One model's window. Expired entries are skipped by moving `head` rather than spliced off, and `used`
 * is kept as a running sum: at a thousand requests a second the window holds tens of thousands of
 * entries, and summing or shifting them on every request cost more than answering it.
 */
type Window = { entries: Entry[]; head: number; used: number };

/** Expired entries are dropped from the array once they are this many and at least half of it. */
const COMPACT_AFTER = 1024;

/**
 * Exact sliding 60-second window per model: every admitted request is remembered with its time and
 * token charge, so a limit of N admits the N+1th request exactly 60 s after the first, never earlier.
 * Refused requests are not remembered, as with Fireworks: a 429 costs no quota.
 */
export class SlidingWindowLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(private readonly now: () => number) {}

  /** Admits and records the request, or refuses it; `headers` describe the window either way. */
  admit(model: string, tokens: number, limits: Limits): RateDecision {
    const t = this.now();
    const w = this.window(model, t);
    const { entries, used } = w;
    const count = entries.length - w.head;
    if (limits.rpm !== undefined && count + 1 > limits.rpm) {
      const oldestToLeave = entries[entries.length - limits.rpm];
      return this.refuse("requests", oldestToLeave, t, limits, count, used);
    }
    if (limits.tpm !== undefined && used + tokens > limits.tpm) {
      return this.refuse("tokens", this.entryFreeing(w, used + tokens - limits.tpm), t, limits, count, used);
    }
    entries.push({ at: t, tokens });
    w.used += tokens;
    return { ok: true, retryAfterMs: 0, headers: headersFor(limits, count + 1, w.used) };
  }

  /** The window's headers without recording anything (for responses that bypass admission). */
  peek(model: string, limits: Limits): Record<string, string> {
    const w = this.window(model, this.now());
    return headersFor(limits, w.entries.length - w.head, w.used);
  }

  clear(): void {
    this.windows.clear();
  }

  private refuse(
    exceeded: "requests" | "tokens",
    leaving: Entry | undefined,
    t: number,
    limits: Limits,
    count: number,
    used: number,
  ): RateDecision {
    // No entry to wait for means the request alone is bigger than the limit: it never fits.
    const retryAfterMs = leaving ? leaving.at + WINDOW_MS - t : WINDOW_MS;
    return { ok: false, exceeded, retryAfterMs, headers: headersFor(limits, count, used) };
  }

  /** The oldest entry whose expiry frees at least `needed` tokens (counting everything older too). */
  private entryFreeing(w: Window, needed: number): Entry | undefined {
    let freed = 0;
    for (let i = w.head; i < w.entries.length; i++) {
      const e = w.entries[i]!;
      freed += e.tokens;
      if (freed >= needed) return e;
    }
    return undefined;
  }

  private window(model: string, t: number): Window {
    let w = this.windows.get(model);
    if (!w) {
      w = { entries: [], head: 0, used: 0 };
      this.windows.set(model, w);
    }
    // Entries are appended in clock order, so expired ones are all at the front.
    const { entries } = w;
    while (w.head < entries.length && entries[w.head]!.at <= t - WINDOW_MS) {
      w.used -= entries[w.head]!.tokens;
      w.head++;
    }
    if (w.head >= COMPACT_AFTER && w.head * 2 >= entries.length) {
      entries.splice(0, w.head);
      w.head = 0;
    }
    return w;
  }
}

/**
 * Fireworks reports token limits per second (`x-ratelimit-limit-tokens-prompt`), so the per-minute
 * budget is divided by 60 and rounded down. Limits that are not set are not reported.
 */
function headersFor(limits: Limits, count: number, used: number): Record<string, string> {
  const headers: Record<string, string> = {};
  if (limits.rpm !== undefined) {
    headers["x-ratelimit-limit-requests"] = String(limits.rpm);
    headers["x-ratelimit-remaining-requests"] = String(Math.max(0, limits.rpm - count));
  }
  if (limits.tpm !== undefined) {
    headers["x-ratelimit-limit-tokens-prompt"] = String(Math.floor(limits.tpm / 60));
    headers["x-ratelimit-remaining-tokens-prompt"] = String(Math.floor(Math.max(0, limits.tpm - used) / 60));
  }
  return headers;
}
