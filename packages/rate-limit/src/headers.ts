export type HeadersLike = Record<string, string | string[] | undefined> | Headers;

/** Limits the provider reports, per minute (the limiter's production window). */
export interface LearnedLimits {
  /** From `x-ratelimit-limit-requests` (per minute). */
  rpm?: number;
  /** From the per-second `x-ratelimit-limit-tokens-prompt`, × 60. */
  promptTpm?: number;
  /** From the per-second `x-ratelimit-limit-tokens-cache-adjusted-prompt`, × 60. */
  uncachedPromptTpm?: number;
  /** From the per-second `x-ratelimit-limit-tokens-generated`, × 60. */
  generatedTpm?: number;
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

const PER_SECOND_HEADERS = {
  promptTpm: "x-ratelimit-limit-tokens-prompt",
  uncachedPromptTpm: "x-ratelimit-limit-tokens-cache-adjusted-prompt",
  generatedTpm: "x-ratelimit-limit-tokens-generated",
} as const;

/**
 * Reads the effective limits Fireworks reports on every response: requests per minute, and three
 * separate token meters reported per SECOND (total prompt, uncached prompt, generated). Each meter
 * is kept on its own; collapsing them into one total would bind on the smallest (generated) and
 * waste nearly all of the prompt allowance.
 */
export function parseRateLimitHeaders(headers: HeadersLike): LearnedLimits {
  const learned: LearnedLimits = {};
  const requests = positive(header(headers, "x-ratelimit-limit-requests"));
  if (requests !== undefined) learned.rpm = Math.floor(requests);
  for (const [field, name] of Object.entries(PER_SECOND_HEADERS) as [keyof typeof PER_SECOND_HEADERS, string][]) {
    const perSecond = positive(header(headers, name));
    if (perSecond !== undefined) learned[field] = Math.floor(perSecond * 60);
  }
  return learned;
}

