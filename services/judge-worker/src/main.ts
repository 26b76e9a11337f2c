import { setMaxListeners } from "node:events";
import { createJudgeClient, estimateChatTokens, type JudgeClient, PROMPT_VERSION } from "@tracesift/judge";
import { JudgeRegistry } from "@tracesift/judge-registry";
import { BatchingProducer, createIdempotentProducer, createKafka, ensureTopics, kafkaReadiness } from "@tracesift/kafka";
import { backpressureGauges, initJudgeSeries, judgeLoopMetrics, judgeMetrics, redisStateLostCounter } from "@tracesift/metrics";
import { createJudgeQueue, createRedis, redisReadiness, watchBackpressure, watchRedisState } from "@tracesift/queue";
import { FleetRateLimiter } from "@tracesift/rate-limit";
import { ResultIndex } from "@tracesift/result-index";
import type { JudgedResult } from "@tracesift/schemas";
import { createLogger, createRegistry, parseEnv, redactConfig, Shutdown, startOpsServer } from "@tracesift/runtime";
import { MetricsTime, Worker } from "bullmq";
import { canaryTopicFor, createSecondOpinion, SecondOpinionEnv } from "@tracesift/evaluation";
import { createEvaluationExporter, OtelEvalEnv } from "@tracesift/otel-eval";
import { z } from "zod";
import { CostBudget } from "./budget.ts";
import { WorkerEnv } from "./config.ts";
import { startFailedJobSweeper } from "./failures.ts";
import { createLiveJudging, LiveJudgeEnv } from "./live-judge.ts";
import { createProcessor } from "./processor.ts";

const env = parseEnv(
  WorkerEnv.refine((e) => e.REDIS_MEMORY_RESUME < e.REDIS_MEMORY_PAUSE, { message: "REDIS_MEMORY_RESUME must be below REDIS_MEMORY_PAUSE", path: ["REDIS_MEMORY_RESUME"] }),
);
const logger = createLogger({ service: "judge-worker", level: env.LOG_LEVEL });
logger.info({ config: redactConfig(env) }, "starting");

const shutdown = new Shutdown(logger, env.DRAIN_DEADLINE_MS);
shutdown.onSignals();

const registry = createRegistry("judge-worker");
const metrics = judgeMetrics(registry);
initJudgeSeries(metrics, env.JUDGE_MODEL);

const kafka = createKafka(env, "tracesift-judge-worker", logger);
await ensureTopics(kafka, [{ topic: env.OUTPUT_TOPIC }, { topic: env.DEAD_LETTER_TOPIC }]);
const kafkaProducer = createIdempotentProducer(kafka);
await kafkaProducer.connect();
shutdown.add("kafka producer", () => kafkaProducer.disconnect());
const producer = new BatchingProducer(kafkaProducer, { lingerMs: env.OUTPUT_LINGER_MS });
shutdown.add("pending results", () => producer.flush());

const connection = createRedis(env.REDIS_URL, "worker");
shutdown.add("redis", async () => {
  await connection.quit();
});
// BullMQ's connection stays as BullMQ expects it; the worker's own state uses a pipelined one.
const state = createRedis(env.REDIS_URL, "worker-state");
shutdown.add("redis (worker state)", async () => {
  await state.quit();
});

const clientOptions = {
  baseURL: env.JUDGE_BASE_URL,
  apiKey: env.FIREWORKS_API_KEY,
  model: env.JUDGE_MODEL,
  timeoutMs: env.JUDGE_TIMEOUT_MS,
  maxTokens: env.JUDGE_MAX_TOKENS,
  responseFormat: env.JUDGE_RESPONSE_FORMAT,
  logprobs: env.JUDGE_LOGPROBS,
};
const client = createJudgeClient(clientOptions);

// Verdict quality settings (UNCERTAIN_*, ARBITER_*, CANARY_TOPIC, OTLP_EVALUATIONS_*): see README "Verdicts you can trust".
const quality = parseEnv(SecondOpinionEnv.extend(OtelEvalEnv.shape).extend({ CANARY_TOPIC: z.string().min(1).default("traces.canary") }));
const secondOpinion = quality.UNCERTAIN_BAND
  ? createSecondOpinion(
      quality.UNCERTAIN_BAND,
      quality.UNCERTAIN_ACTION === "review"
        ? { kind: "review", path: quality.REVIEW_FILE }
        : {
            kind: "arbiter",
            client: createJudgeClient({
              baseURL: quality.ARBITER_BASE_URL ?? env.JUDGE_BASE_URL,
              apiKey: env.FIREWORKS_API_KEY,
              model: quality.ARBITER_MODEL ?? env.JUDGE_MODEL,
              timeoutMs: env.JUDGE_TIMEOUT_MS,
              maxTokens: env.JUDGE_MAX_TOKENS,
              responseFormat: env.JUDGE_RESPONSE_FORMAT,
              logprobs: env.JUDGE_LOGPROBS,
            }),
          },
      (err) => logger.warn({ err: err instanceof Error ? err.message : String(err) }, "second opinion failed; the first verdict stands"),
    )
  : undefined;
const evaluations = quality.OTLP_EVALUATIONS_ENDPOINT
  ? createEvaluationExporter({ url: quality.OTLP_EVALUATIONS_ENDPOINT, headers: quality.OTLP_EVALUATIONS_HEADERS })
  : undefined;
if (evaluations) shutdown.add("evaluation events", () => evaluations.shutdown());
await ensureTopics(kafka, [{ topic: quality.CANARY_TOPIC }]);

const limiter = new FleetRateLimiter({
  redis: state,
  prefix: `${env.QUEUE_PREFIX}:ratelimit`,
  model: env.JUDGE_MODEL,
  limits: {
    ...(env.JUDGE_RPM ? { rpm: env.JUDGE_RPM } : {}),
    ...(env.JUDGE_PROMPT_TPM ? { promptTpm: env.JUDGE_PROMPT_TPM } : {}),
    ...(env.JUDGE_UNCACHED_PROMPT_TPM ? { uncachedPromptTpm: env.JUDGE_UNCACHED_PROMPT_TPM } : {}),
    ...(env.JUDGE_GENERATED_TPM ? { generatedTpm: env.JUDGE_GENERATED_TPM } : {}),
    ...(env.JUDGE_MAX_IN_FLIGHT ? { maxInFlight: env.JUDGE_MAX_IN_FLIGHT } : {}),
  },
  completionCharge: env.JUDGE_TPM_CHARGES,
  liveReserve: env.LIVE_RESERVE,
  // A slot must outlive the slowest call, or a slow call's slot is handed to another worker.
  leaseTtlMs: env.JUDGE_TIMEOUT_MS + 30_000,
});
// A stop outlives replicas; restarting the fleet (after fixing the key or model id) is the fix,
// so a starting worker clears it. If the cause remains, the first call stops the model again.
const stoppedFor = await limiter.isStopped();
if (stoppedFor) {
  logger.warn({ model: env.JUDGE_MODEL, reason: stoppedFor }, "model was stopped; resuming calls");
  await limiter.resume();
}

// Redis memory against the worker's marks (memory only: a long queue is what workers are for).
const failedQueue = createJudgeQueue(state, env);
shutdown.add("failed-job queue", () => failedQueue.close());
const pressure = backpressureGauges(registry);
const redisRoom = watchBackpressure({
  redis: state,
  queue: failedQueue,
  marks: { memoryHigh: env.REDIS_MEMORY_PAUSE, memoryLow: env.REDIS_MEMORY_RESUME, queueHigh: 0, queueLow: 0 },
  intervalMs: 1_000,
  onChange: (s) => {
    pressure.paused.set(s.paused ? 1 : 0);
    if (s.paused) logger.warn({ reason: s.reason, used_memory: s.usedMemory }, "Redis is nearly full: no model call starts until memory frees");
    else logger.info({ used_memory: s.usedMemory }, "Redis has room again: judging resumes");
  },
  onError: (err) => logger.debug({ err: err instanceof Error ? err.message : String(err) }, "Redis memory check failed"),
});
const pressureGauge = setInterval(() => pressure.redisMemoryRatio.set(redisRoom.state().memoryRatio ?? 0), 1_000);
pressureGauge.unref();
shutdown.add("redis memory watch", async () => {
  clearInterval(pressureGauge);
  redisRoom.stop();
});

const shuttingDown = new AbortController();
// Every job in flight listens on it while waiting for capacity.
setMaxListeners(env.JUDGE_CONCURRENCY * 2 + 10, shuttingDown.signal);
const index = new ResultIndex(state, env.QUEUE_PREFIX);
const makeProcessor = (client: JudgeClient, producer: BatchingProducer) => createProcessor(
  {
    client,
    producer,
    metrics,
    logger,
    pricing: env.JUDGE_PRICING,
    outputTopic: env.OUTPUT_TOPIC,
    deadLetterTopic: env.DEAD_LETTER_TOPIC,
    limiter,
    shutdownSignal: shuttingDown.signal,
    redisRoom,
    index,
    publishDeadlineMs: env.PUBLISH_DEADLINE_MS,
    topicFor: canaryTopicFor(quality.CANARY_TOPIC),
    ...(secondOpinion ? { secondOpinion } : {}),
    ...(evaluations ? { onPublished: (result: JudgedResult) => evaluations.emit(result) } : {}),
    budget: new CostBudget(state, env.QUEUE_PREFIX, {
      hourlyUsd: env.COST_BUDGET_HOURLY_USD,
      dailyUsd: env.COST_BUDGET_DAILY_USD,
      backfillShare: 1 - env.LIVE_RESERVE,
      pauseLive: env.BUDGET_PAUSES_LIVE,
    }),
  },
  (messages) => estimateChatTokens(messages) + env.JUDGE_MAX_TOKENS,
);
// The live judge comes from the registry (promote/rollback without a restart); see live-judge.ts.
const loopEnv = parseEnv(LiveJudgeEnv);
const clients = new Map([[client.model, client]]);
const clientFor = (model: string) => clients.get(model) ?? clients.set(model, createJudgeClient({ ...clientOptions, model })).get(model)!;
const liveJudging = createLiveJudging({ registry: new JudgeRegistry(state, env.QUEUE_PREFIX), fallback: { model: env.JUDGE_MODEL, prompt_version: PROMPT_VERSION }, clientFor, processorFor: makeProcessor, producer, outputTopic: env.OUTPUT_TOPIC, shadowTopic: loopEnv.SHADOW_TOPIC, pricing: env.JUDGE_PRICING, metrics: judgeLoopMetrics(registry), logger, ttlMs: loopEnv.JUDGE_REGISTRY_TTL_MS });
await ensureTopics(kafka, [{ topic: loopEnv.SHADOW_TOPIC }]);
const processor = liveJudging.process;

const worker = new Worker(env.JUDGE_QUEUE, processor, {
  connection,
  prefix: env.QUEUE_PREFIX,
  concurrency: env.JUDGE_CONCURRENCY,
  lockDuration: env.JOB_LOCK_MS,
  stalledInterval: env.STALLED_CHECK_MS,
  maxStalledCount: env.MAX_STALLED_COUNT,
  // Per-minute completion counts feed the collector's drain-time gauge.
  metrics: { maxDataPoints: MetricsTime.ONE_HOUR },
});
worker.on("failed", (job, err) => {
  if (job) logger.debug({ jobId: job.id, attemptsMade: job.attemptsMade, err: err.message }, "attempt failed");
});
worker.on("error", (err) => logger.error({ err: err.message }, "worker error"));

const stateLost = redisStateLostCounter(registry);
const stateWatch = watchRedisState(state, env.QUEUE_PREFIX, env.REDIS_STATE_CHECK_MS, (lastSeen) => {
  stateLost.inc();
  logger.error({ lastSeen }, `Redis lost the fleet's state (queued jobs, dedupe memory): run 'tracesift recover --since ${lastSeen.toISOString()}'`);
});
shutdown.add("redis state watch", async () => stateWatch.stop());

const sweeper = startFailedJobSweeper(
  {
    queue: failedQueue,
    redis: state,
    prefix: env.QUEUE_PREFIX,
    producer,
    index,
    judge: { model: env.JUDGE_MODEL, prompt_version: PROMPT_VERSION },
    outputTopic: env.OUTPUT_TOPIC,
    deadLetterTopic: env.DEAD_LETTER_TOPIC,
    metrics,
    logger,
  },
  env.FAILED_SWEEP_MS,
);
shutdown.add("failed-job sweeper", () => sweeper.stop());
// Registered last so it closes first: stop taking jobs and let in-flight ones finish; jobs still
// waiting for rate-limit capacity are handed back at once.
shutdown.add("worker", async () => {
  const closing = worker.close();
  shuttingDown.abort();
  await closing;
});

const ops = await startOpsServer({
  port: env.METRICS_PORT,
  registry,
  readiness: [
    redisReadiness(connection),
    kafkaReadiness(kafka),
    {
      name: "redis memory",
      check: async () => {
        const s = redisRoom.state();
        if (s.paused) throw new Error(`holding jobs: ${s.reason}`);
      },
    },
  ],
});
shutdown.add("ops server", ops.close);
logger.info({ queue: env.JUDGE_QUEUE, concurrency: env.JUDGE_CONCURRENCY, model: env.JUDGE_MODEL, metricsPort: ops.port }, "judge worker running");
