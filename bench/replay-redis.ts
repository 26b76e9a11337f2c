/**
 * Redis memory of a backfill: replays N conversations with `tracesift replay --no-wait` (no
 * workers, so the jobs stay queued and can be measured) and reports, per conversation, the peak of
 * the replay's assembly buffer, what is left of it afterwards, the queued job, and a result-index
 * entry — the figures behind "Redis memory a backfill of N conversations needs" in the README.
 *
 *   pnpm exec tsx bench/replay-redis.ts [-- --n 3000 --kb 2]
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { createKafka, ensureTopics } from "@tracesift/kafka";
import { createLogger } from "@tracesift/runtime";
import { Redis } from "ioredis";
import {
  deleteRedisPrefix,
  deleteTopicsAndGroups,
  fmt,
  KAFKA_BROKERS,
  makeEvent,
  parseFlags,
  printTable,
  produceAll,
  REDIS_URL,
  REPO_ROOT,
  rng,
  writeFigures,
} from "./lib/common.ts";

const flags = parseFlags("replay-redis", {
  n: { default: 3000, help: "conversations replayed" },
  kb: { default: 2, help: "size of each conversation in KB" },
});

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, found] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    keys.push(...found);
  } while (cursor !== "0");
  return keys;
}

/** MEMORY USAGE summed over the keys (sampled beyond 500 keys and scaled up). */
async function bytesOf(redis: Redis, keys: string[]): Promise<number> {
  const sample = keys.length > 500 ? keys.filter((_, i) => i % Math.ceil(keys.length / 500) === 0) : keys;
  const pipeline = redis.pipeline();
  for (const k of sample) pipeline.memory("USAGE", k, "SAMPLES", "0");
  const sizes = ((await pipeline.exec()) ?? []).map(([, n]) => (typeof n === "number" ? n : 0));
  const total = sizes.reduce((a, b) => a + b, 0);
  return sample.length === 0 ? 0 : (total / sample.length) * keys.length;
}

const id = randomUUID().slice(0, 8);
const topic = `bench-${id}-history`;
const prefix = `bench-${id}`;
const name = `bench-${id}`;
const kafka = createKafka({ KAFKA_BROKERS, KAFKA_SSL: false }, `bench-${id}`, createLogger({ service: "bench", level: "error" }));
const redis = new Redis(REDIS_URL);
try {
  await ensureTopics(kafka, [{ topic, numPartitions: 3 }]);
  const random = rng(42);
  const events = Array.from({ length: flags.n }, (_, i) => makeEvent(`replay-redis-${id}-${i}`, random, flags.kb * 1024));
  await produceAll(kafka, topic, events);

  const child = spawn(
    join(REPO_ROOT, "node_modules/.bin/tsx"),
    [join(REPO_ROOT, "services/cli/src/main.ts"), "replay", "--topic", topic, "--from", "0:0,1:0,2:0", "--no-wait", "--name", name, "--metrics-port", "0"],
    { cwd: REPO_ROOT, env: { ...process.env, QUEUE_PREFIX: prefix, LOG_LEVEL: "warn", OUTPUT_TOPIC: `${topic}-out`, DEAD_LETTER_TOPIC: `${topic}-dlq` }, stdio: ["ignore", "pipe", "inherit"] },
  );
  let stdout = "";
  child.stdout?.on("data", (d) => {
    stdout += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  let running = true;
  void exited.then(() => {
    running = false;
  });
  // The buffer peaks when the whole range is read, just before the conversations are emitted.
  let peak = { keys: 0, bytes: 0 };
  while (running) {
    const keys = await scanKeys(redis, `${prefix}:replay:*`);
    if (keys.length > peak.keys) peak = { keys: keys.length, bytes: await bytesOf(redis, keys) };
    await new Promise((r) => setTimeout(r, 200));
  }
  const code = await exited;
  if (code !== 0) throw new Error(`replay exited ${code}:\n${stdout}`);
  const left = await scanKeys(redis, `${prefix}:replay:*`);
  const queueKeys = (await scanKeys(redis, `${prefix}:*`)).filter((k) => !k.startsWith(`${prefix}:replay:`));
  const queueBytes = await bytesOf(redis, queueKeys);
  // One result-index entry is the result as serialized for the output topic (~1 KB), kept 90 days.
  const sample = JSON.stringify({
    schema_version: 1,
    result_id: `conv-42:3:9f2c0d1e2f3a4b5c:accounts/fireworks/models/qwen3p5-35b-a3b:pe-2026-11-v1`,
    status: "judged",
    conversation_id: "conv-42-xxxxxxxxxxxxxxxx",
    conversation_version: { message_count: 3, content_hash: "9f2c0d1e2f3a4b5c" },
    verdict: { perceived_error: true, reason: "The user corrects the day of the meeting the assistant booked." },
    judge: { model: "accounts/fireworks/models/qwen3p5-35b-a3b", prompt_version: "pe-2026-11-v1" },
    usage: { prompt_tokens: 412, cached_prompt_tokens: 300, completion_tokens: 21, total_tokens: 433 },
    cost_usd: 0.000152,
    latency_ms: 180,
    queue_wait_ms: 12,
    attempts: 1,
    judged_at: "2026-11-28T10:00:00.000Z",
    metadata: { app: "calendar-agent" },
    priority: "backfill",
    source: { topic: "traces", partition: 0, offset: "17", event_time: "2026-11-28T09:59:59.812Z" },
  });
  await redis.set(`${prefix}:result:sample`, sample);
  const resultBytes = await bytesOf(redis, [`${prefix}:result:sample`]);

  const n = flags.n;
  const perConv = { buffer: peak.bytes / n, job: queueBytes / n, result: resultBytes };
  const figures = {
    conversations: n,
    conversation_kb: flags.kb,
    buffer_peak_keys: peak.keys,
    buffer_peak_bytes_per_conversation: Math.round(perConv.buffer),
    buffer_keys_left_after_replay: left.length,
    queued_job_bytes_per_conversation: Math.round(perConv.job),
    result_index_bytes_per_conversation: Math.round(perConv.result),
    peak_bytes_per_conversation: Math.round(perConv.buffer + perConv.job),
    after_bytes_per_conversation: Math.round(perConv.job + perConv.result),
  };
  printTable(`Redis memory of a replay of ${n} conversations of ${flags.kb} KB`, [
    ["assembly buffer at its peak", `${peak.keys} keys`, `${fmt.n(peak.bytes / 2 ** 20, 1)} MiB, ${fmt.n(perConv.buffer)} B per conversation`],
    ["buffer keys left after the replay", String(left.length), "dropped when the range is complete"],
    ["queued judge jobs", `${queueKeys.length} keys`, `${fmt.n(perConv.job)} B per conversation (completed jobs kept 24 h)`],
    ["result index entry", `${fmt.n(perConv.result)} B`, "per judged conversation, kept 90 days"],
    ["peak during the replay", `${fmt.n(perConv.buffer + perConv.job)} B`, "per conversation: buffer + queued job"],
    ["after the replay is judged", `${fmt.n(perConv.job + perConv.result)} B`, "per conversation: finished job (24 h) + result index"],
  ]);
  console.log(`wrote ${writeFigures("replay-redis", figures)}`);
} finally {
  await deleteTopicsAndGroups(kafka, [topic], [`tracesift-replay-${name}`]);
  await deleteRedisPrefix(prefix);
  await redis.quit();
}
