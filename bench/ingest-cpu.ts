/**
 * Ingest alone: CPU ms per event and events/s of ONE ingest process (Kafka → normalize → BullMQ)
 * against the local Kafka and Redis, with no judge worker draining the queue.
 *
 *   node_modules/.bin/tsx bench/ingest-cpu.ts [--n 5000 --kb 5 --mode backlog|live --profile ...]
 *
 * `backlog` (default): warm-up and measured events are all on the topic before ingest starts, so
 * ingest reads a backlog in full fetches and nothing else on the machine works for it meanwhile;
 * the measurement starts once the warm-up events are in the queue and ends when every event is.
 * `live`: ingest starts on an empty topic; the warm-up is produced and drained first, then the
 * measured events are produced while ingest consumes them (as in bench/overhead.ts).
 *
 * Done means the judge queue holds that many jobs (waiting + prioritized: nothing consumes them).
 * The machine's other work moves the figure by ±15%: compare with `--n 20000 --rounds 3` medians.
 * CPU is the ingest process tree's utime + stime from /proc between the two points. Under
 * `--profile` ingest runs with `--cpu-prof`, and the summary covers only the measured window.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createKafka, ensureTopics, type Kafka } from "@tracesift/kafka";
import { createJudgeQueue, createRedis } from "@tracesift/queue";
import { createLogger } from "@tracesift/runtime";
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
  makeEvent,
  parseFlags,
  produceAll,
  REDIS_URL,
  scrapeSum,
  REPO_ROOT,
  rng,
  sleep,
  topicCounts,
  treeCpuMs,
  waitForQuiet,
  writeFigures,
} from "./lib/common.ts";
import { printProfile, summariseProfiles } from "./lib/profile.ts";

const flags = parseFlags("ingest-cpu", {
  n: { default: 5000, help: "measured events" },
  kb: { default: 5, help: "size of each event's conversation (KB of message text)" },
  warmup: { default: 5000, help: "events before the measurement (not counted): JIT compilation and the first GCs take thousands" },
  partitions: { default: 3, help: "input topic partitions (INPUT_PARTITIONS)" },
  mode: { default: "backlog", help: "backlog (events on the topic before ingest starts) or live (produced while ingest consumes)" },
  quiet: { default: 0.25, help: "before measuring (backlog: before ingest starts), wait (≤ 60 s) for the machine to be less busy than this share" },
  rounds: { default: 1, help: "measurements, each with a fresh ingest process and topics (medians are printed)" },
  profile: { default: false, help: "run ingest under --cpu-prof and print where its CPU goes in the measured window" },
  env: { default: "", help: "extra ingest environment, e.g. CHUNK_SIZE=500,FOO=bar" },
  "node-args": { default: "", help: "extra Node flags for ingest, space-separated, e.g. --max-semi-space-size=32" },
  timeout: { default: 300, help: "seconds the measured part may take" },
  tag: { default: "", help: "figures go to bench/out/ingest-cpu-<tag>.json instead of ingest-cpu.json" },
  seed: { default: 7, help: "workload seed" },
});
if (flags.mode !== "backlog" && flags.mode !== "live") throw new Error(`--mode must be backlog or live, not ${flags.mode}`);

const runId = randomUUID().slice(0, 8);
const logDir = join(REPO_ROOT, ".cache/bench", `ingest-cpu-${runId}`);
const logger = createLogger({ service: "bench", level: "warn" });
const kafka: Kafka = createKafka({ KAFKA_BROKERS, KAFKA_SSL: false }, `bench-${runId}`, logger);
const extraEnv: Record<string, string> = Object.fromEntries(
  flags.env
    .split(",")
    .map((kv) => kv.trim())
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
);

/** What the round in progress holds, for cleanup on any exit. */
type Round = { id: string; topics: string[]; closers: (() => Promise<unknown>)[]; ingest?: RunningService };
let current: Round | undefined;
async function release(r: Round | undefined): Promise<void> {
  if (!r) return;
  await r.ingest?.stop();
  for (const c of r.closers.splice(0).reverse()) await c().catch(() => undefined);
  await deleteTopicsAndGroups(kafka, r.topics, [`${r.id}-ingest`]);
  await deleteRedisPrefix(r.id);
}
const guardian = guard((flags.timeout + 300) * 1000 * flags.rounds, () => release(current));
// An error outside the awaited flow (e.g. a child's log stream) still removes the round's topics and keys.
process.once("uncaughtException", (err) => {
  console.error(err);
  void release(current).finally(() => process.exit(1));
});

/** Monotonic µs, on the clock V8 CPU profiles use (CLOCK_MONOTONIC). */
const monoUs = () => Number(process.hrtime.bigint() / 1000n);

type Figures = {
  round: number;
  measured_events: number;
  seconds: number;
  events_per_second: number;
  ingest_cpu_ms_per_event: number;
  /** Ingest CPU over the measured wall time (1 = one core busy). */
  ingest_cpu_busy: number;
  /** Share of the machine busy before (backlog: before ingest started) and during the measurement. */
  machine_busy_before: number;
  machine_busy_during: number;
  messages_per_chunk: number | null;
  output_records: number;
  dead_letters: number;
  warnings_logged: number;
};

async function round(index: number): Promise<Figures> {
  const id = `bench-${runId}-${index}`;
  const topics = { input: `${id}-traces`, output: `${id}-judged`, dlq: `${id}-dlq` };
  const r: Round = { id, topics: Object.values(topics), closers: [] };
  current = r;
  const profDir = join(logDir, `prof-ingest-${index}`);
  await ensureTopics(kafka, [{ topic: topics.input, numPartitions: flags.partitions }, { topic: topics.output }, { topic: topics.dlq }]);
  const redis = createRedis(REDIS_URL, "producer");
  r.closers.push(() => redis.quit());
  const queue = createJudgeQueue(redis, { QUEUE_PREFIX: id, JUDGE_QUEUE: "judge" });
  r.closers.push(() => queue.close());
  const admin = kafka.admin();
  await admin.connect();
  r.closers.push(() => admin.disconnect());
  const jobs = async () => {
    const c = await queue.getJobCounts("waiting", "prioritized", "active", "completed", "failed", "delayed");
    return Object.values(c).reduce((a, b) => a + b, 0);
  };

  // The same seed every round: rounds (and runs) read the same conversations.
  const random = rng(flags.seed);
  const warm = Array.from({ length: flags.warmup }, (_, i) => makeEvent(`${id}-e${i}`, random, flags.kb * 1024));
  const measured = Array.from({ length: flags.n }, (_, i) => makeEvent(`${id}-e${flags.warmup + i}`, random, flags.kb * 1024));
  let before = 0;
  if (flags.mode === "backlog") {
    await produceAll(kafka, topics.input, [...warm, ...measured]);
    before = await waitForQuiet(flags.quiet, 60_000);
  }

  const port = await freePort();
  const ingest = startService({
    service: "ingest",
    name: `ingest-${index}`,
    logDir,
    nodeArgs: [...(flags.profile ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : []), ...flags["node-args"].split(" ").filter(Boolean)],
    env: {
      KAFKA_BROKERS,
      REDIS_URL,
      QUEUE_PREFIX: id,
      INPUT_TOPICS: topics.input,
      OUTPUT_TOPIC: topics.output,
      DEAD_LETTER_TOPIC: topics.dlq,
      CONSUMER_GROUP: `${id}-ingest`,
      INPUT_PARTITIONS: String(flags.partitions),
      METRICS_PORT: String(port),
      LOG_LEVEL: "info",
      KAFKAJS_NO_PARTITIONER_WARNING: "1",
      ...extraEnv,
    },
  });
  r.ingest = ingest;
  const pids = [ingest.child.pid ?? -1];
  await waitForHttp(`http://127.0.0.1:${port}/readyz`, 90_000, ingest);

  let c0: { count: number; at: number };
  if (flags.mode === "backlog") {
    // Measures from the first poll past the warm-up; what is done by then is not counted.
    c0 = await waitForCount("warm-up", Math.max(1, flags.warmup), jobs, 180_000);
  } else {
    await sleep(3000); // the consumer joins its group
    if (warm.length > 0) {
      await produceAll(kafka, topics.input, warm);
      await waitForCount("warm-up", warm.length, jobs, 180_000);
    }
    before = await waitForQuiet(flags.quiet, 60_000);
    c0 = { count: await jobs(), at: performance.now() };
  }
  const cpu0 = treeCpuMs(pids);
  const machine0 = machineCpuMs();
  const mono0 = monoUs();
  const fed = flags.mode === "live" ? produceAll(kafka, topics.input, measured) : Promise.resolve();
  const c1 = await waitForCount("measured", flags.warmup + flags.n, jobs, flags.timeout * 1000);
  const cpu1 = treeCpuMs(pids);
  const machine1 = machineCpuMs();
  const mono1 = monoUs();
  await fed;
  const done = c1.count - c0.count;
  const seconds = (c1.at - c0.at) / 1000;
  const [outputs = 0, dlq = 0] = await topicCounts(admin, [topics.output, topics.dlq]);
  // Over the whole round (warm-up included): messages per handled chunk.
  const chunks = await scrapeSum([`http://127.0.0.1:${port}/metrics`], "tracesift_ingest_batch_size_messages");
  let logged = 0;
  try {
    logged = readFileSync(ingest.logFile, "utf8")
      .split("\n")
      .filter((l) => /"level":(40|50|60)/.test(l)).length;
  } catch {
    // no log
  }
  const f: Figures = {
    round: index,
    measured_events: done,
    seconds,
    events_per_second: done / seconds,
    ingest_cpu_ms_per_event: (cpu1 - cpu0) / done,
    ingest_cpu_busy: (cpu1 - cpu0) / (seconds * 1000),
    machine_busy_before: before,
    machine_busy_during: (machine1[0] - machine0[0]) / Math.max(1, machine1[1] - machine0[1]),
    messages_per_chunk: chunks.count > 0 ? chunks.sum / chunks.count : null,
    output_records: outputs,
    dead_letters: dlq,
    warnings_logged: logged,
  };
  console.log(
    `  round ${index}: ${done} events in ${seconds.toFixed(2)} s = ${f.events_per_second.toFixed(0)} events/s; ` +
      `ingest CPU ${f.ingest_cpu_ms_per_event.toFixed(3)} ms/event (${fmt.pct(f.ingest_cpu_busy)} of a core); ` +
      `${fmt.n(f.messages_per_chunk, 1)} messages/chunk; machine ${fmt.pct(before)} busy before, ${fmt.pct(f.machine_busy_during)} during; ` +
      `${outputs} output records, ${dlq} dead letters, ${logged} warnings logged`,
  );
  if (before >= flags.quiet) console.log(`  warning: the machine was ${fmt.pct(before)} busy before round ${index} (other work running): figures are disturbed`);
  current = undefined;
  await release(r);
  // Written when ingest exited.
  if (flags.profile) printProfile("profile of ingest", summariseProfiles([profDir], { window: { fromUs: mono0, toUs: mono1 }, inclusive: true }));
  return f;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};

try {
  const sample = makeEvent("sample", rng(flags.seed), flags.kb * 1024);
  console.log(
    `ingest-cpu: run ${runId}, ${flags.mode}, ${flags.rounds} round(s) of ${flags.warmup} warm-up + ${flags.n} measured events of ~${sample.value.length} B, ` +
      `${flags.partitions} partitions${flags.env ? `, env ${flags.env}` : ""}${flags["node-args"] ? `, node ${flags["node-args"]}` : ""}; logs ${logDir}`,
  );
  const rounds: Figures[] = [];
  for (let i = 1; i <= flags.rounds; i++) rounds.push(await round(i));
  const summary = {
    ingest_cpu_ms_per_event: median(rounds.map((r) => r.ingest_cpu_ms_per_event)),
    ingest_cpu_ms_per_event_min: Math.min(...rounds.map((r) => r.ingest_cpu_ms_per_event)),
    events_per_second: median(rounds.map((r) => r.events_per_second)),
  };
  console.log(
    `\ningest: ${summary.events_per_second.toFixed(0)} events/s, CPU ${summary.ingest_cpu_ms_per_event.toFixed(3)} ms/event` +
      `${flags.rounds > 1 ? ` (medians of ${flags.rounds} rounds; CPU min ${summary.ingest_cpu_ms_per_event_min.toFixed(3)})` : ""}`,
  );
  const file = writeFigures(flags.tag ? `ingest-cpu-${flags.tag}` : "ingest-cpu", { run: runId, config: flags, event_bytes: sample.value.length, summary, rounds });
  console.log(`figures: ${file}`);
} finally {
  await release(current);
  guardian.dispose();
}
process.exit(0);
