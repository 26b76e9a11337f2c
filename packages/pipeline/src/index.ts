/**
 * From Kafka events to judge jobs: the path live ingest and backfill replay share, so a replayed
 * event is treated exactly like a live one.
 */
import { type BatchingProducer, type KafkaMessage, type OutgoingRecord } from "@tracesift/kafka";
import type { IngestMetrics } from "@tracesift/metrics";
import { enqueueJudgeJobs } from "@tracesift/queue";
import { type JudgeJob, type Priority, PROVENANCE_HEADER } from "@tracesift/schemas";
import type { Queue } from "bullmq";
import { classifyMessage, type Outcome } from "./classify.ts";

export { classifyMessage, type Outcome } from "./classify.ts";

export type PipelineOptions = {
  queue: Queue<JudgeJob>;
  producer: BatchingProducer;
  metrics: IngestMetrics;
  outputTopic: string;
  deadLetterTopic: string;
  maxEventBytes: number;
  maxAttempts: number;
  priority: Priority;
  /** `replay` label value for metrics: "live" or a replay's name. */
  replay: string;
};

export type ChunkTotals = { enqueued: number; skipped: number; deadLettered: number };

/**
 * Handle one chunk of one partition. Resolves only when every job is in Redis and every skipped
 * result and dead letter is acknowledged by Kafka: the caller may then commit the offsets.
 */
export async function handleChunk(
  messages: KafkaMessage[],
  topic: string,
  partition: number,
  options: PipelineOptions,
): Promise<ChunkTotals> {
  const timer = options.metrics.batchDuration.startTimer();
  const outcomes: Outcome[] = messages.flatMap((m) =>
    classifyMessage(m, topic, partition, { maxEventBytes: options.maxEventBytes, priority: options.priority }),
  );
  const jobs: JudgeJob[] = [];
  const records: OutgoingRecord[] = [];
  const headers = { [PROVENANCE_HEADER]: "ingest" };
  for (const o of outcomes) {
    if (o.kind === "job") jobs.push(o.job);
    else if (o.kind === "skipped") {
      records.push({ topic: options.outputTopic, key: o.result.conversation_id, value: JSON.stringify(o.result), headers });
    } else {
      records.push({
        topic: options.deadLetterTopic,
        key: o.letter.original_key,
        value: JSON.stringify(o.letter),
        headers: { ...headers, "tracesift-dlq-reason": o.letter.reason_code },
      });
    }
  }
  await Promise.all([enqueueJudgeJobs(options.queue, jobs, options.maxAttempts), options.producer.sendAll(records)]);

  const totals: ChunkTotals = { enqueued: 0, skipped: 0, deadLettered: 0 };
  for (const o of outcomes) {
    const outcome = o.kind === "job" ? "enqueued" : o.kind === "skipped" ? "skipped" : "dead_lettered";
    options.metrics.events.inc({ topic, format: o.format, outcome, replay: options.replay });
    if (o.kind === "job") totals.enqueued++;
    else if (o.kind === "skipped") totals.skipped++;
    else {
      totals.deadLettered++;
      options.metrics.deadLetters.inc({ stage: "ingest", reason: o.letter.reason_code });
    }
  }
  options.metrics.batchSize.observe(messages.length);
  timer();
  return totals;
}
