import type { KafkaMessage } from "@tracesift/kafka";
import { headerString } from "@tracesift/kafka";
import { isJudgeable, mergeFragments, NormalizeError, normalizeEvent, type TraceFragment } from "@tracesift/normalize";
import {
  type Conversation,
  conversationVersion,
  type DeadLetter,
  type DeadLetterReason,
  type JudgeJob,
  type Priority,
  PROVENANCE_HEADER,
  type SkippedResult,
  type SkipReason,
  type SourcePosition,
} from "@tracesift/schemas";

export type Outcome =
  | { kind: "job"; format: string; job: JudgeJob }
  | { kind: "skipped"; format: string; result: SkippedResult }
  | { kind: "dead"; format: string; letter: DeadLetter };

export type ClassifyOptions = { maxEventBytes: number; priority: Priority };

/**
 * Turns one Kafka message into what must happen to it. Never throws: whatever is wrong with an
 * event becomes a dead letter with a reason, so one bad event cannot stall its partition.
 */
export function classifyMessage(message: KafkaMessage, topic: string, partition: number, options: ClassifyOptions): Outcome[] {
  const source: SourcePosition = {
    topic,
    partition,
    offset: message.offset,
    event_time: new Date(Number(message.timestamp)).toISOString(),
  };
  const value = message.value;
  const dead = (reason_code: DeadLetterReason, reason: string, format = "unknown"): Outcome[] => [
    { kind: "dead", format, letter: deadLetter(message, source, reason_code, reason) },
  ];
  if (!value || value.length === 0) return dead("invalid_json", "empty message value");
  if (value.length > options.maxEventBytes) {
    return dead("oversized", `event is ${value.length} bytes, over the ${options.maxEventBytes}-byte limit`);
  }
  let event: unknown;
  try {
    event = JSON.parse(value.toString("utf8"));
  } catch (err) {
    return dead("invalid_json", `not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  let fragments: TraceFragment[];
  try {
    fragments = normalizeEvent(event);
  } catch (err) {
    if (err instanceof NormalizeError) return dead(err.code, err.message);
    return dead("invalid_shape", `could not normalize: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (fragments.length === 0) return dead("invalid_shape", "event holds no conversation");

  const ownTraffic = headerString(message.headers, PROVENANCE_HEADER) !== undefined;
  const byKey = new Map<string, TraceFragment[]>();
  for (const f of fragments) byKey.set(f.conversation_key, [...(byKey.get(f.conversation_key) ?? []), f]);

  return [...byKey.values()].map((group) => {
    const conversation = mergeFragments(group);
    const format = conversation.source;
    if (ownTraffic) return skipped(conversation, source, options.priority, "own_judge_call", format);
    if (conversation.messages.length === 0) return skipped(conversation, source, options.priority, "empty", format);
    if (!isJudgeable(conversation)) return skipped(conversation, source, options.priority, "no_user_reply", format);
    const job: JudgeJob = {
      conversation,
      version: conversationVersion(conversation),
      source,
      priority: options.priority,
      enqueued_at: new Date().toISOString(),
    };
    return { kind: "job", format, job };
  });
}

function skipped(conversation: Conversation, source: SourcePosition, priority: Priority, reason: SkipReason, format: string): Outcome {
  const version = conversationVersion(conversation);
  return {
    kind: "skipped",
    format,
    result: {
      schema_version: 1,
      result_id: `${conversation.id}:${version.message_count}:${version.content_hash}:skipped`,
      status: "skipped",
      skip_reason: reason,
      conversation_id: conversation.id,
      conversation_version: version,
      metadata: conversation.metadata,
      source,
      priority,
      judged_at: new Date().toISOString(),
    },
  };
}

function deadLetter(message: KafkaMessage, source: SourcePosition, reason_code: DeadLetterReason, reason: string): DeadLetter {
  return {
    schema_version: 1,
    reason_code,
    reason,
    stage: "ingest",
    source,
    original_key: message.key ? message.key.toString("utf8") : null,
    original_base64: message.value ? message.value.toString("base64") : null,
    failed_at: new Date().toISOString(),
  };
}
