/**
 * Fine-tuning data in the format Fireworks' SFT jobs take: one `{"messages": [...]}` per line,
 * and exactly what the judge sees at inference (the same system prompt and rendered transcript),
 * with the labelled verdict as the assistant's answer in the judge's wire format.
 */
import { createHash } from "node:crypto";
import { renderTranscript, SYSTEM_PROMPT } from "@tracesift/judge";
import type { Conversation, Verdict } from "@tracesift/schemas";
import { z } from "zod";

export const SftRecord = z.strictObject({
  messages: z.tuple([
    z.strictObject({ role: z.literal("system"), content: z.string().min(1) }),
    z.strictObject({ role: z.literal("user"), content: z.string().min(1) }),
    z.strictObject({ role: z.literal("assistant"), content: z.string().min(1) }),
  ]),
});
export type SftRecord = z.infer<typeof SftRecord>;

export function toSftRecord(conversation: Pick<Conversation, "messages">, verdict: Verdict): SftRecord {
  return {
    messages: [
      { role: "system", content: SYSTEM_PROMPT },
      { role: "user", content: renderTranscript(conversation) },
      // Key order and spelling exactly as the judge must answer.
      { role: "assistant", content: JSON.stringify({ perceived_error: verdict.perceived_error, reason: verdict.reason }) },
    ],
  };
}

export const DEFAULT_SPLIT_SALT = "tracesift-sft-v1";

/**
 * Where a conversation falls in [0, 1): the first 32 bits of sha256(salt NUL id). Depends on the
 * id alone, so a conversation stays on its side of the split whatever else is in the file and in
 * whatever order, and a grown dataset keeps its old holdout.
 */
export function splitBucket(conversationId: string, salt = DEFAULT_SPLIT_SALT): number {
  const digest = createHash("sha256").update(`${salt}\u0000${conversationId}`).digest();
  return digest.readUInt32BE(0) / 2 ** 32;
}

export function isHoldout(conversationId: string, holdout: number, salt = DEFAULT_SPLIT_SALT): boolean {
  return splitBucket(conversationId, salt) < holdout;
}
