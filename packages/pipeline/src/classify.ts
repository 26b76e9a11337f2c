import { createHash } from "node:crypto";
import type { KafkaMessage } from "@tracesift/kafka";
import { headerString } from "@tracesift/kafka";
import { type FormatName, NormalizeError, normalizeEvent, type TraceFragment } from "@tracesift/normalize";
import {
  buildDeadLetter,
  type ConversationMetadata,
  type DeadLetter,
  type DeadLetterReason,
  PROVENANCE_HEADER,
  type SkipReason,
  type SourcePosition,
} from "@tracesift/schemas";

/** What to do with one Kafka message: buffer its fragments, skip them, or dead-letter the event. */
export type EventOutcome =
  | { kind: "fragments"; format: string; fragments: TraceFragment[]; source: SourcePosition }
  | { kind: "skipped"; format: string; fragments: TraceFragment[]; reason: SkipReason; source: SourcePosition }
  | { kind: "dead"; format: string; letter: DeadLetter };

export type Selection = {
  /** Share of conversations judged, decided by a hash of the conversation key (replays decide the same). */
  sampleRate: number;
  includeApps: string[];
  excludeApps: string[];
  /** Every listed metadata key must have the listed value. */
  requireMetadata: Record<string, string>;
};

export type ClassifyOptions = { maxEventBytes: number; format?: FormatName | undefined; selection: Selection };

/**
 * Never throws: whatever is wrong with an event becomes a dead letter with a reason, so one bad
 * event cannot stall its partition.
 */
export function classifyMessage(message: KafkaMessage, topic: string, partition: number, options: ClassifyOptions): EventOutcome[] {
  const source: SourcePosition = {
    topic,
    partition,
    offset: message.offset,
    event_time: new Date(Number(message.timestamp)).toISOString(),
  };
  const value = message.value;
  if (!value || value.length === 0) return dead(message, source, "invalid_json", "empty message value");
  if (value.length > options.maxEventBytes) {
    return dead(message, source, "oversized", `event is ${value.length} bytes, over the ${options.maxEventBytes}-byte limit`);
  }
  let event: unknown;
  try {
    event = JSON.parse(value.toString("utf8"));
  } catch (err) {
    return dead(message, source, "invalid_json", `not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  let fragments: TraceFragment[];
  try {
    fragments = normalizeEvent(event, options.format ? { format: options.format } : {});
  } catch (err) {
    if (err instanceof NormalizeError) return dead(message, source, err.code, err.message, err.format);
    return dead(message, source, "invalid_shape", `could not normalize: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (fragments.length === 0) return dead(message, source, "invalid_shape", "event holds no LLM conversation (no chat spans, runs or messages)");
  const format = fragments[0]?.source ?? "unknown";

  const ownTraffic = headerString(message.headers, PROVENANCE_HEADER) !== undefined;
  const kept: TraceFragment[] = [];
  const skipped = new Map<SkipReason, TraceFragment[]>();
  for (const f of fragments) {
    const reason = ownTraffic || isOwnCall(f.metadata) ? "own_judge_call" : selectionSkip(f, options.selection);
    if (reason) skipped.set(reason, [...(skipped.get(reason) ?? []), f]);
    else kept.push(f);
  }
  const outcomes: EventOutcome[] = [...skipped].map(([reason, fs]) => ({ kind: "skipped", format, fragments: fs, reason, source }));
  if (kept.length > 0) outcomes.push({ kind: "fragments", format, fragments: kept, source });
  return outcomes;
}

function dead(message: KafkaMessage, source: SourcePosition, reason_code: DeadLetterReason, reason: string, format = "unknown"): EventOutcome[] {
  return [{ kind: "dead", format, letter: deadLetter(message, source, reason_code, reason) }];
}

/** The judge's own calls, when users trace their HTTP clients: never judge the judge. */
function isOwnCall(metadata: ConversationMetadata): boolean {
  const service = metadata["service.name"] ?? metadata.app;
  return metadata["tracesift.origin"] !== undefined || (typeof service === "string" && service.startsWith("tracesift-"));
}

function selectionSkip(f: TraceFragment, s: Selection): SkipReason | null {
  const app = f.metadata.app ?? "";
  if (s.includeApps.length > 0 && !s.includeApps.includes(app)) return "filtered";
  if (s.excludeApps.includes(app)) return "filtered";
  for (const [k, v] of Object.entries(s.requireMetadata)) if (String(f.metadata[k]) !== v) return "filtered";
  if (s.sampleRate < 1 && sampleBucket(f.conversation_key) >= s.sampleRate) return "sampled_out";
  return null;
}

/** Uniform in [0, 1) from the conversation key: the same conversation is always in or out. */
export function sampleBucket(key: string): number {
  return createHash("sha256").update(key).digest().readUInt32BE(0) / 0x1_0000_0000;
}

export function deadLetter(message: KafkaMessage, source: SourcePosition, reason_code: DeadLetterReason, reason: string): DeadLetter {
  return buildDeadLetter({
    reason_code,
    reason,
    stage: "ingest",
    source,
    original_key: message.key ? message.key.toString("utf8") : null,
    original: message.value ?? null,
  });
}
