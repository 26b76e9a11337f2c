export type HeadersLike = Record<string, string | string[] | undefined> | Headers;

export interface LearnedLimits {
  /** From `x-ratelimit-limit-requests` (per minute). */
  rpm?: number;
  /** Per minute, from the per-second `x-ratelimit-limit-tokens-prompt` / `-generated`. */
  tpm?: number;
}

function header(headers: HeadersLike, name: string): string | undefined {
  // Duck-typed: SDKs may bring their own fetch Headers class.
  if (typeof headers.get === "function") return (headers as Headers).get(name) ?? undefined;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

function positive(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value.trim());
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/**
 * Reads the effective limits Fireworks reports on every response. Token limits come per SECOND
 * and separately for prompt and generated tokens; the limiter counts total tokens, so it takes
 * the smaller of the two: total ≤ min(prompt, generated) keeps both parts under their limits
 * whatever the prompt/completion mix. Configure `tpm` explicitly to use more of a split budget.
 */
export function parseRateLimitHeaders(headers: HeadersLike): LearnedLimits {
  const requests = positive(header(headers, "x-ratelimit-limit-requests"));
  const perSecond = [
    positive(header(headers, "x-ratelimit-limit-tokens-prompt")),
    positive(header(headers, "x-ratelimit-limit-tokens-generated")),
  ].filter((n): n is number => n !== undefined);
  const learned: LearnedLimits = {};
  if (requests !== undefined) learned.rpm = Math.floor(requests);
  if (perSecond.length > 0) learned.tpm = Math.floor(Math.min(...perSecond) * 60);
  return learned;
}
