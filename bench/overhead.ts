/**
 * Fleet overhead with an instant model (simulator latency 0): conversations per second through
 * ingest → BullMQ → judge worker → output topic, against three baselines on the same machine in
 * the same run — a bare BullMQ no-op (addBulk + no-op workers, same processes × concurrency), a
 * bare kafkajs consume → produce passthrough, and bare model calls (the worker's judge client
 * against the simulator, same processes × concurrency) — plus CPU ms per conversation of the
 * fleet's processes for small (5 KB) and large (100 KB) conversations.
 *
 * The three baselines also give a bound: the machine is CPU-bound, and a conversation needs the
 * work of all three, so no fleet on it exceeds 1 / (1/bullmq + 1/kafkajs + 1/model) per second.
 *
 *   pnpm --filter @tracesift/bench overhead [-- --n 5000 --n-large 500 ...]
 *   pnpm exec tsx bench/overhead.ts --help
 *
 * Every phase gets fresh topics, consumer groups, queue prefix and processes, and removes them.
 * CPU is read from /proc (utime + stime of each service's process tree) around the measured part,
 * after a warm-up batch, so start-up and JIT warm-up are not counted.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createWriteStream, mkdirSync } from "node:fs";
import { join } from "node:path";
import { createSimulator } from "@tracesift/fireworks-sim";
import { createKafka, ensureTopics, type Kafka } from "@tracesift/kafka";
import { createJudgeQueue, createRedis, enqueueJudgeJobs } from "@tracesift/queue";
import { createLogger } from "@tracesift/runtime";
import type { JudgeJob } from "@tracesift/schemas";
import { type RunningService, startService, waitForHttp } from "../services/cli/src/fleet.ts";
import {
  waitForCount,
  deleteRedisPrefix,
  deleteTopicsAndGroups,
  fmt,
  freePort,
  guard,
  KAFKA_BROKERS,
  machineCpuMs,
  makeConversation,
  pidListeningOn,
  makeEvent,
  makeJudgeJob,
  parseFlags,
  produceAll,
  REDIS_URL,
  REPO_ROOT,
  rng,
  selfCpuMs,
  sleep,
  topicCounts,
  treeCpuMs,
  waitForQuiet,
  writeFigures,
} from "./lib/common.ts";
import { type ProfileSummary, printProfile, summariseProfiles } from "./lib/profile.ts";

const flags = parseFlags("overhead", {
  n: { default: 5000, help: "conversations per measured 5 KB phase" },
  kb: { default: 5, help: "size of the small conversations (KB of message text)" },
  "n-large": { default: 500, help: "conversations in the large phase (0 = skip it)" },
  "large-kb": { default: 100, help: "size of the large conversations" },
  warmup: { default: 200, help: "conversations before each measurement (not counted; a fifth of it for the large phase)" },
  workers: { default: 2, help: "judge-worker processes (and bare BullMQ worker processes)" },
  concurrency: { default: 16, help: "JUDGE_CONCURRENCY per worker (and the bare workers' concurrency)" },
  partitions: { default: 3, help: "input topic partitions" },
  limiter: { default: "configured", help: "worker limiter mode: configured (JUDGE_RPM/TPM set far above the load) or adaptive (unset: AIMD)" },
  quiet: { default: 0.35, help: "before each measurement wait (≤ 90 s) for the machine to be less busy than this share" },
  profile: { default: false, help: "run the fleet's services under --cpu-prof and print where their CPU goes" },
  timeout: { default: 300, help: "seconds a measured phase may take before the run is abandoned" },
  tag: { default: "", help: "figures go to bench/out/overhead-<tag>.json instead of overhead.json" },
  seed: { default: 7, help: "workload seed" },
});

const runId = randomUUID().slice(0, 8);
const logDir = join(REPO_ROOT, ".cache/bench", `overhead-${runId}`);
const logger = createLogger({ service: "bench", level: "warn" });
const kafka: Kafka = createKafka({ KAFKA_BROKERS, KAFKA_SSL: false }, `bench-${runId}`, logger);
const random = rng(flags.seed);

// ---- resources of the phase in progress, for cleanup on any exit
type Resources = { processes: { stop: () => Promise<unknown> }[]; topics: string[]; groups: string[]; prefixes: string[]; closers: (() => Promise<unknown>)[] };
let current: Resources = newResources();
function newResources(): Resources {
  return { processes: [], topics: [], groups: [], prefixes: [], closers: [] };
}
async function release(r: Resources): Promise<void> {
  await Promise.all(r.processes.map((p) => p.stop()));
  for (const c of r.closers) await c().catch(() => undefined);
  await deleteTopicsAndGroups(kafka, r.topics, r.groups);
  for (const p of r.prefixes) await deleteRedisPrefix(p);
}
const budgetMs = (flags.timeout + 120) * (flags["n-large"] > 0 ? 4 : 3) * 1000;
const guardian = guard(budgetMs, () => release(current));

/** The local Redis and Kafka broker: their CPU is part of what a conversation costs. */
const portOf = (url: string, fallback: number) => Number(/:(\d+)(?:\/|$)/.exec(url)?.[1] ?? fallback);
const infra = {
  redis: pidListeningOn(portOf(REDIS_URL, 6379)),
  kafka: pidListeningOn(portOf(KAFKA_BROKERS.split(",")[0] ?? "", 9092)),
};

/** startService, with (under --profile) `--cpu-prof` into `<logDir>/prof-<name>`. */
function launch(service: "ingest" | "judge-worker", name: string, env: Record<string, string>): RunningService {
  const nodeArgs = flags.profile ? ["--cpu-prof", `--cpu-prof-dir=${join(logDir, `prof-${name}`)}`] : [];
  return startService({ service, name, env, logDir, nodeArgs });
}

/** A bench/lib/bare.ts child, ready once it prints "ready". */
async function startBare(name: string, mode: "bullmq" | "passthrough" | "model", env: Record<string, string>): Promise<{ child: ChildProcess; stop: () => Promise<unknown> }> {
  mkdirSync(logDir, { recursive: true });
  const log = createWriteStream(join(logDir, `${name}.log`), { flags: "a" });
  const child = spawn(join(REPO_ROOT, "node_modules/.bin/tsx"), [join(REPO_ROOT, "bench/lib/bare.ts"), mode], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, KAFKAJS_NO_PARTITIONER_WARNING: "1" },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  child.stderr?.pipe(log);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await Promise.race([exited, sleep(10_000).then(() => child.kill("SIGKILL"))]);
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready after 90 s; see ${logDir}`)), 90_000);
    child.stdout?.on("data", (d: Buffer) => {
      log.write(d);
      if (d.toString().includes("ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}; see ${logDir}`)));
  });
  return { child, stop };
}

type Phase = {
  name: string;
  kb: number;
  n: number;
  seconds: number;
  per_second: number;
  cpu_ms_per_conv: number;
  cpu_breakdown_ms_per_conv: Record<string, number>;
  bench_process_cpu_ms_per_conv: number;
  /** Share of the machine's CPU (all cores) busy during the measured part, and busy CPU ms per conversation. */
  machine_busy: number;
  machine_cpu_ms_per_conv: number;
  /** Redis + Kafka broker CPU ms per conversation. */
  infra_cpu_ms_per_conv: Record<string, number>;
  /** Machine busy share measured just before the phase (other work on the machine). */
  background_busy: number;
  profile?: { ingest: ProfileSummary; workers: ProfileSummary };
  notes?: string;
};

/** Warm-up, then the measured run: `feed(events)` starts the work, `done()` counts what is finished. */
async function measure(options: {
  name: string;
  kb: number;
  n: number;
  warmup: number;
  make: (i: number) => unknown;
  feed: (items: unknown[]) => Promise<void>;
  done: () => Promise<number>;
  cpuOf: Record<string, number[]>;
}): Promise<Phase> {
  const { name, n, warmup } = options;
  const warm = Array.from({ length: warmup }, (_, i) => options.make(i));
  const items = Array.from({ length: n }, (_, i) => options.make(warmup + i));
  if (warmup > 0) {
    await options.feed(warm);
    await waitForCount(`${name} warm-up`, warmup, options.done, 180_000, 50);
  }
  const background = await waitForQuiet(flags.quiet, 90_000);
  if (background >= flags.quiet) console.log(`  warning: the machine is ${fmt.pct(background)} busy before "${name}" (other work running): figures are disturbed`);
  const base = await options.done();
  const infra0 = Object.fromEntries(Object.entries(infra).map(([k, pids]) => [k, treeCpuMs(pids)]));
  const cpu0 = Object.fromEntries(Object.entries(options.cpuOf).map(([k, pids]) => [k, treeCpuMs(pids)]));
  const self0 = selfCpuMs();
  const machine0 = machineCpuMs();
  const t0 = performance.now();
  const fed = options.feed(items);
  const { at: t1 } = await waitForCount(name, base + n, options.done, flags.timeout * 1000, 50);
  await fed;
  const self1 = selfCpuMs();
  const machine1 = machineCpuMs();
  const infraUsed = Object.fromEntries(Object.entries(infra).map(([k, pids]) => [k, (treeCpuMs(pids) - (infra0[k] ?? 0)) / n]));
  const breakdown: Record<string, number> = {};
  let total = 0;
  for (const [k, pids] of Object.entries(options.cpuOf)) {
    const used = treeCpuMs(pids) - (cpu0[k] ?? 0);
    breakdown[k] = used / n;
    total += used;
  }
  const seconds = (t1 - t0) / 1000;
  const phase: Phase = {
    name,
    kb: options.kb,
    n,
    seconds,
    per_second: n / seconds,
    cpu_ms_per_conv: total / n,
    cpu_breakdown_ms_per_conv: breakdown,
    bench_process_cpu_ms_per_conv: (self1 - self0) / n,
    machine_busy: (machine1[0] - machine0[0]) / Math.max(1, machine1[1] - machine0[1]),
    machine_cpu_ms_per_conv: (machine1[0] - machine0[0]) / n,
    infra_cpu_ms_per_conv: infraUsed,
    background_busy: background,
  };
  console.log(
    `  ${name}: ${n} in ${seconds.toFixed(2)} s = ${phase.per_second.toFixed(0)}/s; CPU ${phase.cpu_ms_per_conv.toFixed(2)} ms/conv (${Object.entries(breakdown)
      .map(([k, v]) => `${k} ${v.toFixed(2)}`)
      .join(", ")}); bench process ${phase.bench_process_cpu_ms_per_conv.toFixed(2)} ms/conv; redis ${(infraUsed.redis ?? 0).toFixed(2)}, kafka ${(infraUsed.kafka ?? 0).toFixed(2)} ms/conv; machine ${fmt.pct(phase.machine_busy)} busy, ${phase.machine_cpu_ms_per_conv.toFixed(2)} ms/conv (${fmt.pct(background)} busy before)`,
  );
  return phase;
}

// ---------------------------------------------------------------------------------------------

async function fleetPhase(kb: number, n: number, warmup: number): Promise<Phase> {
  const id = `bench-${randomUUID().slice(0, 8)}`;
  const r = newResources();
  current = r;
  const topics = { input: `${id}-traces`, output: `${id}-judged`, dlq: `${id}-dlq` };
  r.topics.push(...Object.values(topics));
  r.groups.push(`${id}-ingest`);
  r.prefixes.push(id);
  await ensureTopics(kafka, [{ topic: topics.input, numPartitions: flags.partitions }, { topic: topics.output }, { topic: topics.dlq }]);
  const sim = createSimulator({ latencyMs: 0 });
  r.closers.push(() => sim.close());
  const { url: simUrl } = await sim.listen(0, "127.0.0.1");
  const common = {
    KAFKA_BROKERS,
    REDIS_URL,
    QUEUE_PREFIX: id,
    INPUT_TOPICS: topics.input,
    OUTPUT_TOPIC: topics.output,
    DEAD_LETTER_TOPIC: topics.dlq,
    LOG_LEVEL: "info",
    KAFKAJS_NO_PARTITIONER_WARNING: "1",
  };
  const ingestPort = await freePort();
  const ingest = launch("ingest", `ingest-${kb}kb`, {
    ...common,
    METRICS_PORT: String(ingestPort),
    CONSUMER_GROUP: `${id}-ingest`,
    INPUT_PARTITIONS: String(flags.partitions),
  });
  r.processes.push(ingest);
  const workers: RunningService[] = [];
  const ready = [waitForHttp(`http://127.0.0.1:${ingestPort}/readyz`, 90_000, ingest)];
  for (let i = 1; i <= flags.workers; i++) {
    const port = await freePort();
    const limits: Record<string, string> = flags.limiter === "adaptive" ? {} : { JUDGE_RPM: "100000000", JUDGE_PROMPT_TPM: "100000000000" };
    const w = launch("judge-worker", `judge-worker-${kb}kb-${i}`, {
      ...common,
      ...limits,
      FIREWORKS_API_KEY: "bench-key",
      JUDGE_BASE_URL: simUrl,
      JUDGE_CONCURRENCY: String(flags.concurrency),
      METRICS_PORT: String(port),
    });
    r.processes.push(w);
    workers.push(w);
    ready.push(waitForHttp(`http://127.0.0.1:${port}/readyz`, 90_000, w));
  }
  await Promise.all(ready);
  const admin = kafka.admin();
  await admin.connect();
  r.closers.unshift(() => admin.disconnect());
  // Give the ingest consumer time to join its group and get partitions.
  await sleep(3000);
  const phase = await measure({
    name: `fleet ${kb} KB`,
    kb,
    n,
    warmup,
    make: (i) => makeEvent(`${id}-e${i}`, random, kb * 1024),
    feed: (items) => produceAll(kafka, topics.input, items as { key: string; value: string }[]),
    done: async () => (await topicCounts(admin, [topics.output]))[0] ?? 0,
    cpuOf: { ingest: [ingest.child.pid ?? -1], workers: workers.map((w) => w.child.pid ?? -1) },
  });
  const [dlq = 0] = await topicCounts(admin, [topics.dlq]);
  const s = sim.stats();
  phase.notes = `${s.byStatus["200"]} model calls, ${dlq} dead letters`;
  current = newResources();
  await release(r);
  if (flags.profile) {
    const ingestProfile = summariseProfiles([join(logDir, `prof-ingest-${kb}kb`)]);
    const workers = summariseProfiles(Array.from({ length: flags.workers }, (_, i) => join(logDir, `prof-judge-worker-${kb}kb-${i + 1}`)));
    printProfile(`profile: ingest (${kb} KB)`, ingestProfile);
    printProfile(`profile: ${flags.workers} judge workers (${kb} KB)`, workers);
    phase.profile = { ingest: ingestProfile, workers };
  }
  return phase;
}

async function bullmqPhase(kb: number, n: number, warmup: number): Promise<Phase> {
  const id = `bench-${randomUUID().slice(0, 8)}`;
  const r = newResources();
  current = r;
  r.prefixes.push(id);
  const redis = createRedis(REDIS_URL, "producer");
  const queue = createJudgeQueue(redis, { QUEUE_PREFIX: id, JUDGE_QUEUE: "judge" });
  r.closers.push(
    () => queue.close(),
    () => redis.quit(),
  );
  const bare = [];
  for (let i = 1; i <= flags.workers; i++) {
    const b = await startBare(`bare-bullmq-${i}`, "bullmq", { REDIS_URL, QUEUE_PREFIX: id, CONCURRENCY: String(flags.concurrency) });
    r.processes.push(b);
    bare.push(b);
  }
  const phase = await measure({
    name: `bare BullMQ ${kb} KB`,
    kb,
    n,
    warmup,
    make: (i) => makeJudgeJob(makeConversation(`${id}-c${i}`, random, kb * 1024), i),
    // As ingest does: one addBulk per chunk of 200, chunk after chunk.
    feed: async (items) => {
      for (let i = 0; i < items.length; i += 200) await enqueueJudgeJobs(queue, items.slice(i, i + 200) as JudgeJob[]);
    },
    done: async () => (await queue.getJobCounts("completed")).completed ?? 0,
    cpuOf: { workers: bare.map((b) => b.child.pid ?? -1) },
  });
  phase.notes = "bench process does the addBulk";
  current = newResources();
  await release(r);
  return phase;
}

async function passthroughPhase(kb: number, n: number, warmup: number): Promise<Phase> {
  const id = `bench-${randomUUID().slice(0, 8)}`;
  const r = newResources();
  current = r;
  const topics = { input: `${id}-in`, output: `${id}-out` };
  r.topics.push(...Object.values(topics));
  r.groups.push(`${id}-pass`);
  await ensureTopics(kafka, [{ topic: topics.input, numPartitions: flags.partitions }, { topic: topics.output }]);
  const pass = await startBare("bare-passthrough", "passthrough", {
    KAFKA_BROKERS,
    GROUP: `${id}-pass`,
    INPUT_TOPIC: topics.input,
    OUTPUT_TOPIC: topics.output,
  });
  r.processes.push(pass);
  const admin = kafka.admin();
  await admin.connect();
  r.closers.unshift(() => admin.disconnect());
  const phase = await measure({
    name: `bare kafkajs ${kb} KB`,
    kb,
    n,
    warmup,
    make: (i) => makeEvent(`${id}-e${i}`, random, kb * 1024),
    feed: (items) => produceAll(kafka, topics.input, items as { key: string; value: string }[]),
    done: async () => (await topicCounts(admin, [topics.output]))[0] ?? 0,
    cpuOf: { passthrough: [pass.child.pid ?? -1] },
  });
  current = newResources();
  await release(r);
  return phase;
}

async function modelPhase(kb: number, n: number, warmup: number): Promise<Phase> {
  const r = newResources();
  current = r;
  // As in the fleet phase: the simulator runs in the bench process.
  const sim = createSimulator({ latencyMs: 0 });
  r.closers.push(() => sim.close());
  const { url: simUrl } = await sim.listen(0, "127.0.0.1");
  const callers: { child: ChildProcess; done: number }[] = [];
  for (let i = 1; i <= flags.workers; i++) {
    const b = await startBare(`bare-model-${i}`, "model", { JUDGE_BASE_URL: simUrl, CONCURRENCY: String(flags.concurrency), KB: String(kb), SEED: String(flags.seed + i) });
    r.processes.push(b);
    const caller = { child: b.child, done: 0 };
    b.child.on("message", (m: { done?: number }) => {
      if (typeof m.done === "number") caller.done = m.done;
    });
    callers.push(caller);
  }
  const phase = await measure({
    name: `bare model calls ${kb} KB`,
    kb,
    n,
    warmup,
    make: () => null,
    feed: async (items) => {
      callers.forEach((c, i) => {
        const share = Math.floor(items.length / callers.length) + (i < items.length % callers.length ? 1 : 0);
        c.child.send({ count: share });
      });
    },
    done: async () => callers.reduce((sum, c) => sum + c.done, 0),
    cpuOf: { callers: callers.map((c) => c.child.pid ?? -1) },
  });
  phase.notes = "judge client → simulator only: no queue, no Kafka, no limiter";
  current = newResources();
  await release(r);
  return phase;
}

// ---------------------------------------------------------------------------------------------

try {
  console.log(
    `overhead: run ${runId}: ${flags.workers} workers × ${flags.concurrency}, ${flags.partitions} partitions, simulator latency 0, limiter ${flags.limiter}; ` +
      `N=${flags.n} × ${flags.kb} KB${flags["n-large"] > 0 ? `, ${flags["n-large"]} × ${flags["large-kb"]} KB` : ""}; logs ${logDir}`,
  );
  const fleet = await fleetPhase(flags.kb, flags.n, flags.warmup);
  const bullmq = await bullmqPhase(flags.kb, flags.n, flags.warmup);
  const passthrough = await passthroughPhase(flags.kb, flags.n, flags.warmup);
  const model = await modelPhase(flags.kb, flags.n, flags.warmup);
  const large = flags["n-large"] > 0 ? await fleetPhase(flags["large-kb"], flags["n-large"], Math.ceil(flags.warmup / 5)) : null;

  const phases = [fleet, bullmq, passthrough, model, ...(large ? [large] : [])];
  // Each baseline saturates the machine doing one stage's work; a conversation needs all three
  // stages on the same cores, so their times per conversation add up: no fleet can beat this.
  const pipelineBound = 1 / (1 / bullmq.per_second + 1 / passthrough.per_second + 1 / model.per_second);
  const ratios = {
    fleet_vs_bare_bullmq: fleet.per_second / bullmq.per_second,
    fleet_vs_bare_kafkajs: fleet.per_second / passthrough.per_second,
    fleet_vs_bare_model_calls: fleet.per_second / model.per_second,
    pipeline_bound_per_second: pipelineBound,
    pipeline_bound_vs_bare_bullmq: pipelineBound / bullmq.per_second,
    fleet_vs_pipeline_bound: fleet.per_second / pipelineBound,
  };
  const figures = { run: runId, config: flags, phases, ratios, targets: { fleet_ge_50pct_of_bare_bullmq: ratios.fleet_vs_bare_bullmq >= 0.5 } };

  const headers = ["path", "N", "conv/s", "vs bare BullMQ", "CPU ms/conv", "CPU breakdown ms/conv", "bench proc ms/conv", "redis+kafka ms/conv", "machine busy", "machine ms/conv"];
  const rows = phases.map((p) => [
    p.name,
    String(p.n),
    p.per_second.toFixed(0),
    fmt.pct(p.per_second / bullmq.per_second),
    p.cpu_ms_per_conv.toFixed(2),
    Object.entries(p.cpu_breakdown_ms_per_conv)
      .map(([k, v]) => `${k} ${v.toFixed(2)}`)
      .join(", "),
    p.bench_process_cpu_ms_per_conv.toFixed(2),
    `${(p.infra_cpu_ms_per_conv.redis ?? 0).toFixed(2)}+${(p.infra_cpu_ms_per_conv.kafka ?? 0).toFixed(2)}`,
    fmt.pct(p.machine_busy),
    p.machine_cpu_ms_per_conv.toFixed(2),
  ]);
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const sep = `+${widths.map((w) => "-".repeat(w + 2)).join("+")}+`;
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 || i === 5 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(" | ")} |`;
  console.log(`\noverhead — instant model, ${flags.workers} workers × ${flags.concurrency} (run ${runId})`);
  console.log([sep, line(headers), sep, ...rows.map(line), sep].join("\n"));
  console.log(`fleet / bare BullMQ:  ${fmt.pct(ratios.fleet_vs_bare_bullmq)}   (target ≥ 50%)`);
  console.log(`fleet / bare kafkajs: ${fmt.pct(ratios.fleet_vs_bare_kafkajs)}`);
  console.log(`fleet / bare model calls: ${fmt.pct(ratios.fleet_vs_bare_model_calls)}`);
  console.log(
    `pipeline bound (BullMQ + kafkajs + model-call baselines' CPU added): ${pipelineBound.toFixed(0)}/s = ${fmt.pct(ratios.pipeline_bound_vs_bare_bullmq)} of bare BullMQ; the fleet reaches ${fmt.pct(ratios.fleet_vs_pipeline_bound)} of it`,
  );
  if (large) console.log(`CPU per conversation (ingest + workers): ${fleet.cpu_ms_per_conv.toFixed(2)} ms at ${flags.kb} KB, ${large.cpu_ms_per_conv.toFixed(2)} ms at ${flags["large-kb"]} KB`);
  for (const p of phases) if (p.notes) console.log(`note: ${p.name}: ${p.notes}`);
  console.log(`targets: ${figures.targets.fleet_ge_50pct_of_bare_bullmq ? "met" : "MISSED fleet_ge_50pct_of_bare_bullmq"}`);
  console.log(`figures: ${writeFigures(flags.tag ? `overhead-${flags.tag}` : "overhead", figures)}`);
} finally {
  await release(current);
  guardian.dispose();
}
process.exit(0);
