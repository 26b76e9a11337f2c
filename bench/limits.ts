/**
 * "At the provider's limit", metered like Fireworks serverless: three judge-worker replicas (real
 * processes) against the simulator enforcing Fireworks' meters (total prompt, uncached prompt and
 * generated tokens, reported per second and metered over a sliding 60 s window; requests per
 * minute; the account's RPM cap) with adaptive limits (a cold model starts at half of them), four
 * serving replicas with prefix prompt caches and session affinity. The limits are Fireworks'
 * starting limits (60,000 / 15,000 / 600 tokens per second, 6,000 RPM) times `--scale`.
 *
 * The workload is per-turn judging: conversations of 1-40 KB (log-uniform), each judged at its
 * last 1-3 user turns as it grows, the next turn `--turn-gap` seconds after the previous one, so
 * a re-judge finds the earlier prompt in the provider's cache. A feeder keeps a backlog in the
 * queue so the limits bind for the whole run.
 *
 * It runs twice: with the limits configured on the workers, and with no configuration (limits
 * learned from response headers alone). Per run it prints each meter's use as a share of its
 * limit in steady state (from the simulator's own accounting) and which meter binds, the share of
 * requests answered 429, jobs failed for 429s, the cached share of prompt tokens and the cost per
 * 1,000 conversations.
 *
 *   pnpm --filter @tracesift/bench limits [-- --duration 180 --scale 0.1 --modes configured,learned ...]
 *   pnpm exec tsx bench/limits.ts --help
 *
 * Needs Kafka on 127.0.0.1:9092 and Redis on 6379 (`scripts/services.sh up`). Everything it
 * creates (topics, queue and limiter keys, processes) is removed at the end, also on Ctrl-C.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { createSimulator, type SimStats } from "@tracesift/fireworks-sim";
import { createKafka, ensureTopics } from "@tracesift/kafka";
import { createJudgeQueue, createRedis, enqueueJudgeJobs } from "@tracesift/queue";
import { createLogger } from "@tracesift/runtime";
import { type Conversation, JudgeResult } from "@tracesift/schemas";
import { type RunningService, startService, waitForHttp } from "../services/cli/src/fleet.ts";
import {
  deleteRedisPrefix,
  deleteTopicsAndGroups,
  fmt,
  freePort,
  guard,
  KAFKA_BROKERS,
  machineCpuMs,
  makeJudgeJob,
  makeMessages,
  parseFlags,
  percentile,
  printTable,
  REDIS_URL,
  REPO_ROOT,
  type Row,
  readTopic,
  rng,
  sleep,
  writeFigures,
} from "./lib/common.ts";

const flags = parseFlags("limits", {
  modes: { default: "configured,learned", help: "runs, in order: configured (limits given to the workers) and/or learned (headers only)" },
  scale: { default: 0.2, help: "share of Fireworks' starting limits (60,000 / 15,000 / 600 tokens/s, 6,000 rpm) the simulator enforces" },
  duration: { default: 180, help: "seconds of load per run" },
  steady: { default: 120, help: "seconds at the end of each run measured as steady state" },
  workers: { default: 3, help: "judge-worker replicas" },
  concurrency: { default: 16, help: "JUDGE_CONCURRENCY per replica" },
  "min-kb": { default: 1, help: "smallest conversation (KB of message text)" },
  "max-kb": { default: 40, help: "largest conversation (KB of message text)" },
  "max-turns": { default: 3, help: "each conversation is judged at its last 1..max-turns user turns" },
  "turn-gap": { default: 40, help: "seconds between two judged turns of one conversation" },
  "latency-ms": { default: 250, help: "simulator latency per call" },
  "jitter-ms": { default: 100, help: "simulator extra random latency" },
  "max-tokens": { default: 256, help: "JUDGE_MAX_TOKENS (completion budget per call)" },
  replicas: { default: 4, help: "simulated serving replicas, each with its own prompt cache" },
  "ramp-start": { default: 0.5, help: "share of its limits a cold model starts at (1 = fixed limits)" },
  "ramp-ms": { default: 30_000, help: "time from the ramp's start to the full limits" },
  backlog: { default: 10, help: "jobs kept waiting in the queue (small: a later turn must find its earlier one judged)" },
  tag: { default: "", help: "figures go to bench/out/limits-<tag>.json instead of limits.json" },
  seed: { default: 1, help: "workload seed" },
});

const MODEL = "accounts/fireworks/models/qwen3p5-35b-a3b";
const FIREWORKS = { promptTps: 60_000, uncachedPromptTps: 15_000, generatedTps: 600, accountRpm: 6_000 };
const limits = {
  rpm: Math.round(FIREWORKS.accountRpm * flags.scale),
  promptTps: FIREWORKS.promptTps * flags.scale,
  uncachedPromptTps: FIREWORKS.uncachedPromptTps * flags.scale,
  generatedTps: FIREWORKS.generatedTps * flags.scale,
};
/** Per minute, the window both the simulator and the limiter meter over. */
const perMinute = {
  requests: limits.rpm,
  prompt: limits.promptTps * 60,
  uncached: limits.uncachedPromptTps * 60,
  generated: limits.generatedTps * 60,
};
type MeterName = keyof typeof perMinute;
const modes = flags.modes.split(",").map((m) => m.trim());
for (const m of modes) if (m !== "configured" && m !== "learned") throw new Error(`--modes: unknown mode ${m}`);
const runId = randomUUID().slice(0, 8);
const logDir = join(REPO_ROOT, ".cache/bench", `limits-${runId}`);
const durationMs = flags.duration * 1000;
const steadyMs = Math.min(flags.steady, flags.duration) * 1000;

const logger = createLogger({ service: "bench", level: "warn" });
const kafka = createKafka({ KAFKA_BROKERS, KAFKA_SSL: false }, `bench-${runId}`, logger);
const redis = createRedis(REDIS_URL, "producer");
const sim = createSimulator({
  latencyMs: flags["latency-ms"],
  latencyJitterMs: flags["jitter-ms"],
  rpm: limits.rpm,
  accountRpm: limits.rpm,
  promptTokensPerSec: limits.promptTps,
  uncachedPromptTokensPerSec: limits.uncachedPromptTps,
  generatedTokensPerSec: limits.generatedTps,
  rampStartShare: flags["ramp-start"],
  rampMs: flags["ramp-ms"],
  replicas: flags.replicas,
  // Fireworks does not promise retry-after: the fleet must cope without it.
  sendRetryAfter: false,
  seed: flags.seed,
});

/** Everything a run created, for cleanup also on Ctrl-C. */
const created: { services: RunningService[]; topics: string[]; prefixes: string[] } = { services: [], topics: [], prefixes: [] };
let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await Promise.all(created.services.map((s) => s.stop()));
  await sim.close();
  await redis.quit().catch(() => undefined);
  await deleteTopicsAndGroups(kafka, created.topics);
  for (const p of created.prefixes) await deleteRedisPrefix(p);
}
const guardian = guard(modes.length * (durationMs + 180_000), cleanup);

type Sample = { t: number; ok: number; r429: number; other: number; prompt: number; cached: number; completion: number; cost: number };
function sampleOf(t: number, s: SimStats): Sample {
  let other = 0;
  for (const [k, v] of Object.entries(s.byStatus)) if (k !== "200" && k !== "429") other += v;
  return { t, ok: s.byStatus["200"], r429: s.byStatus["429"], other, prompt: s.tokens.prompt, cached: s.tokens.cached, completion: s.tokens.completion, cost: s.costUsd };
}
const diff = (a: Sample, b: Sample): Sample => ({
  t: b.t - a.t,
  ok: b.ok - a.ok,
  r429: b.r429 - a.r429,
  other: b.other - a.other,
  prompt: b.prompt - a.prompt,
  cached: b.cached - a.cached,
  completion: b.completion - a.completion,
  cost: b.cost - a.cost,
});
/** Each meter's charge in a span of samples. */
const charged = (d: Sample): Record<MeterName, number> => ({ requests: d.ok, prompt: d.prompt, uncached: d.prompt - d.cached, generated: d.completion });

/** One conversation as it grows: the versions judged, the next one due at `dueAt`. */
type Growing = { id: string; versions: Conversation["messages"][]; next: number; dueAt: number };

async function run(mode: "configured" | "learned", simUrl: string) {
  const prefix = `bench-${runId}-${mode}`;
  const topics = { output: `${prefix}-judged`, dlq: `${prefix}-dlq` };
  created.topics.push(topics.output, topics.dlq);
  created.prefixes.push(prefix);
  sim.reset(); // cold: empty windows and caches, limits back at the ramp's start
  const queue = createJudgeQueue(redis, { QUEUE_PREFIX: prefix, JUDGE_QUEUE: "judge" });
  await ensureTopics(kafka, [{ topic: topics.output }, { topic: topics.dlq }]);

  const services: RunningService[] = [];
  const configured =
    mode === "configured"
      ? {
          JUDGE_RPM: String(perMinute.requests),
          JUDGE_PROMPT_TPM: String(perMinute.prompt),
          JUDGE_UNCACHED_PROMPT_TPM: String(perMinute.uncached),
          JUDGE_GENERATED_TPM: String(perMinute.generated),
        }
      : {};
  const readyUrls: string[] = [];
  for (let i = 1; i <= flags.workers; i++) {
    const port = await freePort();
    readyUrls.push(`http://127.0.0.1:${port}/readyz`);
    services.push(
      startService({
        service: "judge-worker",
        name: `${mode}-judge-worker-${i}`,
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
          JUDGE_MAX_TOKENS: String(flags["max-tokens"]),
          ...configured,
          METRICS_PORT: String(port),
          DRAIN_DEADLINE_MS: "5000",
          LOG_LEVEL: "info",
          KAFKAJS_NO_PARTITIONER_WARNING: "1",
        },
        logDir,
      }),
    );
  }
  created.services.push(...services);
  await Promise.all(services.map((s, i) => waitForHttp(readyUrls[i] ?? "", 90_000, s)));
  console.log(`\nlimits [${mode}]: ${flags.workers} workers ready (${mode === "configured" ? "limits configured" : "no limits configured: learned from headers"})`);

  // ---- workload: the same for both runs (same seed)
  const random = rng(flags.seed);
  const minB = flags["min-kb"] * 1024;
  const maxB = flags["max-kb"] * 1024;
  const planned = new Map<string, number>();
  let made = 0;
  let offset = 0;
  const growing: Growing[] = [];
  const newConversation = (now: number): Growing => {
    const id = `${prefix}-c${made++}`;
    const messages = makeMessages(random, Math.exp(Math.log(minB) + random() * (Math.log(maxB) - Math.log(minB))));
    // Per-turn mode judges when a user message answers an assistant message.
    const turns = messages.flatMap((m, i) => (i >= 2 && m.role === "user" && messages[i - 1]?.role === "assistant" ? [i] : []));
    const judged = turns.slice(-(1 + Math.floor(random() * flags["max-turns"])));
    planned.set(id, judged.length);
    return { id, versions: judged.map((i) => messages.slice(0, i + 1)), next: 0, dueAt: now };
  };

  const t0 = Date.now();
  const machine0 = machineCpuMs();
  const samples: Sample[] = [sampleOf(0, sim.stats())];
  let feeding = true;
  let enqueued = 0;
  const feeder = (async () => {
    while (feeding) {
      const counts = await queue.getJobCounts("wait", "prioritized");
      let missing = flags.backlog - ((counts.wait ?? 0) + (counts.prioritized ?? 0));
      const now = Date.now();
      const batch = [];
      // Later turns of conversations already judged come first, as they arrive; then new ones.
      growing.sort((a, b) => a.dueAt - b.dueAt);
      while (missing > 0) {
        const g = growing[0] && growing[0].dueAt <= now ? growing.shift()! : newConversation(now);
        const conversation: Conversation = { id: g.id, source: "openai", messages: g.versions[g.next]!, metadata: { app: "bench" } };
        batch.push(makeJudgeJob(conversation, offset++));
        g.next++;
        if (g.next < g.versions.length) {
          g.dueAt = now + flags["turn-gap"] * 1000;
          growing.push(g);
        }
        missing--;
      }
      if (batch.length > 0) await enqueueJudgeJobs(queue, batch);
      enqueued += batch.length;
      await sleep(500);
    }
  })();
  const sampler = setInterval(() => samples.push(sampleOf(Date.now() - t0, sim.stats())), 1000);
  const progress = setInterval(() => {
    const last = samples.at(-1);
    const prev = last && (samples.findLast((s) => s.t <= last.t - 30_000) ?? samples[0]);
    if (!last || !prev) return;
    const d = diff(prev, last);
    const c = charged(d);
    const use = (m: MeterName) => fmt.pct((c[m] * 60_000) / Math.max(1, d.t) / perMinute[m]);
    console.log(
      `  t=${Math.round(last.t / 1000)}s  last ${Math.round(d.t / 1000)}s: requests ${use("requests")}, prompt ${use("prompt")}, uncached ${use("uncached")}, generated ${use("generated")} of their limits; ${d.r429} × 429; enqueued ${enqueued}`,
    );
  }, 30_000);
  await sleep(durationMs);
  clearInterval(progress);
  clearInterval(sampler);
  const tEnd = Date.now() - t0;
  const machine1 = machineCpuMs();
  const end = sampleOf(tEnd, sim.stats());
  samples.push(end);
  feeding = false;
  await feeder;

  // ---- figures from the simulator's accounting
  const from = tEnd - steadyMs;
  const startSteady = samples.reduce((best, s) => (Math.abs(s.t - from) < Math.abs(best.t - from) ? s : best));
  const steady = diff(startSteady, end);
  const whole = diff(samples[0] as Sample, end);
  const minutes = steady.t / 60_000;
  const c = charged(steady);
  const use = Object.fromEntries((Object.keys(perMinute) as MeterName[]).map((m) => [m, c[m] / minutes / perMinute[m]])) as Record<MeterName, number>;
  const binding = (Object.keys(use) as MeterName[]).reduce((a, b) => (use[b] > use[a] ? b : a));
  const steadyRequests = steady.ok + steady.r429 + steady.other;
  const wholeRequests = whole.ok + whole.r429 + whole.other;

  const completed = await queue.getJobs(["completed"], 0, -1);
  const totalTimes = completed.filter((j) => (j.finishedOn ?? 0) >= t0 + startSteady.t).map((j) => (j.finishedOn ?? 0) - j.timestamp);
  const failed = await queue.getJobs(["failed"], 0, -1);
  const failedFor429 = failed.filter((j) => /429|rate.?limit/i.test(j.failedReason ?? ""));
  await Promise.all(services.map((s) => s.stop()));
  await queue.close().catch(() => undefined);
  const letters = await readTopic(kafka, topics.dlq, 15_000);
  const lettersFor429 = letters.filter((l) => /429|rate.?limit/i.test(l.value));

  // Cost per conversation from the workers' own results, over conversations whose every planned
  // turn was judged in the run (the others' later turns fell outside it).
  const results = (await readTopic(kafka, topics.output, 20_000)).map((r) => JudgeResult.parse(JSON.parse(r.value)));
  const byConversation = new Map<string, { n: number; usd: number }>();
  for (const r of results) {
    if (r.status !== "judged") continue;
    const e = byConversation.get(r.conversation_id) ?? { n: 0, usd: 0 };
    e.n++;
    e.usd += r.cost_usd;
    byConversation.set(r.conversation_id, e);
  }
  const wholeConversations = [...byConversation].filter(([id, e]) => e.n >= (planned.get(id) ?? Number.POSITIVE_INFINITY));
  const usdPerConversation = wholeConversations.reduce((s, [, e]) => s + e.usd, 0) / Math.max(1, wholeConversations.length);
  const judgesPerConversation = wholeConversations.reduce((s, [, e]) => s + e.n, 0) / Math.max(1, wholeConversations.length);

  return {
    mode,
    steady_state: {
      seconds: Math.round(steady.t / 1000),
      use,
      per_minute: Object.fromEntries((Object.keys(c) as MeterName[]).map((m) => [m, Math.round(c[m] / minutes)])),
      binding_meter: binding,
      binding_use: use[binding],
      requests: steadyRequests,
      r429: steady.r429,
      r429_share: steadyRequests > 0 ? steady.r429 / steadyRequests : 0,
      cached_share: steady.prompt > 0 ? steady.cached / steady.prompt : 0,
      enqueue_to_done_p50_ms: percentile(totalTimes, 50),
      enqueue_to_done_p99_ms: percentile(totalTimes, 99),
    },
    whole_run: {
      seconds: Math.round(whole.t / 1000),
      requests: wholeRequests,
      ok: whole.ok,
      r429: whole.r429,
      r429_share: wholeRequests > 0 ? whole.r429 / wholeRequests : 0,
      other_errors: whole.other,
      cached_share: whole.prompt > 0 ? whole.cached / whole.prompt : 0,
      provider_bill_usd: whole.cost,
      usd_per_1000_calls: whole.ok > 0 ? (1000 * whole.cost) / whole.ok : null,
      usd_per_1000_conversations: wholeConversations.length > 0 ? 1000 * usdPerConversation : null,
      judge_calls_per_conversation: judgesPerConversation,
      conversations_fully_judged: wholeConversations.length,
      jobs_enqueued: enqueued,
      jobs_completed: completed.length,
      jobs_failed: failed.length,
      jobs_failed_for_429: failedFor429.length,
      dead_letters: letters.length,
      dead_letters_for_429: lettersFor429.length,
      machine_busy: (machine1[0] - machine0[0]) / Math.max(1, machine1[1] - machine0[1]),
    },
  };
}

try {
  console.log(
    `limits: run ${runId}: simulator at ${flags.scale} × Fireworks' starting limits = ${limits.promptTps} prompt / ${limits.uncachedPromptTps} uncached prompt / ${limits.generatedTps} generated tokens/s, ${limits.rpm} rpm (also the account cap); ` +
      `ramp from ${flags["ramp-start"]} over ${flags["ramp-ms"] / 1000} s; ${flags.replicas} serving replicas; ${flags.workers} workers × ${flags.concurrency}; ` +
      `${flags["min-kb"]}-${flags["max-kb"]} KB conversations judged at their last 1-${flags["max-turns"]} turns, ${flags["turn-gap"]} s apart; ${flags.duration} s per run, steady state = last ${steadyMs / 1000} s; logs ${logDir}`,
  );
  const { url: simUrl } = await sim.listen(0, "127.0.0.1");
  const runs = [];
  for (const mode of modes) runs.push(await run(mode as "configured" | "learned", simUrl));

  const rows: Row[] = [];
  for (const r of runs) {
    const ss = r.steady_state;
    const wr = r.whole_run;
    const meterRow = (m: MeterName, label: string): Row => [
      `  ${label}`,
      fmt.pct(ss.use[m]),
      `${ss.per_minute[m]} of ${perMinute[m]} a minute${m === ss.binding_meter ? "  ← binds" : ""}`,
    ];
    rows.push(
      [`${r.mode === "configured" ? "limits configured" : "limits learned from headers only"}`, "", ""],
      meterRow("requests", "requests"),
      meterRow("prompt", "prompt tokens"),
      meterRow("uncached", "uncached prompt tokens"),
      meterRow("generated", "generated tokens"),
      ["  binding meter used", fmt.pct(ss.binding_use), `${ss.binding_meter}, steady state (last ${ss.seconds} s); target ≥ 95%`],
      ["  429s, steady / whole run", `${ss.r429} / ${ss.requests}, ${wr.r429} / ${wr.requests}`, `${fmt.pct(ss.r429_share)} / ${fmt.pct(wr.r429_share)}; target < 1%`],
      ["  jobs failed / for 429", `${wr.jobs_failed} / ${wr.jobs_failed_for_429}`, `dead letters ${wr.dead_letters} / for 429 ${wr.dead_letters_for_429}; target 0`],
      ["  cached share of prompt tokens", fmt.pct(wr.cached_share), `steady state ${fmt.pct(ss.cached_share)}`],
      [
        "  cost per 1,000 conversations",
        `$${fmt.n(wr.usd_per_1000_conversations, 3)}`,
        `${fmt.n(wr.judge_calls_per_conversation, 2)} judge calls each (${wr.conversations_fully_judged} conversations with every turn judged); $${fmt.n(wr.usd_per_1000_calls, 3)} per 1,000 calls`,
      ],
      ["  enqueue → done p50 / p99", `${fmt.s(ss.enqueue_to_done_p50_ms)} / ${fmt.s(ss.enqueue_to_done_p99_ms)}`, `backlog of ${flags.backlog} jobs kept waiting`],
      ["  machine CPU busy (2 cores)", fmt.pct(wr.machine_busy), `${wr.jobs_completed} jobs done`],
    );
  }
  printTable(`limits — ${flags.workers} judge workers at Fireworks-style limits (run ${runId})`, rows);
  const targets = Object.fromEntries(
    runs.map((r) => [
      r.mode,
      {
        binding_use_ge_95pct: r.steady_state.binding_use >= 0.95,
        r429_lt_1pct: r.whole_run.r429_share < 0.01,
        no_job_failed_for_429: r.whole_run.jobs_failed_for_429 === 0 && r.whole_run.dead_letters_for_429 === 0,
      },
    ]),
  );
  const missed = Object.entries(targets).flatMap(([mode, t]) => Object.entries(t).flatMap(([k, ok]) => (ok ? [] : [`${mode}.${k}`])));
  console.log(`targets: ${missed.length === 0 ? "all met" : `MISSED ${missed.join(", ")}`}`);
  const figures = { run: runId, config: { ...flags, limits, per_minute: perMinute }, runs, targets };
  console.log(`figures: ${writeFigures(flags.tag ? `limits-${flags.tag}` : "limits", figures)}`);
} finally {
  await cleanup();
  guardian.dispose();
}
process.exit(0);
