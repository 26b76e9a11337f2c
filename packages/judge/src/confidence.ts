import { z } from "zod";

/**
 * Log-probabilities as providers return them. OpenAI (and Fireworks' `raw_output`) use
 * `content[]` with per-token `top_logprobs`; Fireworks' chat endpoint also documents the older
 * completions shape (`tokens`, `token_logprobs`, `top_logprobs` as token → logprob maps). Both are
 * read; anything else means "no logprobs", never a guess.
 */
const TopLogprob = z.object({ token: z.string(), logprob: z.number() });
const ContentLogprobs = z.object({
  content: z.array(z.object({ token: z.string(), logprob: z.number(), top_logprobs: z.array(TopLogprob).nullish() })),
});
const LegacyLogprobs = z.object({
  tokens: z.array(z.string()),
  token_logprobs: z.array(z.number().nullable()),
  top_logprobs: z.array(z.record(z.string(), z.number()).nullable()).nullish(),
});

export type TokenLogprob = { token: string; logprob: number; top: { token: string; logprob: number }[] };

export function readTokenLogprobs(logprobs: unknown): TokenLogprob[] | undefined {
  const content = ContentLogprobs.safeParse(logprobs);
  if (content.success && content.data.content.length > 0) {
    return content.data.content.map((t) => ({ token: t.token, logprob: t.logprob, top: t.top_logprobs ?? [] }));
  }
  const legacy = LegacyLogprobs.safeParse(logprobs);
  if (legacy.success && legacy.data.tokens.length > 0) {
    return legacy.data.tokens.map((token, i) => ({
      token,
      logprob: legacy.data.token_logprobs[i] ?? Number.NEGATIVE_INFINITY,
      top: Object.entries(legacy.data.top_logprobs?.[i] ?? {}).map(([t, logprob]) => ({ token: t, logprob })),
    }));
  }
  return undefined;
}

/** Which boolean a token (or a token's start) spells: `true`, ` tr`, `f`... are all decisive. */
function booleanOf(token: string): boolean | undefined {
  const t = token.trim().toLowerCase();
  if (t.length === 0) return undefined;
  if ("true".startsWith(t) || t.startsWith("true")) return true;
  if ("false".startsWith(t) || t.startsWith("false")) return false;
  return undefined;
}

/**
 * The probability of the chosen `perceived_error` value, read at the token that decides it: the
 * first token after the `"perceived_error":` key. The probabilities of the alternatives spelling
 * `true` and `false` are summed (tokenizers split " true" several ways) and renormalised over the
 * two values, so mass on formatting tokens does not deflate it. Without top_logprobs, the chosen
 * token's own probability is all there is. Undefined when no such token exists: never invented.
 */
export function verdictConfidence(logprobs: unknown, perceivedError: boolean): number | undefined {
  const tokens = readTokenLogprobs(logprobs);
  if (!tokens) return undefined;
  const starts: number[] = [];
  let text = "";
  for (const t of tokens) {
    starts.push(text.length);
    text += t.token;
  }
  const key = /"perceived_error"\s*:\s*/.exec(text);
  if (!key) return undefined;
  const valueAt = key.index + key[0].length;
  const i = starts.findLastIndex((s) => s <= valueAt);
  const t = tokens[i];
  if (t === undefined || starts[i] === undefined) return undefined;
  // The key's tail and the value can share a token (`":true`): alternatives then share that prefix.
  const prefix = t.token.slice(0, valueAt - starts[i]);
  const spelledValue = (token: string) =>
    token.startsWith(prefix) ? booleanOf(token.slice(prefix.length)) : prefix.trim() === "" ? booleanOf(token) : undefined;
  if (spelledValue(t.token) !== perceivedError) return undefined;
  if (t.top.length === 0) return clamp01(Math.exp(t.logprob));
  let pTrue = 0;
  let pFalse = 0;
  const seen = new Set<string>();
  for (const alt of [{ token: t.token, logprob: t.logprob }, ...t.top]) {
    if (seen.has(alt.token)) continue;
    seen.add(alt.token);
    const value = spelledValue(alt.token);
    if (value === true) pTrue += Math.exp(alt.logprob);
    else if (value === false) pFalse += Math.exp(alt.logprob);
  }
  const total = pTrue + pFalse;
  return total > 0 ? clamp01((perceivedError ? pTrue : pFalse) / total) : undefined;
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}
