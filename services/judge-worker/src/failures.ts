/**
 * Every terminal failure of a judge job ends as exactly one record, from one place: the failed-job
 * sweeper. Whatever put a job in BullMQ's failed set — attempts spent, an error that cannot succeed
 * on retry, workers killed while holding it ("stalled more than allowable limit") — the sweeper
 * finds it there, writes the record (the kept verdict if one was paid for, else a dead letter with
 * a named reason) and only then removes the job.
 */
import type { BatchingProducer } from "@tracesift/kafka";
import type { Logger } from "@tracesift/runtime";
import type { JudgeMetrics } from "@tracesift/metrics";
import type { ResultIndex } from "@tracesift/result-index";
import { decodeJudgeJob } from "@tracesift/queue";
import { buildDeadLetter, type DeadLetterReason, type JudgeIdentity, PROVENANCE_HEADER } from "@tracesift/schemas";
import { type Job, type Queue, UnrecoverableError } from "bullmq";
import type { Redis } from "ioredis";
import { z } from "zod";

const PREFIX = "tracesift-failure:";
const Coded = z.object({ code: z.string(), reason: z.string(), raw_output: z.string().optional() });

function encode(code: DeadLetterReason, reason: string, rawOutput?: string): string {
  return PREFIX + JSON.stringify({ code, reason, ...(rawOutput !== undefined ? { raw_output: rawOutput } : {}) });
}

/** A failure worth retrying; if it is the last attempt, its code names the dead letter. */
export function failure(code: DeadLetterReason, reason: string, rawOutput?: string): Error {
  return new Error(encode(code, reason, rawOutput));
}

/** A failure that no retry can fix: BullMQ fails the job at once. */
export function terminal(code: DeadLetterReason, reason: string): UnrecoverableError {
  return new UnrecoverableError(encode(code, reason));
}

/** The dead letter's reason for a job in the failed set, from BullMQ's `failedReason`. */
export function describeFailure(failedReason: string | undefined, attemptsMade: number): { code: DeadLetterReason; reason: string; rawOutput?: string } {
  const text = failedReason ?? "";
  if (text.startsWith(PREFIX)) {
    const parsed = Coded.safeParse(safeJson(text.slice(PREFIX.length)));
    if (parsed.success) {
      const code = parsed.data.code as DeadLetterReason;
      const reason = code === "judge_failed" || code === "invalid_model_output" ? `after ${attemptsMade} attempts: ${parsed.data.reason}` : parsed.data.reason;
      return { code, reason, ...(parsed.data.raw_output !== undefined ? { rawOutput: parsed.data.raw_output } : {}) };
    }
  }
  if (/stalled more than allowable limit|max started attempts/i.test(text)) {
    return { code: "worker_lost", reason: `workers holding the job stopped (killed or out of memory) ${attemptsMade > 0 ? `after ${attemptsMade} attempts ` : ""}more often than the stall limit allows: ${text}` };
  }
  return { code: "judge_failed", reason: `after ${attemptsMade} attempts: ${text || "unknown error"}` };
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}

export type SweeperDeps = {
  queue: Queue;
  redis: Redis;
  prefix: string;
  producer: BatchingProducer;
  index: ResultIndex;
  judge: JudgeIdentity;
  outputTopic: string;
  deadLetterTopic: string;
  metrics: JudgeMetrics;
  logger: Logger;
};

/**
 * Sweeps the failed set every `intervalMs`. Any replica may run it: a job is claimed in Redis
 * before its record is written, and a letter's deterministic id lets a crash between writing and
 * removing it produce at most an identical duplicate, never a loss.
 */
export function startFailedJobSweeper(deps: SweeperDeps, intervalMs: number) {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const sweep = async () => {
    const jobs = await deps.queue.getFailed(0, 99);
    for (const job of jobs) {
      if (stopped) return;
      if (!job?.id) continue;
      const claimed = await deps.redis.set(`${deps.prefix}:failed-claim:${job.id}`, "1", "PX", 60_000, "NX");
      if (claimed !== "OK") continue;
      try {
        await settleFailedJob(job, deps);
        await job.remove();
      } catch (err) {
        // Left in the failed set: the claim expires and a later sweep tries again.
        deps.logger.warn({ jobId: job.id, err: err instanceof Error ? err.message : String(err) }, "could not settle a failed job yet");
      }
    }
  };
  const timer = setInterval(() => {
    running = running.then(sweep).catch((err) => deps.logger.warn({ err: err instanceof Error ? err.message : String(err) }, "failed-job sweep failed"));
  }, intervalMs);
  return {
    async stop(): Promise<void> {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

async function settleFailedJob(job: Job, deps: SweeperDeps): Promise<void> {
  const decoded = decodeJudgeJob(job.data);
  const data = decoded.ok ? decoded.job : null;
  const { code, reason, rawOutput } = describeFailure(job.failedReason, job.attemptsMade);
  const state = data ? await deps.index.lookup({ conversationId: data.conversation.id, version: data.version, judge: deps.judge }) : null;
  if (state?.published) return;
  if (state?.kept && code !== "publish_failed") {
    // Paid for before the job failed (its worker died after the call): the verdict is the record.
    const json = JSON.stringify(state.kept);
    await deps.producer.send({ topic: deps.outputTopic, key: state.kept.conversation_id, value: json, headers: { [PROVENANCE_HEADER]: "judge-worker" } });
    await deps.index.published(state.kept, json);
    deps.logger.info({ jobId: job.id, conversation_id: state.kept.conversation_id }, "published a kept verdict of a failed job");
    return;
  }
  const letter = buildDeadLetter({
    reason_code: code,
    reason,
    stage: "judge",
    source: data?.source ?? { topic: "unknown", partition: 0, offset: "-1" },
    original_key: data?.conversation.id ?? null,
    // The judge never had the original bytes; the decoded job is what a re-drive needs.
    original: Buffer.from(JSON.stringify(data ?? job.data)),
    subject: String(job.id),
    ...(data ? { conversation_id: data.conversation.id } : {}),
    ...(rawOutput !== undefined ? { raw_output: rawOutput } : {}),
    ...(state?.kept ? { result: state.kept } : {}),
  });
  const id = letter.dead_letter_id ?? "";
  const [written] = await deps.index.recordsWritten([id]);
  if (!written) {
    await deps.producer.send({
      topic: deps.deadLetterTopic,
      key: data?.conversation.id ?? String(job.id),
      value: JSON.stringify(letter),
      headers: { [PROVENANCE_HEADER]: "judge-worker", "tracesift-dlq-reason": code },
    });
    await deps.index.markRecords([id]);
    deps.metrics.deadLetters.inc({ stage: "judge", reason: code });
  }
  // A kept verdict in a letter is settled: a later redelivery must not pay for it again.
  if (state?.kept) await deps.index.published(state.kept);
  deps.logger.warn({ jobId: job.id, reason_code: code, reason }, "dead-lettered");
}
