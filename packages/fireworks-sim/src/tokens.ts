/**
 * Token estimates. No tokenizer ships with the simulator, so it uses the usual ~4 characters per token
 * plus a small per-message overhead for the chat template, which keeps usage plausible and deterministic.
 */
export const CHARS_PER_TOKEN = 4;
export const TOKENS_PER_MESSAGE = 4;
/** Tokens that prime the assistant's reply in the chat template. */
export const REPLY_PRIMING_TOKENS = 3;

export function textTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}

export function messageTokens(content: string): number {
  return textTokens(content) + TOKENS_PER_MESSAGE;
}

export function promptTokens(contents: readonly string[]): number {
  return contents.reduce((sum, c) => sum + messageTokens(c), REPLY_PRIMING_TOKENS);
}

/** Small seeded PRNG (mulberry32): fault draws and jitter repeat exactly for the same seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
