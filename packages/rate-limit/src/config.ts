import { z } from "zod";

/**
 * Limits of one model as the provider enforces them. A missing field means "unknown": the
 * limiter then uses what it learned from response headers, or adaptive concurrency.
 */
export const ModelLimitsSchema = z
  .object({
    /** Requests per window (per minute in production). */
    rpm: z.number().int().positive().optional(),
    /** Prompt tokens per window, cached or not (Fireworks: `x-ratelimit-limit-tokens-prompt`). */
    promptTpm: z.number().int().positive().optional(),
    /** Prompt tokens minus cached ones per window (`x-ratelimit-limit-tokens-cache-adjusted-prompt`). */
    uncachedPromptTpm: z.number().int().positive().optional(),
    /** Completion tokens per window (`x-ratelimit-limit-tokens-generated`). */
    generatedTpm: z.number().int().positive().optional(),
    /** Calls in flight at once, across the fleet. */
    maxInFlight: z.number().int().positive().optional(),
  })
  .strict();

export type ModelLimits = z.infer<typeof ModelLimitsSchema>;

/** Model id → limits, e.g. `{"accounts/fireworks/models/x": {"rpm": 600, "promptTpm": 3600000}}`. */
export const ModelLimitsMapSchema = z.record(z.string().min(1), ModelLimitsSchema);

export type ModelLimitsMap = z.infer<typeof ModelLimitsMapSchema>;

/**
 * Parses a per-model limits JSON string (typically an env variable). Empty or unset input is an
 * empty map, so every model falls back to learned limits.
 *
 * @example
 * const limits = parseModelLimits(process.env.MODEL_LIMITS);
 * const mine = limits["accounts/fireworks/models/x"] ?? {};
 */
export function parseModelLimits(text: string | undefined): ModelLimitsMap {
  if (text === undefined || text.trim() === "") return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`model limits: invalid JSON (${(err as Error).message})`);
  }
  const result = ModelLimitsMapSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new Error(`model limits: invalid config:\n${lines.join("\n")}`);
  }
  return result.data;
}
