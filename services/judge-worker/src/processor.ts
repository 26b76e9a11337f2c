import type { BatchingProducer } from "@tracesift/kafka";
import {
  buildChatMessages,
  callCostUsd,
  type ChatMessage,
  InvalidOutputError,
  type JudgeCall,
  JudgeCallError,
  type JudgeClient,
  PROMPT_VERSION,
  priceFor,
  type PricingTable,
} from "@tracesift/judge";
import type { JudgeMetrics } from "@tracesift/metrics";
import { type FleetRateLimiter, RequestTooLargeError } from "@tracesift/rate-limit";
import type { ResultIndex } from "@tracesift/result-index";
import type { CostBudget } from "./budget.ts";
import type { Logger } from "@tracesift/runtime";
import { type BackpressureWatch, decodeJudgeJob, isRedisFullError } from "@tracesift/queue";
import { type JudgeJob, type JudgedResult, judgedResultId, PROVENANCE_HEADER, type TokenUsage } from "@tracesift/schemas";
import { failure, terminal } from "./failures.ts";
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
  /** Aborted when the worker shuts down: jobs waiting for the limiter give their slot back. */
  shutdownSignal?: AbortSignal;
  /** How long a paid verdict's publication is retried before it is dead-lettered (default 10 min). */
  publishDeadlineMs?: number;
  /** A second verdict for uncertain ones (`UNCERTAIN_BAND`), kept in the record beside the first. */
  secondOpinion?: (conversation: JudgeJob["conversation"], result: JudgedResult) => Promise<JudgedResult>;
  /** Where a result goes instead of `outputTopic` (canaries go to their own topic). */
  topicFor?: (job: JudgeJob) => string | undefined;
  /** Told of each published verdict (OTLP evaluation events); must not throw. */
  onPublished?: (result: JudgedResult) => void;
  /**
   * Redis memory against the worker's marks: no model call starts while Redis has no room for
   * what must be written after it (the kept verdict, the index entry, the job's completion).
   */
  redisRoom?: Pick<BackpressureWatch, "state" | "check" | "whenClear">;
};

export function resultId(job: JudgeJob, model: string): string {
  return judgedResultId(job.conversation.id, job.version, { model, prompt_version: PROMPT_VERSION });
}

/**
 * One judge job, end to end. A paid verdict is kept in Redis before it is published, so a retry
 * (after a crash, a broker outage, a failed write) publishes the kept verdict instead of calling the
 * model again; a conversation version already published is never judged again. Rate limits and
 * fleet stops delay the job without spending an attempt. Failures end in BullMQ's failed set with
 * a coded reason (`failures.ts`); the failed-job sweeper turns every one into a dead letter.
 */
export function createProcessor(deps: ProcessorDeps, estimateTokens: (messages: ChatMessage[]) => number) {
  const { client, metrics, logger } = deps;
  const model = client.model;
  const judge = { model, prompt_version: PROMPT_VERSION };
  const publishDeadlineMs = deps.publishDeadlineMs ?? 10 * 60_000;

  // A fleet stop is read at most once a second per process, not once per job: it is rare, and a
  // second's delay in noticing it costs at most the calls already under way.
  let stopCheck: { at: number; value: Promise<string | null> } | undefined;
  function stoppedFor(): Promise<string | null | undefined> {
    if (!deps.limiter) return Promise.resolve(undefined);
    if (!stopCheck || Date.now() - stopCheck.at > 1_000) stopCheck = { at: Date.now(), value: deps.limiter.isStopped() };
    return stopCheck.value;
  }

  return async function process(job: Job, token?: string): Promise<void> {
    const decoded = decodeJudgeJob(job.data);
    // A job we cannot read will never become readable: no retries.
    if (!decoded.ok) throw terminal("invalid_shape", decoded.error);
    const data = decoded.job;
    const priority = data.priority;
    if (job.attemptsMade === 0 && job.processedOn) {
      metrics.queueWait.observe({ priority }, Math.max(0, (job.processedOn - job.timestamp) / 1000));
    }

    if (deps.index) {
      const state = await deps.index.lookup({ conversationId: data.conversation.id, version: data.version, judge });
      if (state.published) {
        // A redelivery (of any age) of a conversation version already judged: its result is on the topic.
        logger.debug({ jobId: job.id }, "already judged: nothing to pay");
        return;
      }
      if (state.kept) {
        logger.info({ jobId: job.id, conversation_id: data.conversation.id }, "publishing a kept verdict (paid earlier), without calling the model");
        await publish(state.kept, JSON.stringify(state.kept), data);
        return;
      }
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
      for (;;) {
        lease = await withRoom(job, async () =>
          deps.limiter?.acquire({
            tokens: estimateTokens(messages),
            completionTokens: client.maxTokens,
            priority,
            ...(deps.shutdownSignal ? { signal: deps.shutdownSignal } : {}),
          }),
        );
        // Waiting for capacity can outlast the check: Redis may have filled up meanwhile.
        if (!deps.redisRoom?.state().paused) break;
        await lease?.release().catch(() => undefined);
      }
    } catch (err) {
      // Shutting down while waiting for capacity: hand the job back without spending an attempt.
      if (deps.shutdownSignal?.aborted) return delay(job, token, 1, "worker shutting down");
      // Retrying cannot make it fit: straight to a dead letter.
      if (err instanceof RequestTooLargeError) throw terminal("request_too_large", err.message);
      throw err;
    }
    if (lease) metrics.rateLimitWait.observe({ model, priority }, lease.waitedMs / 1000);
    const started = performance.now();
    let call: JudgeCall;
    try {
      call = await client.complete(messages, { conversationId: data.conversation.id });
    } catch (err) {
      if (err instanceof InvalidOutputError) {
        // Paid for like any answer: counted in tokens, cost, budget and the limiter's windows.
        metrics.requests.inc({ model, outcome: "invalid_output" });
        if (err.usage) {
          const usd = recordUsage(err.usage, err.latencyMs ?? performance.now() - started, data);
          await Promise.all([lease?.settle(err.usage), deps.budget?.record(usd), err.headers ? deps.limiter?.learnFromHeaders(err.headers) : undefined]);
        } else {
          await lease?.release();
        }
        logger.warn({ jobId: job.id, attempt: job.attemptsMade + 1, reason: err.message }, "invalid model output");
        throw failure("invalid_model_output", err.message, err.raw);
      }
      await lease?.release();
      if (!(err instanceof JudgeCallError)) throw err;
      metrics.requestDuration.observe({ model }, (performance.now() - started) / 1000);
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
      throw failure("judge_failed", err.message);
    }

    metrics.requestDuration.observe({ model }, call.latencyMs / 1000);
    metrics.requests.inc({ model, outcome: "ok" });
    const costUsd = recordUsage(call.usage, call.latencyMs, data);
    const judged: JudgedResult = {
      schema_version: 1,
      result_id: resultId(data, model),
      status: "judged",
      conversation_id: data.conversation.id,
      conversation_version: data.version,
      metadata: data.conversation.metadata,
      source: data.source,
      priority,
      verdict: call.verdict,
      judge,
      usage: call.usage,
      cost_usd: costUsd,
      latency_ms: Math.round(call.latencyMs),
      ...(job.processedOn ? { queue_wait_ms: Math.max(0, job.processedOn - job.timestamp) } : {}),
      attempts: job.attemptsMade + 1,
      judged_at: new Date().toISOString(),
    };
    const result = deps.secondOpinion ? await deps.secondOpinion(data.conversation, judged) : judged;
    const json = JSON.stringify(result);
    const deadline = Date.now() + publishDeadlineMs;
    // Kept before anything else can fail: from here on, no retry pays for this verdict again. A
    // Redis that cannot take it (down, out of memory) must not hold the verdict back for long,
    // nor may a failed bookkeeping write fail a paid job: both are logged, and publishing goes on.
    const kept = deps.index
      ? retryUntil(Math.min(deadline, Date.now() + KEEP_DEADLINE_MS), () => deps.index!.keep(result, json), (err) =>
          logger.warn({ jobId: job.id, err: errorText(err) }, "could not keep the verdict yet; retrying"),
        )
      : Promise.resolve(true);
    const bookkeeping = (what: string, p: Promise<unknown> | undefined) =>
      p?.catch((err: unknown) => logger.warn({ jobId: job.id, err: errorText(err) }, `could not record ${what}`));
    await Promise.all([
      kept,
      bookkeeping("the call in the limiter", lease?.settle(call.usage)),
      bookkeeping("the success in the limiter", deps.limiter?.onSuccess()),
      bookkeeping("learned limits", deps.limiter?.learnFromHeaders(call.headers)),
      bookkeeping("the cost in the budget", deps.budget?.record(costUsd)),
    ]);
    await publish(result, json, data, deadline);
    deps.onPublished?.(result);
    metrics.verdicts.inc({ app: appOf(data), verdict: call.verdict.perceived_error ? "perceived_error" : "no_error", priority });
    if (data.source.event_time) {
      metrics.endToEnd.observe({ priority }, Math.max(0, (Date.now() - Date.parse(data.source.event_time)) / 1000));
    }
  };

  /**
   * Publish a paid verdict, trying until the deadline (a broker restart must not cost a second
   * call), then index it. Past the deadline the job fails as `publish_failed`; the sweeper then
   * writes the kept verdict into a dead letter.
   */
  async function publish(result: JudgedResult, json: string, data: JudgeJob, deadline = Date.now() + publishDeadlineMs): Promise<void> {
    const sent = await retryUntil(
      deadline,
      () => deps.producer.send({ topic: deps.topicFor?.(data) ?? deps.outputTopic, key: data.conversation.id, value: json, headers: { [PROVENANCE_HEADER]: "judge-worker" } }),
      (err) => logger.warn({ conversation_id: data.conversation.id, err: errorText(err) }, "could not publish the verdict yet; retrying"),
    );
    if (!sent) throw terminal("publish_failed", `the verdict could not be published to ${deps.outputTopic} within ${publishDeadlineMs} ms`);
    // The index is written only once the result is on the topic, so a replay never skips a
    // conversation whose result was lost. It is retried like the publication (a full or restarting
    // Redis): the job must not complete unindexed, or a redelivery would pay for it again. If it
    // still fails, the kept copy (if any) makes a redelivery re-publish rather than pay again.
    if (!deps.index) return;
    const indexed = await retryUntil(
      deadline,
      () => deps.index!.published(result, json),
      (err) => logger.warn({ conversation_id: data.conversation.id, err: errorText(err) }, "published, but could not index the verdict yet; retrying"),
    );
    if (!indexed) logger.error({ conversation_id: data.conversation.id }, "published, but could not index the verdict");
  }

  /**
   * Runs a Redis write that precedes the model call once Redis has room: while it is full (a
   * refused write, or memory above the worker's mark) the job waits in hand, spending no attempt
   * and no model call, and goes on by itself when memory frees.
   */
  async function withRoom<T>(job: Job, write: () => Promise<T>): Promise<T> {
    const room = deps.redisRoom;
    if (!room) return write();
    for (;;) {
      if (room.state().paused) {
        logger.warn({ jobId: job.id, reason: room.state().reason }, "Redis is full: holding the job before its model call");
        await room.whenClear(deps.shutdownSignal);
        if (deps.shutdownSignal?.aborted) throw new Error("worker shutting down while Redis was full");
      }
      try {
        return await write();
      } catch (err) {
        if (!isRedisFullError(err)) throw err;
        await room.check();
        // Refused although under the mark (maxmemory just lowered, another tenant): wait a little.
        if (!room.state().paused) await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

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
}

/** How long keeping a verdict may delay its publication when Redis refuses it. */
const KEEP_DEADLINE_MS = 10_000;

/** Calls `fn` until it succeeds or the deadline passes, backing off from 250 ms to 10 s. */
export async function retryUntil(deadline: number, fn: () => Promise<unknown>, onError: (err: unknown) => void): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fn();
      return true;
    } catch (err) {
      onError(err);
      const wait = Math.min(10_000, 250 * 2 ** attempt);
      if (Date.now() + wait > deadline) return false;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function appOf(job: JudgeJob): string {
  return job.conversation.metadata.app ?? "unknown";
}
