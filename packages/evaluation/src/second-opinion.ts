/**
 * The uncertain band, live: a verdict whose confidence lies in `UNCERTAIN_BAND` gets a second
 * opinion from an arbiter model (the arbiter prompt of `label`, shown the first verdict and its
 * reason), or goes to a review file that `tracesift review` walks through. Both verdicts stay in
 * the record: the first as `verdict`, the second as `verdict.second_opinion`.
 */
import type { JudgeClient } from "@tracesift/judge";
import type { Conversation, JudgedResult } from "@tracesift/schemas";
import { z } from "zod";
import { buildArbiterMessages } from "./arbiter.ts";
import { inBand, UncertainBand } from "./calibration.ts";
import { JsonlAppender } from "./jsonl.ts";
import type { QueueLine } from "./labeling.ts";

export const SecondOpinionEnv = z.object({
  /** e.g. `0.35-0.65`; unset: no second opinions. */
  UNCERTAIN_BAND: UncertainBand.optional(),
  UNCERTAIN_ACTION: z.enum(["arbiter", "review"]).default("arbiter"),
  /** The arbiter model (default: the judge model, with the arbiter prompt) and its endpoint (default: the judge's). */
  ARBITER_MODEL: z.string().min(1).optional(),
  ARBITER_BASE_URL: z.url().optional(),
  /** Where `review` appends uncertain verdicts (the `tracesift review --queue` format). */
  REVIEW_FILE: z.string().min(1).default("uncertain-review.jsonl"),
});
export type SecondOpinionEnv = z.output<typeof SecondOpinionEnv>;

export type SecondOpinionAction = { kind: "arbiter"; client: JudgeClient } | { kind: "review"; path: string };

export type SecondOpinion = (conversation: Conversation, result: JudgedResult) => Promise<JudgedResult>;

/**
 * Returns the result unchanged outside the band (and without a confidence). A failed arbiter call
 * leaves the first verdict alone: the judge's verdict was paid for and stands on its own.
 */
export function createSecondOpinion(
  band: UncertainBand,
  action: SecondOpinionAction,
  onError: (err: unknown) => void = () => {},
): SecondOpinion {
  const review = action.kind === "review" ? new JsonlAppender(action.path) : undefined;
  return async (conversation, result) => {
    const first = result.verdict;
    if (!inBand(first.confidence, band) || first.second_opinion) return result;
    if (review) {
      const line: QueueLine = {
        event: { id: conversation.id, messages: conversation.messages.map((m) => ({ role: m.role, content: m.content })), metadata: { ...conversation.metadata, result_id: result.result_id } },
        panel: [{ judge: result.judge.model, model: result.judge.model, perceived_error: first.perceived_error, reason: first.reason }],
        arbiters: [],
        queued_at: new Date().toISOString(),
      };
      review.append(line);
      return { ...result, verdict: { ...first, review: "pending" } };
    }
    if (action.kind !== "arbiter") return result;
    try {
      const call = await action.client.complete(buildArbiterMessages(conversation, [{ perceived_error: first.perceived_error, reason: first.reason }]));
      const second = call.verdict;
      return {
        ...result,
        verdict: {
          ...first,
          second_opinion: {
            perceived_error: second.perceived_error,
            reason: second.reason,
            judge: action.client.model,
            ...(second.confidence === undefined ? {} : { confidence: second.confidence }),
          },
        },
      };
    } catch (err) {
      onError(err);
      return result;
    }
  };
}
