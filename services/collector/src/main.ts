/**
 * Fleet-wide metrics, collected by one process: every worker replica reporting the same queue
 * depth would multiply it in every sum(). Also the drain-time gauge autoscaling keys on, the
 * ingest group's lag read from the broker (right while ingest is down, when ingest's own gauge
 * stops), the spend the cost budget counts in Redis, and the fleet-wide rate limiter's state.
 */
import { createKafka } from "@tracesift/kafka";
import { budgetMetrics, kafkaLagMetrics, queueMetrics, rateLimiterMetrics } from "@tracesift/metrics";
import { createJudgeQueue, createRedis, PRIORITY_RANK, redisReadiness } from "@tracesift/queue";
import { FleetRateLimiter, METER_LIMIT, METERS } from "@tracesift/rate-limit";
import { createLogger, createRegistry, parseEnv, Shutdown, startOpsServer } from "@tracesift/runtime";
import { CollectorEnv } from "./config.ts";
import { exportLag, readGroupLag } from "./kafka-lag.ts";

const env = parseEnv(CollectorEnv);
const logger = createLogger({ service: "collector", level: env.LOG_LEVEL });
const shutdown = new Shutdown(logger, 10_000);
shutdown.onSignals();

const registry = createRegistry("collector");
const metrics = queueMetrics(registry);
const lagMetrics = kafkaLagMetrics(registry);
const budget = budgetMetrics(registry);
const limiterMetrics = rateLimiterMetrics(registry);
const redis = createRedis(env.REDIS_URL, "producer");
shutdown.add("redis", async () => {
  await redis.quit();
});
const queue = createJudgeQueue(redis, env);
shutdown.add("queue", () => queue.close());

const kafka = createKafka(env, "tracesift-collector", logger);
const admin = kafka.admin();
await admin.connect();
shutdown.add("kafka admin", () => admin.disconnect());

// Read-only use of the workers' limiter: snapshot() changes nothing in Redis.
const limiter = new FleetRateLimiter({
  redis,
  prefix: `${env.QUEUE_PREFIX}:ratelimit`,
  model: env.JUDGE_MODEL,
  limits: {
    ...(env.JUDGE_RPM ? { rpm: env.JUDGE_RPM } : {}),
    ...(env.JUDGE_TPM ? { tpm: env.JUDGE_TPM } : {}),
    ...(env.JUDGE_MAX_IN_FLIGHT ? { maxInFlight: env.JUDGE_MAX_IN_FLIGHT } : {}),
  },
});

const samples: { at: number; count: number }[] = [];

async function collectQueue(): Promise<void> {
  const counts = await queue.getJobCounts("active", "delayed", "failed", "waiting", "prioritized", "waiting-children");
  const perPriority = await queue.getCountsPerPriority(Object.values(PRIORITY_RANK));
  for (const [name, rank] of Object.entries(PRIORITY_RANK)) {
    metrics.jobs.set({ state: "waiting", priority: name }, perPriority[String(rank)] ?? 0);
  }
  // Jobs without a priority (none today) wait in the plain list.
  metrics.jobs.set({ state: "waiting", priority: "none" }, counts.waiting ?? 0);
  for (const state of ["active", "delayed", "failed"] as const) metrics.jobs.set({ state, priority: "all" }, counts[state] ?? 0);

  // Workers count completions in Redis (BullMQ `metrics`); the rate is taken over the last minute
  // of samples so one slow scrape does not swing the autoscaler.
  const { meta } = await queue.getMetrics("completed", 0, 0);
  const now = Date.now();
  samples.push({ at: now, count: meta.count });
  while (samples.length > 2 && now - samples[0]!.at > 60_000) samples.shift();
  const oldest = samples[0]!;
  const rate = now > oldest.at ? Math.max(0, meta.count - oldest.count) / ((now - oldest.at) / 1000) : 0;
  metrics.completedRate.set(rate);
  const backlog = (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0) + (counts.active ?? 0);
  metrics.drainSeconds.set(backlog === 0 ? 0 : rate > 0 ? backlog / rate : Number.POSITIVE_INFINITY);
}

let lagReadAt = 0;
async function collectLag(): Promise<void> {
  try {
    exportLag(lagMetrics, env.CONSUMER_GROUP, await readGroupLag(admin, env.CONSUMER_GROUP, env.INPUT_TOPICS));
    lagMetrics.up.set(1);
    lagReadAt = Date.now();
  } catch (err) {
    lagMetrics.up.set(0);
    throw err;
  }
}

/** The keys judge-worker's CostBudget increments (services/judge-worker/src/budget.ts). */
async function collectBudget(): Promise<void> {
  const iso = new Date().toISOString();
  const [hour, day] = await redis.mget(`${env.QUEUE_PREFIX}:spend:h:${iso.slice(0, 13)}`, `${env.QUEUE_PREFIX}:spend:d:${iso.slice(0, 10)}`);
  budget.spent.set({ window: "hour" }, Number(hour ?? 0));
  budget.spent.set({ window: "day" }, Number(day ?? 0));
  if (env.COST_BUDGET_HOURLY_USD !== undefined) budget.limit.set({ window: "hour" }, env.COST_BUDGET_HOURLY_USD);
  if (env.COST_BUDGET_DAILY_USD !== undefined) budget.limit.set({ window: "day" }, env.COST_BUDGET_DAILY_USD);
}

const METER_KIND = { requests: "rpm", prompt: "prompt_tpm", uncachedPrompt: "uncached_prompt_tpm", generated: "generated_tpm" } as const;

async function collectLimiter(): Promise<void> {
  const s = await limiter.snapshot();
  const model = env.JUDGE_MODEL;
  // One series per Fireworks meter: requests per minute and prompt, uncached prompt and generated tokens per minute.
  for (const meter of METERS) {
    const kind = METER_KIND[meter];
    const key = METER_LIMIT[meter];
    if (s.limits[key] !== undefined) limiterMetrics.limit.set({ model, kind }, s.limits[key]);
    if (s.learned[key] !== undefined) limiterMetrics.learned.set({ model, kind }, s.learned[key]);
    limiterMetrics.used.set({ model, kind }, s.used[meter]);
  }
  if (s.limits.maxInFlight !== undefined) limiterMetrics.limit.set({ model, kind: "in_flight" }, s.limits.maxInFlight);
  limiterMetrics.used.set({ model, kind: "in_flight" }, s.inFlight);
  limiterMetrics.concurrency.set({ model }, s.adaptiveConcurrency);
  limiterMetrics.pausedSeconds.set({ model }, Math.max(0, (s.pausedUntil - Date.now()) / 1000));
}

async function collect(): Promise<void> {
  const parts = { queue: collectQueue(), lag: collectLag(), budget: collectBudget(), limiter: collectLimiter() };
  const results = await Promise.allSettled(Object.values(parts));
  results.forEach((r, i) => {
    if (r.status === "rejected") logger.warn({ err: r.reason, part: Object.keys(parts)[i] }, "metrics collection failed");
  });
}

const timer = setInterval(() => void collect(), env.COLLECT_INTERVAL_MS);
shutdown.add("collector loop", async () => clearInterval(timer));
await collect();

const ops = await startOpsServer({
  port: env.METRICS_PORT,
  registry,
  readiness: [
    redisReadiness(redis),
    {
      // Lag is what on-call reads when ingest is down: not ready while it cannot be read.
      name: "kafka lag",
      check: async () => {
        if (Date.now() - lagReadAt > 3 * env.COLLECT_INTERVAL_MS + 10_000) throw new Error("offsets not read from the broker recently");
      },
    },
  ],
});
shutdown.add("ops server", ops.close);
logger.info({ queue: env.JUDGE_QUEUE, group: env.CONSUMER_GROUP, topics: env.INPUT_TOPICS, metricsPort: ops.port }, "collector running");
