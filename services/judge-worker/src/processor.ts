import type { BatchingProducer } from "@tracesift/kafka";
import {
  buildChatMessages,
  callCostUsd,
  type ChatMessage,
  InvalidOutputError,
  JudgeCallError,
  type JudgeClient,
  PROMPT_VERSION,
  priceFor,
  type PricingTable,
} from "@tracesift/judge";
import type { JudgeMetrics } from "@tracesift/metrics";
import type { FleetRateLimiter } from "@tracesift/rate-limit";
import type { ResultIndex } from "@tracesift/result-index";
import type { CostBudget } from "./budget.ts";
import type { Logger } from "@tracesift/runtime";
import {
  type DeadLetter,
  type DeadLetterReason,
  JudgeJob,
  type JudgedResult,
  PROVENANCE_HEADER,
  type TokenUsage,
} from "@tracesift/schemas";
import { DelayedError, type Job } from "bullmq";

export type ProcessorDeps = {
  client: JudgeClient;
  producer: BatchingProducer;
  metrics: JudgeMetrics;
  logger: Logger;
  pricing: PricingTable;
  outputTopic: string;
  deadLetterTopic: string;
  /** Fleet-wide pacing; absent means calls go out as fast as workers pick jobs. */
  limiter?: FleetRateLimiter;
  /** Records what was judged, so replays skip it. */
  index?: ResultIndex;
  budget?: CostBudget;
  /** Tokens the provider's limit charges for a call, from its usage. */
  chargedTokens: (usage: TokenUsage) => number;
  /** Aborted when the worker shuts down: jobs waiting for the limiter give their slot back. */
  shutdownSignal?: AbortSignal;
};

export function resultId(job: JudgeJob, model: string): string {
  return `${job.conversation.id}:${job.version.message_count}:${job.version.content_hash}:${model}:${PROMPT_VERSION}`;
}

/**
 * One judge job, end to end. Every path ends in exactly one record: a result on the output topic,
 * or a dead letter once attempts are spent. Rate limits and fleet stops delay the job without
 * spending an attempt.
 */
export function createProcessor(deps: ProcessorDeps, estimateTokens: (messages: ChatMessage[]) => number) {
  const { client, metrics, logger } = deps;
  const model = client.model;

  // A fleet stop is read at most once a second per process, not once per job: it is rare, and a
  // second's delay in noticing it costs at most the calls already under way.
  let stopCheck: { at: number; value: Promise<string | null> } | undefined;
  function stoppedFor(): Promise<string | null | undefined> {
    if (!deps.limiter) return Promise.resolve(undefined);
    if (!stopCheck || Date.now() - stopCheck.at > 1_000) stopCheck = { at: Date.now(), value: deps.limiter.isStopped() };
    return stopCheck.value;
  }

  return async function process(job: Job, token?: string): Promise<void> {
    const parsed = JudgeJob.safeParse(job.data);
    if (!parsed.success) {
      // A job we cannot read will never become readable: dead-letter now, do not retry.
      await deadLetter(job, null, "invalid_shape", `job payload is not a JudgeJob: ${parsed.error.issues[0]?.message ?? ""}`);
      return;
    }
    const data = parsed.data;
    const priority = data.priority;
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (job.attemptsMade === 0 && job.processedOn) {
      metrics.queueWait.observe({ priority }, Math.max(0, (job.processedOn - job.timestamp) / 1000));
    }

    const stopped = await stoppedFor();
    if (stopped) return delay(job, token, 30_000, `model stopped: ${stopped}`);
    const overBudgetMs = (await deps.budget?.blockedForMs(priority)) ?? 0;
    metrics.budgetPaused.set({ priority }, overBudgetMs > 0 ? 1 : 0);
    // Re-check at least once a minute: budgets can be raised without a restart of the window.
    if (overBudgetMs > 0) return delay(job, token, Math.min(overBudgetMs, 60_000), "cost budget reached");

    const messages = buildChatMessages(data.conversation);
    let lease: Awaited<ReturnType<FleetRateLimiter["acquire"]>> | undefined;
    try {
      lease = await deps.limiter?.acquire({
        tokens: estimateTokens(messages),
        completionTokens: client.maxTokens,
        priority,
        ...(deps.shutdownSignal ? { signal: deps.shutdownSignal } : {}),
      });
    } catch (err) {
      // Shutting down while waiting for capacity: hand the job back without spending an attempt.
      if (deps.shutdownSignal?.aborted) return delay(job, token, 1, "worker shutting down");
      throw err;
    }
    if (lease) metrics.rateLimitWait.observe({ model, priority }, lease.waitedMs / 1000);
    const started = performance.now();
    try {
      const call = await client.complete(messages, { conversationId: data.conversation.id });
      metrics.requestDuration.observe({ model }, call.latencyMs / 1000);
      metrics.requests.inc({ model, outcome: "ok" });
      const costUsd = recordUsage(call.usage, call.latencyMs, data);
      const result: JudgedResult = {
        schema_version: 1,
        result_id: resultId(data, model),
        status: "judged",
        conversation_id: data.conversation.id,
        conversation_version: data.version,
        metadata: data.conversation.metadata,
        source: data.source,
        priority,
        verdict: call.verdict,
        judge: { model, prompt_version: PROMPT_VERSION },
        usage: call.usage,
        cost_usd: costUsd,
        latency_ms: Math.round(call.latencyMs),
        ...(job.processedOn ? { queue_wait_ms: Math.max(0, job.processedOn - job.timestamp) } : {}),
        attempts: job.attemptsMade + 1,
        judged_at: new Date().toISOString(),
      };
      // Independent writes go together: a job holds its concurrency slot until the last one is
      // acknowledged, so their latencies must not add up. The index is written only once the
      // result is on the topic, so a replay never skips a conversation whose result was lost.
      const json = JSON.stringify(result);
      await Promise.all([
        lease?.settle(call.usage),
        deps.limiter?.onSuccess(),
        deps.limiter?.learnFromHeaders(call.headers),
        deps.budget?.record(costUsd),
        deps.producer
          .send({ topic: deps.outputTopic, key: data.conversation.id, value: json, headers: { [PROVENANCE_HEADER]: "judge-worker" } })
          .then(() => deps.index?.put(result, json)),
      ]);
      metrics.verdicts.inc({ app: appOf(data), verdict: call.verdict.perceived_error ? "perceived_error" : "no_error", priority });
      if (data.source.event_time) {
        metrics.endToEnd.observe({ priority }, Math.max(0, (Date.now() - Date.parse(data.source.event_time)) / 1000));
      }
    } catch (err) {
      if (err instanceof InvalidOutputError) {
        metrics.requests.inc({ model, outcome: "invalid_output" });
        // Billed and metered like any answer: settle the lease from what the provider charged.
        await (err.usage ? lease?.settle(err.usage) : lease?.release());
        logger.warn({ jobId: job.id, attempt: job.attemptsMade + 1, reason: err.message }, "invalid model output");
        if (lastAttempt) return deadLetter(job, data, "invalid_model_output", err.message, err.raw);
        throw err;
      }
      if (!(err instanceof JudgeCallError)) {
        await lease?.release();
        throw err;
      }
      metrics.requestDuration.observe({ model }, (performance.now() - started) / 1000);
      await lease?.release();
      if (err.kind === "rate_limited" || err.kind === "overloaded") {
        metrics.requests.inc({ model, outcome: err.kind });
        const pauseMs = deps.limiter
          ? await deps.limiter.onRateLimited({ status: err.status === 503 ? 503 : 429, ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}) })
          : (err.retryAfterMs ?? 1_000);
        return delay(job, token, pauseMs, err.message);
      }
      if (err.kind === "fatal") {
        metrics.requests.inc({ model, outcome: "fatal" });
        metrics.modelStopped.set({ model }, 1);
        logger.error({ model, status: err.status, reason: err.message }, "model rejected the request: stopping calls for this model until fixed (check FIREWORKS_API_KEY and JUDGE_MODEL)");
        await deps.limiter?.stop(err.message);
        return delay(job, token, 30_000, err.message);
      }
      metrics.requests.inc({ model, outcome: "error" });
      logger.warn({ jobId: job.id, attempt: job.attemptsMade + 1, reason: err.message }, "model call failed");
      if (lastAttempt) return deadLetter(job, data, "judge_failed", `after ${job.attemptsMade + 1} attempts: ${err.message}`);
      throw err;
    }
  };

  function recordUsage(usage: TokenUsage, latencyMs: number, data: JudgeJob): number {
    const { priority } = data;
    metrics.tokens.inc({ model, kind: "prompt", priority }, usage.prompt_tokens);
    metrics.tokens.inc({ model, kind: "cached_prompt", priority }, usage.cached_prompt_tokens);
    metrics.tokens.inc({ model, kind: "completion", priority }, usage.completion_tokens);
    const usd = callCostUsd(usage, latencyMs, priceFor(deps.pricing, model));
    metrics.cost.inc({ model, app: appOf(data), priority }, usd);
    return usd;
  }

  async function delay(job: Job, token: string | undefined, ms: number, why: string): Promise<never> {
    if (!token) throw new Error(`cannot delay job ${job.id} without a lock token (${why})`);
    // moveToDelayed + DelayedError: BullMQ re-queues the job without counting an attempt.
    await job.moveToDelayed(Date.now() + Math.max(1, Math.round(ms)), token);
    throw new DelayedError(why);
  }

  async function deadLetter(
    job: Job,
    data: JudgeJob | null,
    reasonCode: DeadLetterReason,
    reason: string,
    rawOutput?: string,
  ): Promise<void> {
    const letter: DeadLetter = {
      schema_version: 1,
      reason_code: reasonCode,
      reason,
      stage: "judge",
      source: data?.source ?? { topic: "unknown", partition: 0, offset: "-1" },
      original_key: data?.conversation.id ?? null,
      // The judge never had the original bytes; the job payload is what a re-drive needs.
      original_base64: Buffer.from(JSON.stringify(job.data)).toString("base64"),
      ...(data ? { conversation_id: data.conversation.id } : {}),
      ...(rawOutput !== undefined ? { raw_output: rawOutput } : {}),
      failed_at: new Date().toISOString(),
    };
    await deps.producer.send({
      topic: deps.deadLetterTopic,
      key: data?.conversation.id ?? String(job.id),
      value: JSON.stringify(letter),
      headers: { [PROVENANCE_HEADER]: "judge-worker", "tracesift-dlq-reason": reasonCode },
    });
    metrics.deadLetters.inc({ stage: "judge", reason: reasonCode });
    logger.warn({ jobId: job.id, reason_code: reasonCode, reason }, "dead-lettered");
  }
}

function appOf(job: JudgeJob): string {
  return job.conversation.metadata.app ?? "unknown";
}
