/**
 * Reading a batch job's output dataset: a results file (one answered request per line) and an error
 * file (requests that failed, with their `custom_id`). Lines are matched by `custom_id`; a response
 * is read whether it is the chat completion itself or OpenAI-batch style `{status_code, body}`.
 * Every verdict goes through the live path's parser, so batch and live accept exactly the same answers.
 */
import { callCostUsd, InvalidOutputError, parseVerdict, type Price, type TokenPrice } from "@tracesift/judge";
import type { TokenUsage, Verdict } from "@tracesift/schemas";
import { z } from "zod";

const Completion = z.looseObject({
  choices: z.array(z.looseObject({ message: z.looseObject({ content: z.string().nullish() }).optional() })).default([]),
  usage: z
    .looseObject({
      prompt_tokens: z.number().int().nonnegative().default(0),
      completion_tokens: z.number().int().nonnegative().default(0),
      total_tokens: z.number().int().nonnegative().optional(),
      prompt_tokens_details: z.looseObject({ cached_tokens: z.number().int().nonnegative().nullish() }).nullish(),
    })
    .optional(),
});

const OutputLine = z.looseObject({ custom_id: z.string(), response: z.unknown().optional(), error: z.unknown().optional() });

export type BatchOutcome =
  | { kind: "verdict"; verdict: Verdict; usage: TokenUsage; raw: string }
  | { kind: "invalid"; reason: string; usage: TokenUsage; raw: string }
  | { kind: "error"; reason: string };

/** Outcomes by custom_id over all files of an output dataset. An answer beats an error for the same id. */
export function readOutputFiles(files: Record<string, string>): Map<string, BatchOutcome> {
  const out = new Map<string, BatchOutcome>();
  for (const [name, text] of Object.entries(files)) {
    for (const [i, raw] of text.split("\n").entries()) {
      if (!raw.trim()) continue;
      let json: unknown;
      try {
        json = JSON.parse(raw);
      } catch {
        continue; // A line we cannot read names no request: its request counts as missing.
      }
      const line = OutputLine.safeParse(json);
      if (!line.success) continue;
      const outcome = readLine(line.data, `${name}:${i + 1}`);
      const previous = out.get(line.data.custom_id);
      if (!previous || previous.kind === "error") out.set(line.data.custom_id, outcome);
    }
  }
  return out;
}

function readLine(line: z.infer<typeof OutputLine>, where: string): BatchOutcome {
  const response = line.response;
  const body = response && typeof response === "object" && "body" in response ? (response as { body: unknown }).body : response;
  const completion = body === undefined ? undefined : Completion.safeParse(body);
  if (!completion?.success || completion.data.choices.length === 0) {
    const error = line.error ?? (response && typeof response === "object" && "error" in response ? (response as { error: unknown }).error : undefined);
    return { kind: "error", reason: `batch request failed (${where}): ${JSON.stringify(error ?? body ?? null).slice(0, 500)}` };
  }
  const u = completion.data.usage;
  const prompt = u?.prompt_tokens ?? 0;
  const completionTokens = u?.completion_tokens ?? 0;
  const usage: TokenUsage = {
    prompt_tokens: prompt,
    cached_prompt_tokens: Math.min(prompt, u?.prompt_tokens_details?.cached_tokens ?? 0),
    completion_tokens: completionTokens,
    total_tokens: u?.total_tokens ?? prompt + completionTokens,
  };
  const raw = completion.data.choices[0]?.message?.content ?? "";
  try {
    return { kind: "verdict", verdict: parseVerdict(raw), usage, raw };
  } catch (err) {
    if (err instanceof InvalidOutputError) return { kind: "invalid", reason: err.message, usage, raw };
    throw err;
  }
}

/**
 * Batch inference costs half the serverless token price, and cached prompt tokens a further half
 * (Fireworks, 2026). A deployment priced per GPU-hour has no batch price of its own: batch runs on
 * Fireworks' capacity at the serverless list price of the model, given by `serverless`.
 */
export const BATCH_DISCOUNT = 0.5;

export function batchPrice(live: Price, serverless: TokenPrice): TokenPrice {
  const base = "usd_per_gpu_hour" in live ? serverless : live;
  const cached = base.cached_input ?? base.input / 2;
  return { input: base.input * BATCH_DISCOUNT, cached_input: cached * BATCH_DISCOUNT, output: base.output * BATCH_DISCOUNT };
}

export function batchCostUsd(usage: TokenUsage, price: TokenPrice): number {
  return callCostUsd(usage, 0, price);
}
