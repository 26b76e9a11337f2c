import { createHash } from "node:crypto";

/** `[sim:confidence:0.6]` in a judged message fixes the probability of the chosen verdict. */
const CONFIDENCE_DIRECTIVE = /\[sim:confidence:(0(?:\.\d+)?|1(?:\.0+)?)\]/;

type TokenLogprob = { token: string; logprob: number; bytes: number[]; top_logprobs: { token: string; logprob: number; bytes: number[] }[] };

/**
 * Plausible OpenAI-shaped `logprobs` for a simulated answer, as the real API returns them when a
 * request sets `logprobs: true`: every token near-certain except the one that decides
 * `perceived_error`, whose probability between the two values is fixed per conversation (a directive, else a hash of
 * the transcript skewed towards confident, as a fine-tuned judge is), with the other value as
 * its main alternative.
 */
export function simLogprobs(content: string, judgedText: string, topN: number): { content: TokenLogprob[] } {
  const p = chosenProbability(judgedText);
  const tokens = content.match(/\s*[A-Za-z_']+|\s*[^A-Za-z_'\s]+|\s+/g) ?? [];
  let afterKey = false;
  let decided = false;
  return {
    content: tokens.map((token) => {
      const word = token.trim();
      if (!decided && afterKey && (word === "true" || word === "false")) {
        decided = true;
        const other = token.replace(word, word === "true" ? "false" : "true");
        // 2% of the mass on a token that is neither value, as real models leave some.
        const top = [entry(token, Math.log(p * 0.98)), entry(other, Math.log(Math.max(1e-9, (1 - p) * 0.98))), entry(" null", Math.log(0.02))];
        return { ...entry(token, Math.log(p * 0.98)), top_logprobs: top.slice(0, topN) };
      }
      if (word === "perceived_error") afterKey = true;
      return { ...entry(token, -0.0005), top_logprobs: [entry(token, -0.0005)].slice(0, topN) };
    }),
  };
}

function chosenProbability(judgedText: string): number {
  const fixed = CONFIDENCE_DIRECTIVE.exec(judgedText);
  if (fixed?.[1] !== undefined) return Math.min(0.9999, Math.max(0.5, Number(fixed[1])));
  const u = createHash("sha256").update(judgedText).digest().readUInt32BE(0) / 2 ** 32;
  return Math.min(0.9999, 0.5 + 0.5 * u ** 0.35);
}

function entry(token: string, logprob: number) {
  return { token, logprob, bytes: [...Buffer.from(token, "utf8")] };
}
