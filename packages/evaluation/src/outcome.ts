import { TokenUsage, VerdictBlock } from "@tracesift/schemas";
import { z } from "zod";

/**
 * What one judge made of one conversation, as stored in progress files. `answers` counts the
 * model's answers it took (a valid verdict comes after `answers - 1` invalid ones); rate limits and
 * transport errors are retried without counting, and are never recorded: a resumed run retries them.
 */
export const VerdictOutcome = z.discriminatedUnion("status", [
  z.object({
    status: z.literal("judged"),
    /** With `confidence` when the judge was configured for logprobs and the provider returned them. */
    verdict: VerdictBlock,
    /** Usage of the answer that gave the verdict (the client reports none for invalid answers). */
    usage: TokenUsage,
    latency_ms: z.number().nonnegative(),
    answers: z.number().int().positive(),
    /** Served from the result cache (no model call at the time it was recorded). */
    cached: z.boolean(),
  }),
  z.object({
    status: z.literal("invalid"),
    answers: z.number().int().positive(),
    /** Why the last answer was rejected, and its text. */
    error: z.string(),
    raw: z.string(),
  }),
]);
export type VerdictOutcome = z.infer<typeof VerdictOutcome>;
