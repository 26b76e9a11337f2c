import { ConversationMetadata, Message } from "@tracesift/schemas";
import { z } from "zod";

export const FORMAT_NAMES = ["openai", "langsmith", "otel-genai", "openinference", "langfuse"] as const;
export const FormatName = z.enum(FORMAT_NAMES);
export type FormatName = z.infer<typeof FormatName>;

/** A message in the judge's schema: human, assistant or system text, never a tool call or result. */
export type NormalizedMessage = Message;

/**
 * What one event says about one conversation: usually one LLM call (a span, a run, an observation).
 * A conversation is rebuilt from all its fragments by `mergeFragments`. Snake_case because fragments
 * are buffered as JSON between ingest and merge.
 */
export const TraceFragment = z.object({
  source: FormatName,
  /** Thread/session/conversation id when the trace has one, else the trace id, else the event id. */
  conversation_key: z.string().min(1),
  /** Span/run/observation id: a redelivered or re-exported fragment replaces the earlier copy. */
  fragment_id: z.string().min(1),
  trace_id: z.string().min(1).optional(),
  messages: z.array(Message),
  started_at: z.iso.datetime({ offset: true }).optional(),
  ended_at: z.iso.datetime({ offset: true }).optional(),
  metadata: ConversationMetadata,
  /** The event said the conversation is over (see README "End of conversation"). */
  end: z.boolean(),
});
export type TraceFragment = z.infer<typeof TraceFragment>;

/** Fragments exactly as `TraceFragment` parsing returned them (see `markValidated`). */
const validated = new WeakSet<TraceFragment>();

/**
 * Records that `TraceFragment` parsing produced this fragment, so what it merges into alone needs no
 * second validation. Fragments are never mutated after normalization.
 */
export function markValidated(fragment: TraceFragment): TraceFragment {
  validated.add(fragment);
  return fragment;
}

export function isValidated(fragment: TraceFragment): boolean {
  return validated.has(fragment);
}

/** Codes are a subset of the dead-letter reasons so ingest can route errors without a mapping table. */
export type NormalizeErrorCode = "invalid_json" | "invalid_shape" | "unknown_format" | "oversized";

export class NormalizeError extends Error {
  override name = "NormalizeError";
  constructor(
    readonly code: NormalizeErrorCode,
    message: string,
    readonly format?: FormatName,
  ) {
    super(message);
  }
}

export interface NormalizeOptions {
  /** Skip detection and read the event as this format. */
  format?: FormatName;
  /**
   * Upper bound on messages in one event (summed over its fragments); above it the event is
   * `oversized` rather than silently cut, because the judge must see whole conversations.
   */
  maxMessages?: number;
  /**
   * Model calls of a nested agent (under a tool span, or with another system prompt in the same
   * trace): `skip` (default) leaves them out; `separate` keys them as their own conversation.
   */
  subAgents?: "skip" | "separate";
}

export const DEFAULT_MAX_MESSAGES = 2000;
