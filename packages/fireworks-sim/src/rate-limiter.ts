export const WINDOW_MS = 60_000;

/**
 * A model's limits. Token meters are given per SECOND, as Fireworks reports them, and metered over
 * the same sliding 60 s window as requests (60 × the per-second figure a window), as Fireworks'
 * serverless limits are (see the README).
 */
export type Limits = {
  rpm?: number | undefined;
  /** Legacy single meter: prompt + completion tokens per minute (OpenAI-style). */
  tpm?: number | undefined;
  promptTps?: number | undefined;
  uncachedPromptTps?: number | undefined;
  generatedTps?: number | undefined;
  /** Requests per minute across every model of the account; never ramps. */
  accountRpm?: number | undefined;
  /** Adaptive limits: a model idle for a window starts at this share of each limit (rpm and the
   *  three token meters) and reaches the full limit `rampMs` later. 1 = no ramp. */
  rampStartShare?: number | undefined;
  rampMs?: number | undefined;
};

/** What one request costs on each meter. */
export type Charge = { tokens: number; prompt: number; uncachedPrompt: number; generated: number };

export type Meter = "requests" | "account requests" | "tokens" | "prompt tokens" | "uncached prompt tokens" | "generated tokens";

export type RateDecision = {
  ok: boolean;
  /** Which limit refused the request. */
  exceeded?: Meter;
  /** That limit's effective value per window. */
  limit?: number;
  /** How long until the refused request would fit, from the window's contents. */
  retryAfterMs: number;
  headers: Record<string, string>;
};

type Entry = Charge & { at: number };
type TokenField = keyof Charge;

/**
 * One model's window. Expired entries are skipped by moving `head` rather than spliced off, and `used`
 * is kept as running sums: at a thousand requests a second the window holds tens of thousands of
 * entries, and summing or shifting them on every request cost more than answering it.
 */
type Window = { entries: Entry[]; head: number; used: Charge; activeSince: number };

/** Expired entries are dropped from the array once they are this many and at least half of it. */
const COMPACT_AFTER = 1024;
const ACCOUNT = "\u0000account";
const NO_CHARGE: Charge = { tokens: 0, prompt: 0, uncachedPrompt: 0, generated: 0 };

/** Effective per-window limits after the ramp; undefined = unlimited. */
type Effective = { rpm?: number; tpm?: number; prompt?: number; uncachedPrompt?: number; generated?: number; accountRpm?: number };

/**
 * Exact sliding 60-second windows per model (and one for the account): every admitted request is
 * remembered with its time and its charge on each meter, so a limit of N admits the N+1th unit
 * exactly 60 s after the first, never earlier. Refused requests are not remembered, as with
 * Fireworks: a 429 costs no quota.
 */
export class SlidingWindowLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(private readonly now: () => number) {}

  /** Admits and records the request, or refuses it; `headers` describe the window either way. */
  admit(model: string, charge: number | Charge, limits: Limits): RateDecision {
    const c = typeof charge === "number" ? { ...NO_CHARGE, tokens: charge } : charge;
    const t = this.now();
    const w = this.window(model, t);
    const account = this.window(ACCOUNT, t);
    if (w.entries.length === w.head) w.activeSince = t;
    const eff = effective(limits, t - w.activeSince);
    const count = w.entries.length - w.head;
    if (eff.accountRpm !== undefined && account.entries.length - account.head + 1 > eff.accountRpm) {
      return this.refuse("account requests", eff.accountRpm, account.entries[account.entries.length - eff.accountRpm], t, eff, w);
    }
    if (eff.rpm !== undefined && count + 1 > eff.rpm) {
      return this.refuse("requests", eff.rpm, w.entries[w.entries.length - Math.max(1, Math.floor(eff.rpm))], t, eff, w);
    }
    const meters: [Meter, TokenField, number | undefined][] = [
      ["tokens", "tokens", eff.tpm],
      ["prompt tokens", "prompt", eff.prompt],
      ["uncached prompt tokens", "uncachedPrompt", eff.uncachedPrompt],
      ["generated tokens", "generated", eff.generated],
    ];
    for (const [meter, field, limit] of meters) {
      if (limit !== undefined && w.used[field] + c[field] > limit) {
        return this.refuse(meter, limit, entryFreeing(w, field, w.used[field] + c[field] - limit), t, eff, w);
      }
    }
    const entry = { at: t, ...c };
    w.entries.push(entry);
    for (const field of Object.keys(NO_CHARGE) as TokenField[]) w.used[field] += c[field];
    if (eff.accountRpm !== undefined) account.entries.push({ ...NO_CHARGE, at: t });
    return { ok: true, retryAfterMs: 0, headers: headersFor(eff, w) };
  }

  /** The window's headers without recording anything (for responses that bypass admission). */
  peek(model: string, limits: Limits): Record<string, string> {
    const t = this.now();
    const w = this.window(model, t);
    return headersFor(effective(limits, w.entries.length === w.head ? 0 : t - w.activeSince), w);
  }

  clear(): void {
    this.windows.clear();
  }

  private refuse(exceeded: Meter, limit: number, leaving: Entry | undefined, t: number, eff: Effective, w: Window): RateDecision {
    // No entry to wait for means the request alone is bigger than the limit: it never fits.
    const retryAfterMs = leaving ? leaving.at + WINDOW_MS - t : WINDOW_MS;
    return { ok: false, exceeded, limit: Math.floor(limit), retryAfterMs, headers: headersFor(eff, w) };
  }

  private window(key: string, t: number): Window {
    let w = this.windows.get(key);
    if (!w) {
      w = { entries: [], head: 0, used: { ...NO_CHARGE }, activeSince: t };
      this.windows.set(key, w);
    }
    // Entries are appended in clock order, so expired ones are all at the front.
    const { entries } = w;
    while (w.head < entries.length && entries[w.head]!.at <= t - WINDOW_MS) {
      const e = entries[w.head]!;
      for (const field of Object.keys(NO_CHARGE) as TokenField[]) w.used[field] -= e[field];
      w.head++;
    }
    if (w.head >= COMPACT_AFTER && w.head * 2 >= entries.length) {
      entries.splice(0, w.head);
      w.head = 0;
    }
    return w;
  }
}

/** The oldest entry whose expiry frees at least `needed` of `field` (counting everything older too). */
function entryFreeing(w: Window, field: TokenField, needed: number): Entry | undefined {
  let freed = 0;
  for (let i = w.head; i < w.entries.length; i++) {
    const e = w.entries[i]!;
    freed += e[field];
    if (freed >= needed) return e;
  }
  return undefined;
}

/** Limits per window after the ramp: ramping traffic up fast gets 429s below the ceiling. */
function effective(limits: Limits, activeMs: number): Effective {
  const start = limits.rampStartShare ?? 1;
  const share = start >= 1 ? 1 : Math.min(1, start + ((1 - start) * activeMs) / Math.max(1, limits.rampMs ?? 30_000));
  const perWindow = (perSecond: number | undefined) => (perSecond === undefined ? undefined : (perSecond * WINDOW_MS * share) / 1000);
  const out: Effective = {};
  if (limits.rpm !== undefined) out.rpm = limits.rpm * share;
  if (limits.tpm !== undefined) out.tpm = limits.tpm;
  const prompt = perWindow(limits.promptTps);
  const uncachedPrompt = perWindow(limits.uncachedPromptTps);
  const generated = perWindow(limits.generatedTps);
  if (prompt !== undefined) out.prompt = prompt;
  if (uncachedPrompt !== undefined) out.uncachedPrompt = uncachedPrompt;
  if (generated !== undefined) out.generated = generated;
  if (limits.accountRpm !== undefined) out.accountRpm = limits.accountRpm;
  return out;
}

/**
 * Fireworks reports each token meter per second (`x-ratelimit-limit-tokens-prompt`,
 * `-cache-adjusted-prompt`, `-generated`) and requests per minute; the effective (ramped) limits
 * are reported, rounded down. Limits that are not set are not reported. The legacy `tpm` is
 * reported as a prompt limit when no prompt meter is set.
 */
function headersFor(eff: Effective, w: Window): Record<string, string> {
  const headers: Record<string, string> = {};
  const count = w.entries.length - w.head;
  if (eff.rpm !== undefined) {
    headers["x-ratelimit-limit-requests"] = String(Math.floor(eff.rpm));
    headers["x-ratelimit-remaining-requests"] = String(Math.max(0, Math.floor(eff.rpm - count)));
  }
  const perSecond = (name: string, limit: number | undefined, used: number) => {
    if (limit === undefined) return;
    headers[`x-ratelimit-limit-tokens-${name}`] = String(Math.floor(limit / 60));
    headers[`x-ratelimit-remaining-tokens-${name}`] = String(Math.floor(Math.max(0, limit - used) / 60));
  };
  perSecond("prompt", eff.prompt ?? eff.tpm, eff.prompt !== undefined ? w.used.prompt : w.used.tokens);
  perSecond("cache-adjusted-prompt", eff.uncachedPrompt, w.used.uncachedPrompt);
  perSecond("generated", eff.generated, w.used.generated);
  return headers;
}
