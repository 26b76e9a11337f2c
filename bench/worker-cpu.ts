/**
 * One judge worker in isolation: its CPU ms per job, and the simulator's, with the queue
 * pre-filled (so ingest and the bench's own feeding are out of the picture) and the simulator in
 * its own process. For finding where the worker's per-job cost goes; bench/overhead is the figure.
 *
 *   pnpm exec tsx bench/worker-cpu.ts [--n 4000 --kb 5 --concurrency 16 --profile]
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { createKafka, ensureTopics } from "@tracesift/kafka";
import { createJudgeQueue, createRedis, enqueueJudgeJobs } from "@tracesift/queue";
import { createLogger } from "@tracesift/runtime";
import { startService, waitForHttp } from "../services/cli/src/fleet.ts";
import { printProfile, summariseProfiles } from "./lib/profile.ts";
import {
  waitForCount,
  deleteRedisPrefix,
  deleteTopicsAndGroups,
  freePort,
  KAFKA_BROKERS,
  makeConversation,
  makeJudgeJob,
  parseFlags,
  REDIS_URL,
  REPO_ROOT,
  rng,
  scrapeSum,
  sleep,
  topicCounts,
  treeCpuMs,
} from "./lib/common.ts";

const flags = parseFlags("worker-cpu", {
  n: { default: 4000, help: "jobs measured" },
  warmup: { default: 400, help: "jobs before the measurement" },
  kb: { default: 5, help: "conversation size" },
  concurrency: { default: 16, help: "JUDGE_CONCURRENCY" },
  linger: { default: 5, help: "OUTPUT_LINGER_MS of the worker" },
  profile: { default: false, help: "--cpu-prof the worker and print where its CPU goes" },
});

const id = `wcpu-${randomUUID().slice(0, 8)}`;
const logDir = join(REPO_ROOT, ".cache/bench", id);
const kafka = createKafka({ KAFKA_BROKERS, KAFKA_SSL: false }, id, createLogger({ service: "bench", level: "warn" }));
const topics = { output: `${id}-judged`, dlq: `${id}-dlq` };
await ensureTopics(kafka, [{ topic: topics.output }, { topic: topics.dlq }]);
const redis = createRedis(REDIS_URL, "producer");
const queue = createJudgeQueue(redis, { QUEUE_PREFIX: id, JUDGE_QUEUE: "judge" });
const admin = kafka.admin();
await admin.connect();

const simPort = await freePort();
const sim = startService({ service: "fireworks-sim", name: "sim", logDir, env: { SIM_PORT: String(simPort), SIM_LATENCY_MS: "0", LOG_LEVEL: "warn" } });
const workerPort = await freePort();
const worker = startService({
  service: "judge-worker",
  name: "worker",
  logDir,
  nodeArgs: flags.profile ? ["--cpu-prof", `--cpu-prof-dir=${join(logDir, "prof")}`] : [],
  env: {
    KAFKA_BROKERS,
    REDIS_URL,
    QUEUE_PREFIX: id,
    OUTPUT_TOPIC: topics.output,
    DEAD_LETTER_TOPIC: topics.dlq,
    FIREWORKS_API_KEY: "bench-key",
    JUDGE_BASE_URL: `http://127.0.0.1:${simPort}/inference/v1`,
    JUDGE_CONCURRENCY: String(flags.concurrency),
    JUDGE_RPM: "100000000",
    JUDGE_PROMPT_TPM: "100000000000",
    METRICS_PORT: String(workerPort),
    LOG_LEVEL: "warn",
    OUTPUT_LINGER_MS: String(flags.linger),
  },
});
try {
  await Promise.all([waitForHttp(`http://127.0.0.1:${simPort}/_sim/stats`, 60_000, sim), waitForHttp(`http://127.0.0.1:${workerPort}/readyz`, 60_000, worker)]);
  const random = rng(7);
  const jobs = (from: number, count: number) => Array.from({ length: count }, (_, i) => makeJudgeJob(makeConversation(`${id}-c${from + i}`, random, flags.kb * 1024), from + i));
  const done = async () => (await topicCounts(admin, [topics.output]))[0] ?? 0;
  const until = async (target: number) => (await waitForCount("judged results", target, done, 600_000)).at;
  for (const chunk of chunks(jobs(0, flags.warmup), 200)) await enqueueJudgeJobs(queue, chunk);
  await until(flags.warmup);
  // Pre-fill with the worker paused, so the measurement is the worker alone.
  await queue.pause();
  for (const chunk of chunks(jobs(flags.warmup, flags.n), 200)) await enqueueJudgeJobs(queue, chunk);
  await sleep(500);
  const pids = { worker: [worker.child.pid ?? -1], sim: [sim.child.pid ?? -1] };
  const w0 = treeCpuMs(pids.worker);
  const s0 = treeCpuMs(pids.sim);
  const t0 = performance.now();
  await queue.resume();
  const t1 = await until(flags.warmup + flags.n);
  const metricsUrl = [`http://127.0.0.1:${workerPort}/metrics`];
  const mean = async (name: string) => {
    const { sum, count } = await scrapeSum(metricsUrl, name);
    return `${((sum / Math.max(1, count)) * 1000).toFixed(1)} ms`;
  };
  console.log(`  mean model call ${await mean("tracesift_judge_request_duration_seconds")}, limiter wait ${await mean("tracesift_rate_limit_wait_seconds")}`);
  const workerMs = (treeCpuMs(pids.worker) - w0) / flags.n;
  const simMs = (treeCpuMs(pids.sim) - s0) / flags.n;
  console.log(
    `worker-cpu: ${flags.n} × ${flags.kb} KB jobs, concurrency ${flags.concurrency}: ${((flags.n / (t1 - t0)) * 1000).toFixed(0)} jobs/s; worker ${workerMs.toFixed(3)} ms/job, simulator ${simMs.toFixed(3)} ms/job`,
  );
} finally {
  await worker.stop();
  await sim.stop();
  await admin.disconnect();
  await queue.close();
  await redis.quit();
  await deleteTopicsAndGroups(kafka, Object.values(topics));
  await deleteRedisPrefix(id);
}
if (flags.profile) printProfile("profile: judge worker", summariseProfiles([join(logDir, "prof")]));
process.exit(0);

function chunks<T>(items: T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}
