/**
 * Fleet-wide queue metrics, collected by one process: every worker replica reporting the same
 * queue depth would multiply it in every sum(). Also the drain-time gauge autoscaling keys on.
 */
import { queueMetrics } from "@tracesift/metrics";
import { createJudgeQueue, createRedis, PRIORITY_RANK, RedisEnv, redisReadiness } from "@tracesift/queue";
import { createLogger, createRegistry, parseEnv, Shutdown, startOpsServer } from "@tracesift/runtime";
import { z } from "zod";

const env = parseEnv(
  RedisEnv.extend({
    LOG_LEVEL: z.string().default("info"),
    METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
    COLLECT_INTERVAL_MS: z.coerce.number().int().positive().default(5_000),
  }),
);
const logger = createLogger({ service: "collector", level: env.LOG_LEVEL });
const shutdown = new Shutdown(logger, 10_000);
shutdown.onSignals();

const registry = createRegistry("collector");
const metrics = queueMetrics(registry);
const redis = createRedis(env.REDIS_URL, "producer");
shutdown.add("redis", async () => {
  await redis.quit();
});
const queue = createJudgeQueue(redis, env);
shutdown.add("queue", () => queue.close());

const samples: { at: number; count: number }[] = [];

async function collect(): Promise<void> {
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

const timer = setInterval(() => {
  collect().catch((err) => logger.warn({ err }, "queue metrics collection failed"));
}, env.COLLECT_INTERVAL_MS);
shutdown.add("collector loop", async () => clearInterval(timer));
await collect();

const ops = await startOpsServer({
  port: env.METRICS_PORT,
  registry,
  readiness: [redisReadiness(redis)],
});
shutdown.add("ops server", ops.close);
logger.info({ queue: env.JUDGE_QUEUE, metricsPort: ops.port }, "collector running");
