/**
 * From Kafka events to judge jobs: the path live ingest and backfill replay share, so a replayed
 * event is treated exactly like a live one.
 *
 * event ─classify→ fragments ─assembler→ ready conversation ─emit→ job | skipped result | dead letter
 */
import type { ConversationAssembler, ReadyConversation } from "@tracesift/assembly";
import type { BatchingProducer, KafkaMessage, OutgoingRecord } from "@tracesift/kafka";
import type { IngestMetrics } from "@tracesift/metrics";
import { type FormatName, FormatName as FormatNameSchema, isJudgeable, mergeFragments, type TraceFragment } from "@tracesift/normalize";
import { enqueueJudgeJobs, type JudgeQueue } from "@tracesift/queue";
import type { ResultIndex } from "@tracesift/result-index";
import {
  buildDeadLetter,
  type Conversation,
  conversationVersion,
  type DeadLetter,
  type JudgeIdentity,
  type JudgeJob,
  type Priority,
  PROVENANCE_HEADER,
  type SkippedResult,
  type SkipReason,
  type SourcePosition,
  skippedResultId,
} from "@tracesift/schemas";
import { z } from "zod";
import { classifyMessage, type Selection } from "./classify.ts";
import { type ConversationLimits, applyLimits } from "./limits.ts";

export { classifyMessage, type EventOutcome, sampleBucket, type Selection } from "./classify.ts";
export { applyLimits, type ConversationLimits } from "./limits.ts";

export type PipelineOptions = {
  queue: JudgeQueue;
  producer: BatchingProducer;
  assembler: ConversationAssembler;
  metrics: IngestMetrics;
  outputTopic: string;
  deadLetterTopic: string;
  maxEventBytes: number;
  maxAttempts: number;
  priority: Priority;
  /** `replay` label value for metrics: "live" or a replay's name. */
  replay: string;
  /** Per-topic format override; detection otherwise. */
  topicFormats: Record<string, FormatName>;
  /** Formats whose events are whole conversations (snapshots): judged at once, no idle wait. */
  immediateFormats: ReadonlySet<string>;
  selection: Selection;
  limits: ConversationLimits;
  /** Replays: conversations this judge already judged are not enqueued again. */
  skipJudged?: { index: ResultIndex; judge: JudgeIdentity } | undefined;
  /**
   * Skipped results and dead letters already written (by live ingest, an earlier replay, a
   * redelivery) are not written again. Without it, every redelivery writes them again, with the
   * same `result_id` / `dead_letter_id`.
   */
  recordIndex?: ResultIndex | undefined;
  /** Replays with --force: a distinct job id so BullMQ does not dedupe against the earlier job. */
  jobIdSuffix?: string | undefined;
  /** Called with every job enqueued (replays wait for them and total their cost). */
  onEnqueued?: ((jobs: JudgeJob[]) => void) | undefined;
};

export type Totals = { buffered: number; enqueued: number; skipped: number; alreadyJudged: number; deadLettered: number };
const zeroTotals = (): Totals => ({ buffered: 0, enqueued: 0, skipped: 0, alreadyJudged: 0, deadLettered: 0 });

const HEADERS = { [PROVENANCE_HEADER]: "ingest" };

/**
 * Handle one chunk of one partition. Resolves only when every fragment is in Redis, every ready
 * job is enqueued and every record is acknowledged by Kafka: the caller may then commit offsets.
 */
export async function handleChunk(messages: KafkaMessage[], topic: string, partition: number, options: PipelineOptions): Promise<Totals> {
  const timer = options.metrics.batchDuration.startTimer();
  const totals = zeroTotals();
  const records: OnceRecord[] = [];
  const items: { fragment: TraceFragment; source: SourcePosition; immediate: boolean }[] = [];
  // Events are counted per chunk: one increment per (format, outcome) rather than one per event.
  const counts = new Map<string, { format: string; outcome: string; n: number }>();
  const count = (format: string, outcome: string) => {
    const key = `${format}\u0000${outcome}`;
    const c = counts.get(key);
    if (c) c.n++;
    else counts.set(key, { format, outcome, n: 1 });
  };
  const classifyOptions = { maxEventBytes: options.maxEventBytes, format: options.topicFormats[topic], selection: options.selection };
    for (const m of messages) {
      for (const o of classifyMessage(m, topic, partition, classifyOptions)) {
        if (o.kind === "dead") {
          records.push(deadLetterRecord(o.letter, options));
          totals.deadLettered++;
          count(o.format, "dead_lettered");
        } else if (o.kind === "skipped") {
          for (const group of byConversation(o.fragments, (f) => f)) {
            records.push(skippedRecord(mergeFragments(group), o.source, o.reason, options));
          }
          totals.skipped++;
          count(o.format, "skipped");
        } else {
          const immediate = options.immediateFormats.has(o.format);
          for (const fragment of o.fragments) items.push({ fragment, source: o.source, immediate });
          totals.buffered++;
          count(o.format, "buffered");
        }
      }
    }
  // Whole-conversation events need no assembly: judged straight from the event, without Redis
  // round trips. Redeliveries map to the same job id, which BullMQ dedupes. A conversation's
  // position is that of its first event in the chunk.
  const whole = byConversation(
    items.filter((i) => i.immediate),
    (i) => i.fragment,
  ).map((group): ReadyConversation => {
    const first = group[0]!;
    const conversation = mergeFragments(group.map((i) => i.fragment));
    return { key: first.fragment.conversation_key, conversation, version: conversationVersion(conversation), source: first.source, previous: null };
  });
  const [buffered] = await Promise.all([options.assembler.add(items.filter((i) => !i.immediate)), sendOnce(records, options)]);
  const emitted = await emitReady([...whole, ...buffered], options, new Set(buffered));
  totals.enqueued += emitted.enqueued;
  totals.skipped += emitted.skipped;
  totals.alreadyJudged += emitted.alreadyJudged;
  totals.deadLettered += emitted.deadLettered;
  // Counted once the chunk is handled: a chunk that failed and is tried again (a full Redis, a
  // broker outage) is counted once, when it goes through.
  for (const c of counts.values()) options.metrics.events.inc({ topic, format: c.format, outcome: c.outcome, replay: options.replay }, c.n);
  options.metrics.batchSize.observe(messages.length);
  timer();
  return totals;
}

/**
 * Turn ready conversations into jobs or records, then ack them in the assembler. A version that
 * was already emitted (a duplicate delivery after the verdict) produces nothing new.
 */
export async function emitReady(
  ready: ReadyConversation[],
  options: PipelineOptions,
  /** Which of `ready` were claimed from the assembler and must be acked there (default: all). */
  claimed: ReadonlySet<ReadyConversation> = new Set(ready),
): Promise<Totals> {
  const totals = zeroTotals();
  if (ready.length === 0) return totals;
  const judged = options.skipJudged
    ? await options.skipJudged.index.has(
        ready.map((r) => ({ conversationId: r.conversation.id, version: r.version, judge: options.skipJudged!.judge })),
      )
    : [];
  const jobs: JudgeJob[] = [];
  const records: OnceRecord[] = [];
  for (const [i, r] of ready.entries()) {
    if (r.previous === r.version.content_hash) continue;
    if (judged[i]) {
      totals.alreadyJudged++;
      continue;
    }
    const limited = applyLimits(r.conversation, options.limits);
    if (limited.kind === "oversized") {
      records.push(deadLetterRecord(oversizedLetter(r, limited.reason), options));
      totals.deadLettered++;
      continue;
    }
    const conversation = limited.conversation;
    if (conversation.messages.length === 0 || !isJudgeable(conversation)) {
      records.push(skippedRecord(conversation, r.source, conversation.messages.length === 0 ? "empty" : "no_user_reply", options));
      totals.skipped++;
      continue;
    }
    jobs.push({
      conversation,
      // `r.version` is the version of `r.conversation`: only a trimmed conversation needs a new one.
      version: conversation === r.conversation ? r.version : conversationVersion(conversation),
      source: r.source,
      priority: options.priority,
      enqueued_at: new Date().toISOString(),
    });
    totals.enqueued++;
  }
  await Promise.all([
    enqueueJudgeJobs(options.queue, jobs, options.maxAttempts, options.jobIdSuffix),
    sendOnce(records, options),
  ]);
  options.onEnqueued?.(jobs);
  await Promise.all(ready.filter((r) => claimed.has(r)).map((r) => options.assembler.ack(r)));
  return totals;
}

/**
 * Emit conversations whose idle window has passed, every `intervalMs`. Any ingest replica may run
 * it: claims are atomic in Redis.
 */
export function startIdleSweep(options: PipelineOptions, intervalMs: number, onError: (err: unknown) => void) {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const tick = async () => {
    for (;;) {
      const ready = await options.assembler.claimDue(200);
      if (ready.length === 0 || stopped) return;
      await emitReady(ready, options);
    }
  };
  const timer = setInterval(() => {
    running = running.then(tick).catch(onError);
  }, intervalMs);
  return {
    async stop(): Promise<void> {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

/** Groups by conversation key, in order of first appearance, keeping the order within each group. */
function byConversation<T>(things: T[], fragmentOf: (t: T) => TraceFragment): T[][] {
  const groups = new Map<string, T[]>();
  for (const t of things) {
    const key = fragmentOf(t).conversation_key;
    const group = groups.get(key);
    if (group) group.push(t);
    else groups.set(key, [t]);
  }
  return [...groups.values()];
}

/** A record with a deterministic id, written once however often its event is delivered. */
type OnceRecord = { id: string; record: OutgoingRecord; count: () => void };

function skippedRecord(conversation: Conversation, source: SourcePosition, reason: SkipReason, options: PipelineOptions): OnceRecord {
  const version = conversationVersion(conversation);
  const result: SkippedResult = {
    schema_version: 1,
    result_id: skippedResultId(conversation.id, version),
    status: "skipped",
    skip_reason: reason,
    conversation_id: conversation.id,
    conversation_version: version,
    metadata: conversation.metadata,
    source,
    priority: options.priority,
    judged_at: new Date().toISOString(),
  };
  return {
    id: result.result_id,
    record: { topic: options.outputTopic, key: conversation.id, value: JSON.stringify(result), headers: HEADERS },
    count: () => options.metrics.verdicts.inc({ app: conversation.metadata.app ?? "unknown", verdict: "skipped", priority: options.priority }),
  };
}

/**
 * Sends the records not written before (a redelivery, a replay) and marks them written once Kafka
 * acknowledged them: a mark before the ack could lose a record, a mark after it at worst repeats one.
 */
async function sendOnce(records: OnceRecord[], options: PipelineOptions): Promise<void> {
  if (records.length === 0) return;
  const written = options.recordIndex ? await options.recordIndex.recordsWritten(records.map((r) => r.id)) : [];
  const fresh = records.filter((_, i) => !written[i]);
  await options.producer.sendAll(fresh.map((r) => r.record));
  for (const r of fresh) r.count();
  await options.recordIndex?.markRecords(fresh.map((r) => r.id));
}

function deadLetterRecord(letter: DeadLetter, options: PipelineOptions): OnceRecord {
  return {
    id: letter.dead_letter_id ?? "",
    record: {
      topic: options.deadLetterTopic,
      key: letter.original_key,
      value: JSON.stringify(letter),
      headers: { ...HEADERS, "tracesift-dlq-reason": letter.reason_code },
    },
    count: () => options.metrics.deadLetters.inc({ stage: "ingest", reason: letter.reason_code }),
  };
}

function oversizedLetter(r: ReadyConversation, reason: string): DeadLetter {
  return buildDeadLetter({
    reason_code: "oversized",
    reason,
    stage: "ingest",
    source: r.source,
    original_key: r.key,
    // The conversation was assembled from many events; what a re-drive needs is the conversation.
    original: Buffer.from(JSON.stringify({ id: r.conversation.id, metadata: r.conversation.metadata, messages: r.conversation.messages })),
    subject: `${r.key}\u0000${r.version.content_hash}`,
    conversation_id: r.conversation.id,
  });
}

const KeyValueList = z.string().transform((s, ctx) => {
  const out: Record<string, string> = {};
  for (const pair of s.split(",").map((p) => p.trim()).filter(Boolean)) {
    const eq = pair.indexOf("=");
    if (eq <= 0) {
      ctx.addIssue({ code: "custom", message: `expected key=value, got "${pair}"` });
      return z.NEVER;
    }
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return out;
});
const List = z.string().transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean));

/** Environment contract of the event → job path, shared by ingest and replay. */
export const PipelineEnv = z.object({
  /** Larger events are dead-lettered as `oversized` instead of being parsed. */
  MAX_EVENT_BYTES: z.coerce.number().int().positive().default(4 * 1024 * 1024),
  MAX_CONVERSATION_MESSAGES: z.coerce.number().int().positive().default(2000),
  MAX_CONVERSATION_CHARS: z.coerce.number().int().positive().default(2_000_000),
  TRIM_POLICY: z.enum(["none", "oldest-turns"]).default("none"),
  JUDGE_MAX_ATTEMPTS: z.coerce.number().int().positive().default(5),
  /** topic=format pairs, e.g. `spans=otel-genai`; other topics are detected per event. */
  TOPIC_FORMATS: KeyValueList.pipe(z.record(z.string(), FormatNameSchema)).default({}),
  /** Formats whose events carry whole conversations: judged at once instead of after the idle window. */
  IMMEDIATE_FORMATS: List.default(["openai"]),
  ASSEMBLY_MODE: z.enum(["idle", "per-turn"]).default("idle"),
  IDLE_WINDOW_MS: z.coerce.number().int().nonnegative().default(5 * 60_000),
  SAMPLE_RATE: z.coerce.number().min(0).max(1).default(1),
  INCLUDE_APPS: List.default([]),
  EXCLUDE_APPS: List.default([]),
  REQUIRE_METADATA: KeyValueList.default({}),
});
export type PipelineEnv = z.infer<typeof PipelineEnv>;

export function selectionFromEnv(env: PipelineEnv): Selection {
  return { sampleRate: env.SAMPLE_RATE, includeApps: env.INCLUDE_APPS, excludeApps: env.EXCLUDE_APPS, requireMetadata: env.REQUIRE_METADATA };
}

export function limitsFromEnv(env: PipelineEnv): ConversationLimits {
  return { maxMessages: env.MAX_CONVERSATION_MESSAGES, maxChars: env.MAX_CONVERSATION_CHARS, trim: env.TRIM_POLICY };
}
