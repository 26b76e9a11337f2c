/**
 * "At the provider's limit": three judge-worker replicas (real processes) share one provider limit
 * enforced by the simulator with an exact sliding 60 s window. A feeder keeps a backlog of mixed-size
 * conversations in the judge queue so the limit binds for the whole run. Prints how much of the
 * binding limit the fleet used in steady state (from the simulator's own accounting), how many
 * requests were answered 429, whether any job failed because of a 429, and queue waits.
 *
 *   pnpm --filter @tracesift/bench limits [-- --duration 180 --rpm 600 --tpm 200000 ...]
 *   pnpm exec tsx bench/limits.ts --help
 *
 * Needs Kafka on 127.0.0.1:9092 and Redis on 6379 (`scripts/services.sh up`). Everything it
 * creates (topics, queue and limiter keys, processes) is removed at the end, also on Ctrl-C.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { createSimulator, type SimStats } from "@tracesift/fireworks-sim";
import { estimatePromptTokens } from "@tracesift/judge";
import { createKafka, ensureTopics } from "@tracesift/kafka";
import { createJudgeQueue, createRedis, decodeJudgeJob, enqueueJudgeJobs } from "@tracesift/queue";
import { createLogger } from "@tracesift/runtime";
import type { JudgeJob } from "@tracesift/schemas";
import { type RunningService, startService, waitForHttp } from "../services/cli/src/fleet.ts";
import {
  deleteRedisPrefix,
  deleteTopicsAndGroups,
  fmt,
  freePort,
  guard,
  histogramQuantile,
  KAFKA_BROKERS,
  machineCpuMs,
  makeConversation,
  makeJudgeJob,
  parseFlags,
  percentile,
  printTable,
  REDIS_URL,
  REPO_ROOT,
  type Row,
  readTopic,
  rng,
  scrapeHistogram,
  scrapeSum,
  sleep,
  writeFigures,
} from "./lib/common.ts";

const flags = parseFlags("limits", {
  rpm: { default: 600, help: "requests/min the simulator enforces" },
  tpm: { default: 200_000, help: "tokens/min the simulator enforces (prompt + completion charge)" },
  "worker-rpm": { default: 0, help: "JUDGE_RPM given to the workers (0 = same as --rpm)" },
  "worker-tpm": { default: 0, help: "JUDGE_TPM given to the workers (0 = same as --tpm)" },
  duration: { default: 180, help: "seconds of load" },
  steady: { default: 0, help: "seconds at the end measured as steady state (0 = whole minutes after a 60 s warm-up)" },
  workers: { default: 3, help: "judge-worker replicas" },
  concurrency: { default: 16, help: "JUDGE_CONCURRENCY per replica" },
  "min-kb": { default: 1, help: "smallest conversation (KB of message text)" },
  "max-kb": { default: 40, help: "largest conversation (KB of message text)" },
  dist: { default: "log", help: "size distribution between min and max: log (log-uniform) or uniform" },
  "latency-ms": { default: 250, help: "simulator latency per call" },
  "jitter-ms": { default: 100, help: "simulator extra random latency" },
  "max-tokens": { default: 256, help: "JUDGE_MAX_TOKENS (completion budget per call)" },
  "tpm-completion": { default: "actual", help: "what the simulator charges for the completion: max_tokens (reserved, as OpenAI) or actual" },
  "retry-after": { default: false, help: "simulator sends retry-after on 429 (Fireworks does not promise it)" },
  backlog: { default: 30, help: "seconds of work at the limit kept waiting in the queue" },
  tag: { default: "", help: "figures go to bench/out/limits-<tag>.json instead of limits.json" },
  seed: { default: 1, help: "workload seed" },
});

const MODEL = "accounts/fireworks/models/qwen3p5-35b-a3b";
const runId = randomUUID().slice(0, 8);
const prefix = `bench-${runId}`;
const topics = { output: `${prefix}-judged`, dlq: `${prefix}-dlq` };
const logDir = join(REPO_ROOT, ".cache/bench", `limits-${runId}`);
const durationMs = flags.duration * 1000;
const steadyMs =
  (flags.steady > 0 ? Math.min(flags.steady, flags.duration) : flags.duration >= 120 ? Math.floor((flags.duration - 60) / 60) * 60 : Math.floor(flags.duration / 2)) * 1000;
const workerRpm = flags["worker-rpm"] || flags.rpm;
const workerTpm = flags["worker-tpm"] || flags.tpm;
const maxTokens = flags["max-tokens"];
const chargeMaxTokens = flags["tpm-completion"] === "max_tokens";
if (flags["tpm-completion"] !== "max_tokens" && flags["tpm-completion"] !== "actual") throw new Error("--tpm-completion is max_tokens or actual");
if (flags.dist !== "log" && flags.dist !== "uniform") throw new Error("--dist is log or uniform");

const logger = createLogger({ service: "bench", level: "warn" });
const kafka = createKafka({ KAFKA_BROKERS, KAFKA_SSL: false }, `bench-${runId}`, logger);
const services: RunningService[] = [];
/** How long the simulator itself spent on each admitted call (arrival → answer), for comparison with the workers' view. */
const simDurations: number[] = [];
/** When (ms since the load started) each 429 was answered. */
const refusedAt: number[] = [];
let loadStart = Number.POSITIVE_INFINITY;
const sim = createSimulator({
  onRequest: (e) => {
    if (e.status === 200) simDurations.push(e.durationMs);
    else if (e.status === 429) refusedAt.push(Date.now() - loadStart);
  },
  latencyMs: flags["latency-ms"],
  latencyJitterMs: flags["jitter-ms"],
  rpm: flags.rpm,
  tpm: flags.tpm,
  tpmCompletion: flags["tpm-completion"] as "max_tokens" | "actual",
  sendRetryAfter: flags["retry-after"],
  seed: flags.seed,
});
const redis = createRedis(REDIS_URL, "producer");
const queue = createJudgeQueue(redis, { QUEUE_PREFIX: prefix, JUDGE_QUEUE: "judge" });

let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await Promise.all(services.map((s) => s.stop()));
  await sim.close();
  await queue.close().catch(() => undefined);
  await redis.quit().catch(() => undefined);
  await deleteTopicsAndGroups(kafka, Object.values(topics));
  await deleteRedisPrefix(prefix);
}
const guardian = guard(durationMs + 240_000, cleanup);

// ---- workload: log-uniform (or uniform) conversation sizes, deterministic per seed
const random = rng(flags.seed);
const minB = flags["min-kb"] * 1024;
const maxB = flags["max-kb"] * 1024;
const size = () =>
  flags.dist === "uniform" ? minB + random() * (maxB - minB) : Math.exp(Math.log(minB) + random() * (Math.log(maxB) - Math.log(minB)));
let made = 0;
const nextJob = (): JudgeJob => {
  const n = made++;
  return makeJudgeJob(makeConversation(`${prefix}-c${n}`, random, size()), n);
};
// What a call costs the provider on average, to size the backlog and report the expected ceiling.
const sampleRandom = rng(flags.seed + 1000);
let sampleTokens = 0;
const SAMPLES = 300;
for (let i = 0; i < SAMPLES; i++) {
  const bytes =
    flags.dist === "uniform" ? minB + sampleRandom() * (maxB - minB) : Math.exp(Math.log(minB) + sampleRandom() * (Math.log(maxB) - Math.log(minB)));
  sampleTokens += estimatePromptTokens(makeConversation("s", sampleRandom, bytes)) + maxTokens;
}
const meanCallTokens = sampleTokens / SAMPLES;
const ceilingRpm = Math.min(flags.rpm, flags.tpm / meanCallTokens);
const backlogTarget = Math.max(20, Math.ceil((ceilingRpm * flags.backlog) / 60));

type Sample = { t: number; ok: number; r429: number; other: number; prompt: number; completion: number };
function sampleOf(t: number, s: SimStats): Sample {
  let other = 0;
  for (const [k, v] of Object.entries(s.byStatus)) if (k !== "200" && k !== "429") other += v;
  return { t, ok: s.byStatus["200"], r429: s.byStatus["429"], other, prompt: s.tokens.prompt, completion: s.tokens.completion };
}
/** Tokens the simulator charged against tpm for `ok` admitted calls. */
const charged = (d: Sample) => d.prompt + (chargeMaxTokens ? maxTokens * d.ok : d.completion);
const diff = (a: Sample, b: Sample): Sample => ({
  t: b.t - a.t,
  ok: b.ok - a.ok,
  r429: b.r429 - a.r429,
  other: b.other - a.other,
  prompt: b.prompt - a.prompt,
  completion: b.completion - a.completion,
});

try {
  console.log(
    `limits: run ${runId}: ${flags.workers} workers × ${flags.concurrency}, simulator ${flags.rpm} rpm / ${flags.tpm} tpm (completion charged as ${flags["tpm-completion"]}), ` +
      `workers told ${workerRpm} rpm / ${workerTpm} tpm; ${flags["min-kb"]}-${flags["max-kb"]} KB ${flags.dist}; ` +
      `~${Math.round(meanCallTokens)} tokens/call → ceiling ~${Math.round(ceilingRpm)} calls/min; ${flags.duration} s, steady state = last ${steadyMs / 1000} s; logs ${logDir}`,
  );
  await ensureTopics(kafka, [{ topic: topics.output }, { topic: topics.dlq }]);
  const { url: simUrl } = await sim.listen(0, "127.0.0.1");

  const metricsUrls: string[] = [];
  for (let i = 1; i <= flags.workers; i++) {
    const port = await freePort();
    metricsUrls.push(`http://127.0.0.1:${port}/metrics`);
    services.push(
      startService({
        service: "judge-worker",
        name: `judge-worker-${i}`,
        env: {
          KAFKA_BROKERS,
          REDIS_URL,
          QUEUE_PREFIX: prefix,
          OUTPUT_TOPIC: topics.output,
          DEAD_LETTER_TOPIC: topics.dlq,
          FIREWORKS_API_KEY: "bench-key",
          JUDGE_BASE_URL: simUrl,
          JUDGE_MODEL: MODEL,
          JUDGE_CONCURRENCY: String(flags.concurrency),
          JUDGE_MAX_TOKENS: String(maxTokens),
          JUDGE_RPM: String(workerRpm),
          JUDGE_TPM: String(workerTpm),
          METRICS_PORT: String(port),
          DRAIN_DEADLINE_MS: "5000",
          LOG_LEVEL: "info",
          KAFKAJS_NO_PARTITIONER_WARNING: "1",
        },
        logDir,
      }),
    );
  }
  await Promise.all(services.map((s, i) => waitForHttp(metricsUrls[i]?.replace("/metrics", "/readyz") ?? "", 90_000, s)));
  console.log(`limits: ${flags.workers} workers ready; keeping ≥${backlogTarget} jobs waiting`);

  // ---- load
  const t0 = Date.now();
  loadStart = t0;
  const machine0 = machineCpuMs();
  const samples: Sample[] = [sampleOf(0, sim.stats())];
  let feeding = true;
  let enqueued = 0;
  const feeder = (async () => {
    while (feeding) {
      const counts = await queue.getJobCounts("wait", "prioritized");
      const waiting = (counts.wait ?? 0) + (counts.prioritized ?? 0);
      const missing = backlogTarget - waiting;
      for (let i = 0; i < missing; i += 50) {
        const jobs = Array.from({ length: Math.min(50, missing - i) }, nextJob);
        await enqueueJudgeJobs(queue, jobs);
        enqueued += jobs.length;
      }
      await sleep(500);
    }
  })();
  const sampler = setInterval(() => samples.push(sampleOf(Date.now() - t0, sim.stats())), 1000);
  // The fleet limiter's own view, read straight from its Redis keys (read-only): is the fleet
  // paused after a 429, and how full does it think the window is?
  const rlKey = `${prefix}:ratelimit:{${MODEL}}`;
  const limiterView: { t: number; paused: boolean; usedTokens: number; usedRequests: number }[] = [];
  const limiterSampler = setInterval(() => {
    const t = Date.now() - t0;
    void Promise.all([redis.hget(`${rlKey}:state`, "pausedUntil"), redis.hmget(`${rlKey}:tot`, "r", "t"), redis.time()])
      .then(([pu, [r, tk], [sec, usec]]) => {
        const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
        limiterView.push({ t, paused: Number(pu ?? 0) > now, usedTokens: Number(tk ?? 0), usedRequests: Number(r ?? 0) });
      })
      .catch(() => undefined);
  }, 250);
  const progress = setInterval(() => {
    const last = samples.at(-1);
    if (!last) return;
    const prev = samples.findLast((s) => s.t <= last.t - 30_000) ?? samples[0];
    if (!prev) return;
    const d = diff(prev, last);
    const perMin = 60_000 / Math.max(1, d.t);
    console.log(
      `  t=${Math.round(last.t / 1000)}s  last ${Math.round(d.t / 1000)}s: ${Math.round(d.ok * perMin)} req/min, ${Math.round(charged(d) * perMin)} tok/min, ${d.r429} × 429; total ok ${last.ok}, 429 ${last.r429}, enqueued ${enqueued}`,
    );
  }, 30_000);
  await sleep(durationMs);
  clearInterval(progress);
  clearInterval(sampler);
  clearInterval(limiterSampler);
  const tEnd = Date.now() - t0;
  const machine1 = machineCpuMs();
  const machineBusy = (machine1[0] - machine0[0]) / Math.max(1, machine1[1] - machine0[1]);
  const end = sampleOf(tEnd, sim.stats());
  samples.push(end);
  feeding = false;
  await feeder;

  // ---- figures from the simulator's accounting
  const startSteady = samples.reduce((best, s) => (Math.abs(s.t - (tEnd - steadyMs)) < Math.abs(best.t - (tEnd - steadyMs)) ? s : best));
  const steady = diff(startSteady, end);
  const whole = diff(samples[0] as Sample, end);
  const minutes = steady.t / 60_000;
  const achievedRpm = steady.ok / minutes;
  const achievedTpm = charged(steady) / minutes;
  const rpmUse = achievedRpm / flags.rpm;
  const tpmUse = achievedTpm / flags.tpm;
  const binding = tpmUse >= rpmUse ? "tokens/min" : "requests/min";
  const bindingUse = Math.max(rpmUse, tpmUse);
  const steadyRequests = steady.ok + steady.r429 + steady.other;
  const wholeRequests = whole.ok + whole.r429 + whole.other;
  const steadyView = limiterView.filter((v) => v.t >= startSteady.t);
  const pausedShare = steadyView.length > 0 ? steadyView.filter((v) => v.paused).length / steadyView.length : 0;
  const meanOf = (xs: number[]) => (xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  const limiterMeanTokens = meanOf(steadyView.map((v) => v.usedTokens));
  const limiterMeanRequests = meanOf(steadyView.map((v) => v.usedRequests));
  const timeline: { from_s: number; to_s: number; req_per_min: number; tok_per_min: number; r429: number }[] = [];
  for (let from = 0; from < tEnd - 1000; from += 30_000) {
    const a = samples.find((s) => s.t >= from) ?? end;
    const b = samples.find((s) => s.t >= Math.min(from + 30_000, tEnd)) ?? end;
    const d = diff(a, b);
    if (d.t <= 0) continue;
    timeline.push({
      from_s: Math.round(a.t / 1000),
      to_s: Math.round(b.t / 1000),
      req_per_min: Math.round((d.ok * 60_000) / d.t),
      tok_per_min: Math.round((charged(d) * 60_000) / d.t),
      r429: d.r429,
    });
  }

  // ---- the workers' view: queue waits, 429s seen, limiter waits (whole run)
  const rateLimitWait = await scrapeHistogram(metricsUrls, "tracesift_rate_limit_wait_seconds");
  const callDuration = await scrapeHistogram(metricsUrls, "tracesift_judge_request_duration_seconds");
  const callSum = await scrapeSum(metricsUrls, "tracesift_judge_request_duration_seconds");
  const completed = await queue.getJobs(["completed"], 0, -1);
  const steadyFrom = t0 + startSteady.t;
  const inSteady = completed.filter((j) => (j.finishedOn ?? 0) >= steadyFrom);
  const queueWaits = inSteady.map((j) => (j.processedOn ?? 0) - j.timestamp);
  const totalTimes = inSteady.map((j) => (j.finishedOn ?? 0) - j.timestamp);
  // Does the limiter serve big conversations as promptly as small ones? Split at the median size.
  const bytesOf = (j: (typeof inSteady)[number]) => {
    const decoded = decodeJudgeJob(j.data);
    return decoded.ok ? JSON.stringify(decoded.job.conversation.messages).length : 0;
  };
  const medianBytes = percentile(inSteady.map(bytesOf), 50) ?? 0;
  const smallTimes = inSteady.filter((j) => bytesOf(j) <= medianBytes).map((j) => (j.finishedOn ?? 0) - j.timestamp);
  const largeTimes = inSteady.filter((j) => bytesOf(j) > medianBytes).map((j) => (j.finishedOn ?? 0) - j.timestamp);
  const failed = await queue.getJobs(["failed"], 0, -1);
  const failedFor429 = failed.filter((j) => /429|rate.?limit/i.test(j.failedReason ?? ""));
  const counts = await queue.getJobCounts("wait", "prioritized", "active", "delayed", "completed", "failed");

  await Promise.all(services.map((s) => s.stop()));
  const letters = await readTopic(kafka, topics.dlq, 15_000);
  const lettersFor429 = letters.filter((l) => /429|rate.?limit/i.test(l.value));

  const figures = {
    run: runId,
    config: {
      ...flags,
      worker_rpm: workerRpm,
      worker_tpm: workerTpm,
      steady_state_s: steadyMs / 1000,
      mean_call_tokens_estimate: Math.round(meanCallTokens),
      backlog_target_jobs: backlogTarget,
    },
    steady_state: {
      seconds: Math.round(steady.t / 1000),
      requests_per_min: Math.round(achievedRpm),
      tokens_per_min_charged: Math.round(achievedTpm),
      tokens_per_min_actual: Math.round((steady.prompt + steady.completion) / minutes),
      rpm_use: rpmUse,
      tpm_use: tpmUse,
      binding_limit: binding,
      binding_use: bindingUse,
      requests: steadyRequests,
      ok: steady.ok,
      r429: steady.r429,
      r429_share: steadyRequests > 0 ? steady.r429 / steadyRequests : 0,
      other_errors: steady.other,
      fleet_paused_share: pausedShare,
      limiter_window_mean_tokens: Math.round(limiterMeanTokens),
      limiter_window_mean_requests: Math.round(limiterMeanRequests),
      queue_wait_p50_ms: percentile(queueWaits, 50),
      queue_wait_p99_ms: percentile(queueWaits, 99),
      enqueue_to_done_p50_ms: percentile(totalTimes, 50),
      enqueue_to_done_p99_ms: percentile(totalTimes, 99),
      enqueue_to_done_small_p50_ms: percentile(smallTimes, 50),
      enqueue_to_done_small_p99_ms: percentile(smallTimes, 99),
      enqueue_to_done_large_p50_ms: percentile(largeTimes, 50),
      enqueue_to_done_large_p99_ms: percentile(largeTimes, 99),
      median_conversation_kb: Math.round(medianBytes / 102.4) / 10,
      jobs_completed: inSteady.length,
    },
    whole_run: {
      seconds: Math.round(whole.t / 1000),
      requests: wholeRequests,
      ok: whole.ok,
      r429: whole.r429,
      r429_share: wholeRequests > 0 ? whole.r429 / wholeRequests : 0,
      other_errors: whole.other,
      machine_busy: machineBusy,
      jobs_enqueued: enqueued,
      jobs_completed: completed.length,
      jobs_failed: failed.length,
      jobs_failed_for_429: failedFor429.length,
      dead_letters: letters.length,
      dead_letters_for_429: lettersFor429.length,
      queue_counts_at_end: counts,
      sim_call_ms_mean: simDurations.length > 0 ? simDurations.reduce((a, b) => a + b, 0) / simDurations.length : null,
      sim_call_ms_p99: percentile(simDurations, 99),
      worker_call_ms_mean: callSum.count > 0 ? (1000 * callSum.sum) / callSum.count : null,
      worker_call_ms_p99_bucket: (histogramQuantile(callDuration, 0.99) ?? Number.NaN) * 1000,
      rate_limit_wait_p50_s: histogramQuantile(rateLimitWait, 0.5),
      rate_limit_wait_p99_s: histogramQuantile(rateLimitWait, 0.99),
    },
    timeline_30s: timeline,
    r429_at_s: refusedAt.map((ms) => Math.round(ms) / 1000),
    targets: {
      binding_use_ge_95pct: bindingUse >= 0.95,
      r429_lt_1pct: (steadyRequests > 0 ? steady.r429 / steadyRequests : 0) < 0.01 && (wholeRequests > 0 ? whole.r429 / wholeRequests : 0) < 0.01,
      no_job_failed_for_429: failedFor429.length === 0 && lettersFor429.length === 0,
    },
  };

  console.log("\nper 30 s (from the simulator):");
  for (const r of timeline) console.log(`  ${String(r.from_s).padStart(4)}-${String(r.to_s).padEnd(4)}s  ${String(r.req_per_min).padStart(5)} req/min  ${String(r.tok_per_min).padStart(7)} tok/min  ${r.r429} × 429`);
  if (refusedAt.length > 0) console.log(`429s answered at (s since the load started): ${refusedAt.map((ms) => (ms / 1000).toFixed(2)).join(", ")}`);
  const ss = figures.steady_state;
  const wr = figures.whole_run;
  const rows: Row[] = [
    ["limit (simulator)", `${flags.rpm} rpm / ${flags.tpm} tpm`],
    ["steady-state window", `last ${ss.seconds} s`],
    ["requests/min achieved", `${ss.requests_per_min}`, `${fmt.pct(rpmUse)} of ${flags.rpm}`],
    ["tokens/min achieved (charged)", `${ss.tokens_per_min_charged}`, `${fmt.pct(tpmUse)} of ${flags.tpm} (prompt + ${chargeMaxTokens ? `max_tokens ${maxTokens}` : "actual completion"})`],
    ["tokens/min (prompt+completion)", `${ss.tokens_per_min_actual}`, "what usage reports"],
    ["binding limit used", fmt.pct(bindingUse), `${binding}; target ≥ 95%`],
    ["429s, steady state", `${ss.r429} / ${ss.requests}`, `${fmt.pct(ss.r429_share)}; target < 1%`],
    ["429s, whole run", `${wr.r429} / ${wr.requests}`, fmt.pct(wr.r429_share)],
    ["fleet paused after 429s", fmt.pct(pausedShare), "share of the steady-state window"],
    ["limiter's window, mean", `${Math.round(limiterMeanTokens)} tok / ${Math.round(limiterMeanRequests)} req`, `its cap: ${Math.round(workerTpm * 0.97)} tok / ${Math.round(workerRpm * 0.97)} req (safety 0.97)`],
    ["jobs failed / failed for 429", `${wr.jobs_failed} / ${wr.jobs_failed_for_429}`, "BullMQ failed set; target 0"],
    ["dead letters / for 429", `${wr.dead_letters} / ${wr.dead_letters_for_429}`],
    ["queue wait p50 / p99", `${fmt.s(ss.queue_wait_p50_ms)} / ${fmt.s(ss.queue_wait_p99_ms)}`, `processedOn - timestamp, ${ss.jobs_completed} jobs done in steady state`],
    ["enqueue → done p50 / p99", `${fmt.s(ss.enqueue_to_done_p50_ms)} / ${fmt.s(ss.enqueue_to_done_p99_ms)}`],
    [
      "  smaller / larger half",
      `${fmt.s(ss.enqueue_to_done_small_p50_ms)} / ${fmt.s(ss.enqueue_to_done_large_p50_ms)} p50`,
      `p99 ${fmt.s(ss.enqueue_to_done_small_p99_ms)} / ${fmt.s(ss.enqueue_to_done_large_p99_ms)}; split at ${ss.median_conversation_kb} KB`,
    ],
    ["rate-limiter wait p50 / p99", `≤${fmt.n(wr.rate_limit_wait_p50_s, 2)} / ≤${fmt.n(wr.rate_limit_wait_p99_s, 2)} s`, "workers' histogram, whole run"],
    [
      "model call: simulator / worker view",
      `${fmt.n(wr.sim_call_ms_mean)} / ${fmt.n(wr.worker_call_ms_mean)} ms mean`,
      `p99 ${fmt.n(wr.sim_call_ms_p99)} / ≤${fmt.n(wr.worker_call_ms_p99_bucket)} ms; the gap is time outside the provider (build, send, parse)`,
    ],
    ["machine CPU busy (2 cores)", fmt.pct(machineBusy), "whole run, everything on the machine"],
    ["jobs enqueued / completed", `${wr.jobs_enqueued} / ${wr.jobs_completed}`, `backlog kept ≥ ${backlogTarget} waiting`],
  ];
  printTable(`limits — ${flags.workers} judge workers at the provider's limit (run ${runId})`, rows);
  const ok = Object.values(figures.targets).every(Boolean);
  console.log(`targets: ${ok ? "all met" : `MISSED ${Object.entries(figures.targets).filter(([, v]) => !v).map(([k]) => k).join(", ")}`}`);
  console.log(`figures: ${writeFigures(flags.tag ? `limits-${flags.tag}` : "limits", figures)}`);
} finally {
  await cleanup();
  guardian.dispose();
}
process.exit(0);
