/**
 * Baselines for bench/overhead.ts, run as child processes like the fleet's services:
 *
 *   tsx bench/lib/bare.ts bullmq       a no-op BullMQ worker on the judge queue
 *                                      (env QUEUE_PREFIX, CONCURRENCY, REDIS_URL)
 *   tsx bench/lib/bare.ts passthrough  a kafkajs consumer group copying INPUT_TOPIC to OUTPUT_TOPIC
 *                                      (env KAFKA_BROKERS, GROUP, INPUT_TOPIC, OUTPUT_TOPIC)
 *   tsx bench/lib/bare.ts model        the worker's judge client calling the model, nothing else
 *                                      (env JUDGE_BASE_URL, CONCURRENCY, KB, SEED); over IPC it
 *                                      takes {count} (conversations to judge) and reports {done}
 *
 * Prints "ready" once it is consuming; SIGTERM stops it.
 */
import { createJudgeClient } from "@tracesift/judge";
import { createIdempotentProducer, createKafka } from "@tracesift/kafka";
import { createRedis } from "@tracesift/queue";
import { createLogger } from "@tracesift/runtime";
import { Worker } from "bullmq";
import { makeConversation, rng } from "./common.ts";

const mode = process.argv[2];
const logger = createLogger({ service: `bare-${mode}`, level: "warn" });
const stops: (() => Promise<unknown>)[] = [];
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  for (const s of stops.reverse()) await s().catch(() => undefined);
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());

if (mode === "bullmq") {
  const connection = createRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", "worker");
  const worker = new Worker("judge", async () => undefined, {
    connection,
    prefix: process.env.QUEUE_PREFIX ?? "bench",
    concurrency: Number(process.env.CONCURRENCY ?? 16),
  });
  stops.push(() => connection.quit(), () => worker.close());
  await worker.waitUntilReady();
  console.log("ready");
} else if (mode === "passthrough") {
  const kafka = createKafka({ KAFKA_BROKERS: process.env.KAFKA_BROKERS ?? "127.0.0.1:9092", KAFKA_SSL: false }, "bench-passthrough", logger);
  const producer = createIdempotentProducer(kafka);
  await producer.connect();
  const consumer = kafka.consumer({ groupId: process.env.GROUP ?? "bench-passthrough", maxBytesPerPartition: 10 * 1024 * 1024 });
  await consumer.connect();
  stops.push(() => producer.disconnect(), () => consumer.disconnect());
  const output = process.env.OUTPUT_TOPIC ?? "";
  consumer.on(consumer.events.GROUP_JOIN, () => console.log("ready"));
  await consumer.subscribe({ topics: [process.env.INPUT_TOPIC ?? ""], fromBeginning: true });
  await consumer.run({
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary }) => {
      // Same shape as ingest: chunks of 200, produced with acks=all before the offsets advance.
      for (let i = 0; i < batch.messages.length; i += 200) {
        const chunk = batch.messages.slice(i, i + 200);
        await producer.send({ topic: output, acks: -1, messages: chunk.map((m) => ({ key: m.key, value: m.value })) });
        const last = chunk.at(-1);
        if (last) resolveOffset(last.offset);
        await commitOffsetsIfNecessary();
        await heartbeat();
      }
    },
  });
} else if (mode === "model") {
  // The same client, prompt and HTTP stack as a judge worker, at the same concurrency.
  const client = createJudgeClient({
    baseURL: process.env.JUDGE_BASE_URL ?? "",
    apiKey: "bench-key",
    model: "accounts/fireworks/models/qwen3p5-35b-a3b",
    timeoutMs: 30_000,
    maxTokens: 256,
    responseFormat: "json_schema",
  });
  const random = rng(Number(process.env.SEED ?? 7));
  const bytes = Number(process.env.KB ?? 5) * 1024;
  // Made before "ready", so the measurement holds the calls only (the fleet's events are made
  // by the bench before its clock starts, too).
  const pool = Array.from({ length: 1000 }, (_, i) => makeConversation(`m${i}`, random, bytes));
  const concurrency = Number(process.env.CONCURRENCY ?? 16);
  let queued = 0;
  let done = 0;
  let running = 0;
  const report = () => process.send?.({ done });
  const pump = () => {
    while (running < concurrency && queued > 0) {
      queued--;
      running++;
      void client
        .judge(pool[(done + running) % pool.length] ?? { messages: [] })
        .then(
          () => done++,
          (err: unknown) => console.error(err),
        )
        .finally(() => {
          running--;
          if (queued === 0 && running === 0) report();
          pump();
        });
    }
  };
  const timer = setInterval(report, 50);
  stops.push(async () => clearInterval(timer));
  process.on("message", (m: { count?: number }) => {
    queued += m.count ?? 0;
    pump();
  });
  console.log("ready");
} else {
  console.error("usage: bare.ts bullmq|passthrough|model");
  process.exit(2);
}
