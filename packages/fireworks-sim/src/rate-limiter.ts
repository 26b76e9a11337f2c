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
 * Exact sliding 60-second window per model: every admitted request is remembered with its time and
 * token charge, so a limit of N admits the N+1th request exactly 60 s after the first, never earlier.
 * Refused requests are not remembered, as with Fireworks: a 429 costs no quota.
 */
export class SlidingWindowLimiter {
  private readonly windows = new Map<string, Entry[]>();

  constructor(private readonly now: () => number) {}

  /** Admits and records the request, or refuses it; `headers` describe the window either way. */
  admit(model: string, tokens: number, limits: Limits): RateDecision {
    const t = this.now();
    const entries = this.entries(model, t);
    const used = entries.reduce((sum, e) => sum + e.tokens, 0);
    if (limits.rpm !== undefined && entries.length + 1 > limits.rpm) {
      const oldestToLeave = entries[entries.length - limits.rpm];
      return this.refuse("requests", oldestToLeave, t, limits, entries.length, used);
    }
    if (limits.tpm !== undefined && used + tokens > limits.tpm) {
      return this.refuse("tokens", this.entryFreeing(entries, used + tokens - limits.tpm), t, limits, entries.length, used);
    }
    entries.push({ at: t, tokens });
    return { ok: true, retryAfterMs: 0, headers: headersFor(limits, entries.length, used + tokens) };
  }

  /** The window's headers without recording anything (for responses that bypass admission). */
  peek(model: string, limits: Limits): Record<string, string> {
    const entries = this.entries(model, this.now());
    return headersFor(limits, entries.length, entries.reduce((sum, e) => sum + e.tokens, 0));
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
  private entryFreeing(entries: readonly Entry[], needed: number): Entry | undefined {
    let freed = 0;
    for (const e of entries) {
      freed += e.tokens;
      if (freed >= needed) return e;
    }
    return undefined;
  }

  private entries(model: string, t: number): Entry[] {
    let entries = this.windows.get(model);
    if (!entries) {
      entries = [];
      this.windows.set(model, entries);
    }
    // Entries are appended in clock order, so expired ones are all at the front.
    let expired = 0;
    while (expired < entries.length && entries[expired]!.at <= t - WINDOW_MS) expired++;
    if (expired > 0) entries.splice(0, expired);
    return entries;
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
