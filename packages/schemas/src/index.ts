/**
 * The wire contracts of Tracesift: what flows between Kafka, Redis and the judge.
 * Every external input is parsed with these schemas at the edge; everything inside is typed.
 * Field names are snake_case because they are the JSON that users' consumers read.
 */
import { createHash } from "node:crypto";
import { z } from "zod";

export const Role = z.enum(["user", "assistant", "system"]);
export type Role = z.infer<typeof Role>;

export const Message = z.object({
  role: Role,
  content: z.string(),
  /** ISO-8601 time the message was produced, when the trace says so. */
  timestamp: z.iso.datetime({ offset: true }).optional(),
});
export type Message = z.infer<typeof Message>;

/** Low-cardinality labels users slice dashboards by, plus whatever else the trace carried. */
export const ConversationMetadata = z
  .object({
    app: z.string().optional(),
    project: z.string().optional(),
    environment: z.string().optional(),
  })
  .catchall(z.union([z.string(), z.number(), z.boolean(), z.null()]));
export type ConversationMetadata = z.infer<typeof ConversationMetadata>;

export const Conversation = z.object({
  id: z.string().min(1),
  /** The input format it was normalized from, e.g. `openai`, `langsmith`, `otel-genai`. */
  source: z.string().min(1),
  messages: z.array(Message),
  started_at: z.iso.datetime({ offset: true }).optional(),
  updated_at: z.iso.datetime({ offset: true }).optional(),
  metadata: ConversationMetadata.default({}),
});
export type Conversation = z.infer<typeof Conversation>;

/** Where an event was read from; carried through to results and dead letters for traceability. */
export const SourcePosition = z.object({
  topic: z.string(),
  partition: z.number().int().nonnegative(),
  offset: z.string(),
  /** Kafka message timestamp (ISO), the clock for end-to-end latency. */
  event_time: z.iso.datetime({ offset: true }).optional(),
});
export type SourcePosition = z.infer<typeof SourcePosition>;

export const Priority = z.enum(["live", "backfill"]);
export type Priority = z.infer<typeof Priority>;

/** A conversation changes as turns arrive; the version says which state a verdict is about. */
export const ConversationVersion = z.object({
  message_count: z.number().int().nonnegative(),
  content_hash: z.string(),
});
export type ConversationVersion = z.infer<typeof ConversationVersion>;

export const JudgeJob = z.object({
  conversation: Conversation,
  version: ConversationVersion,
  source: SourcePosition,
  priority: Priority.default("live"),
  enqueued_at: z.iso.datetime({ offset: true }),
});
export type JudgeJob = z.infer<typeof JudgeJob>;

/** Exactly the judge model's wire format; anything else from the model is invalid output. */
export const Verdict = z.strictObject({
  perceived_error: z.boolean(),
  reason: z.string().min(1),
});
export type Verdict = z.infer<typeof Verdict>;

/** A verdict given by another judge (an arbiter) because the first one was unsure. */
export const SecondOpinion = z.object({
  perceived_error: z.boolean(),
  reason: z.string().min(1),
  judge: z.string(),
  confidence: z.number().min(0).max(1).optional(),
});
export type SecondOpinion = z.infer<typeof SecondOpinion>;

/**
 * The verdict block of a judged result: the model's verdict, plus what the fleet learned about it.
 * `confidence` is the probability of the chosen `perceived_error` value, present only when the
 * provider returned log-probabilities; `second_opinion` only for verdicts inside the uncertain band.
 */
export const VerdictBlock = Verdict.extend({
  confidence: z.number().min(0).max(1).optional(),
  second_opinion: SecondOpinion.optional(),
  /** Set when an uncertain verdict was written to the review file instead of a second opinion. */
  review: z.literal("pending").optional(),
});
export type VerdictBlock = z.infer<typeof VerdictBlock>;

export const TokenUsage = z.object({
  prompt_tokens: z.number().int().nonnegative(),
  cached_prompt_tokens: z.number().int().nonnegative(),
  completion_tokens: z.number().int().nonnegative(),
  total_tokens: z.number().int().nonnegative(),
});
export type TokenUsage = z.infer<typeof TokenUsage>;

export const JudgeIdentity = z.object({
  model: z.string(),
  prompt_version: z.string(),
  /** How the verdict was obtained: absent or `live` for a chat call, `batch` for the provider's Batch API. */
  mode: z.enum(["live", "batch"]).optional(),
});
export type JudgeIdentity = z.infer<typeof JudgeIdentity>;

const resultCommon = {
  schema_version: z.literal(1),
  /** Stable per (conversation version, judge): consumers dedupe redeliveries on it. */
  result_id: z.string(),
  conversation_id: z.string(),
  conversation_version: ConversationVersion,
  metadata: ConversationMetadata,
  source: SourcePosition,
  priority: Priority,
};

export const JudgedResult = z.object({
  ...resultCommon,
  status: z.literal("judged"),
  verdict: VerdictBlock,
  judge: JudgeIdentity,
  usage: TokenUsage,
  cost_usd: z.number().nonnegative(),
  latency_ms: z.number().nonnegative(),
  /** From enqueue to a worker starting the job: what priority and the live reserve keep low. */
  queue_wait_ms: z.number().nonnegative().optional(),
  attempts: z.number().int().positive(),
  judged_at: z.iso.datetime({ offset: true }),
});
export type JudgedResult = z.infer<typeof JudgedResult>;

export const SkipReason = z.enum(["no_user_reply", "empty", "sampled_out", "filtered", "own_judge_call"]);
export type SkipReason = z.infer<typeof SkipReason>;

export const SkippedResult = z.object({
  ...resultCommon,
  status: z.literal("skipped"),
  skip_reason: SkipReason,
  judged_at: z.iso.datetime({ offset: true }),
});
export type SkippedResult = z.infer<typeof SkippedResult>;

export const JudgeResult = z.discriminatedUnion("status", [JudgedResult, SkippedResult]);
export type JudgeResult = z.infer<typeof JudgeResult>;

export const DeadLetterReason = z.enum([
  "invalid_json",
  "invalid_shape",
  "unknown_format",
  "oversized",
  "invalid_model_output",
  "judge_failed",
  /** The conversation can never fit the provider's per-call or per-window token limit. */
  "request_too_large",
  /** Workers holding the job died (kill -9, OOM) more often than the stall limit allows. */
  "worker_lost",
  /** The verdict was paid for but could not be published in time: it is inside the letter. */
  "publish_failed",
]);
export type DeadLetterReason = z.infer<typeof DeadLetterReason>;

/**
 * A dead letter keeps the original bytes (base64) so a re-drive can replay them unchanged, up to
 * `MAX_EMBEDDED_ORIGINAL_BYTES`: a letter must always fit in a Kafka message, or the consumer that
 * writes it stops. Larger originals are named by size, hash and source position instead, and are
 * re-read from the source topic while Kafka retains them.
 */
export const DeadLetter = z.object({
  schema_version: z.literal(1),
  /** Deterministic per (stage, source event, subject, reason): consumers dedupe redeliveries on it. */
  dead_letter_id: z.string().optional(),
  reason_code: DeadLetterReason,
  reason: z.string(),
  stage: z.enum(["ingest", "judge"]),
  source: SourcePosition,
  original_key: z.string().nullable(),
  original_base64: z.string().nullable(),
  /** Size and sha256 (hex) of the original bytes, whether embedded or not. */
  original_bytes: z.number().int().nonnegative().optional(),
  original_sha256: z.string().optional(),
  /** True when the original was too large to embed: re-read it from `source`. */
  original_truncated: z.boolean().optional(),
  conversation_id: z.string().optional(),
  /** The model's raw answer when the reason is invalid output. */
  raw_output: z.string().optional(),
  /** A verdict that was paid for but could not be published (`publish_failed`). */
  result: JudgedResult.optional(),
  failed_at: z.iso.datetime({ offset: true }),
});
export type DeadLetter = z.infer<typeof DeadLetter>;

/** What a dead letter may embed of its original: well under Kafka's default 1 MB message limit. */
export const MAX_EMBEDDED_ORIGINAL_BYTES = 256 * 1024;
const MAX_RAW_OUTPUT_CHARS = 16 * 1024;

/**
 * The one builder of dead letters, for ingest, replay and the judge workers: the id, the cap on
 * what is embedded, and the hash that lets an operator match a truncated letter to its event.
 * `subject` distinguishes several letters from one source event (e.g. two conversations in one
 * span batch), and is the conversation key and version for judge-stage letters.
 */
export function buildDeadLetter(input: {
  reason_code: DeadLetterReason;
  reason: string;
  stage: "ingest" | "judge";
  source: SourcePosition;
  original_key: string | null;
  original: Buffer | null;
  subject?: string;
  conversation_id?: string;
  raw_output?: string;
  result?: JudgedResult;
}): DeadLetter {
  const { original } = input;
  const embed = original !== null && original.length <= MAX_EMBEDDED_ORIGINAL_BYTES;
  return {
    schema_version: 1,
    dead_letter_id: deadLetterId(input.stage, input.source, input.subject ?? "", input.reason_code),
    reason_code: input.reason_code,
    // A reason can quote the event (a parse error near a position): it is capped like the rest.
    reason: input.reason.length > 2_000 ? `${input.reason.slice(0, 2_000)}…` : input.reason,
    stage: input.stage,
    source: input.source,
    original_key: input.original_key,
    original_base64: embed ? original.toString("base64") : null,
    ...(original !== null
      ? { original_bytes: original.length, original_sha256: createHash("sha256").update(original).digest("hex"), ...(embed ? {} : { original_truncated: true }) }
      : {}),
    ...(input.conversation_id !== undefined ? { conversation_id: input.conversation_id } : {}),
    ...(input.raw_output !== undefined ? { raw_output: input.raw_output.slice(0, MAX_RAW_OUTPUT_CHARS) } : {}),
    ...(input.result !== undefined ? { result: input.result } : {}),
    failed_at: new Date().toISOString(),
  };
}

export function deadLetterId(stage: string, source: SourcePosition, subject: string, reason: DeadLetterReason): string {
  const h = createHash("sha256").update(`${stage}\u0000${source.topic}\u0000${source.partition}\u0000${source.offset}\u0000${subject}\u0000${reason}`).digest("hex");
  return `dl-${h.slice(0, 32)}`;
}

/** Stable per (conversation version, judge): the id consumers dedupe judged results on. */
export function judgedResultId(conversationId: string, version: ConversationVersion, judge: JudgeIdentity): string {
  return `${conversationId}:${version.message_count}:${version.content_hash}:${judge.model}:${judge.prompt_version}`;
}

/** Stable per conversation version: a redelivered event that is skipped again gets the same id. */
export function skippedResultId(conversationId: string, version: ConversationVersion): string {
  return `${conversationId}:${version.message_count}:${version.content_hash}:skipped`;
}

/** Version of a conversation state: message count plus a hash over roles and contents. */
export function conversationVersion(conversation: Pick<Conversation, "messages">): ConversationVersion {
  // `role NUL content SOH` for every message, concatenated and hashed in one native call: the same
  // bytes as hashing the pieces one by one (UTF-8 never joins the ASCII separators with a neighbour).
  let text = "";
  for (const m of conversation.messages) text += `${m.role}\u0000${m.content}\u0001`;
  return { message_count: conversation.messages.length, content_hash: createHash("sha256").update(text).digest("hex").slice(0, 16) };
}

/** Kafka header that marks Tracesift's own traffic, so the fleet never judges its own calls. */
export const PROVENANCE_HEADER = "tracesift-origin";
