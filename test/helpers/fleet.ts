/**
 * A real fleet for integration tests: ingest and judge workers as child processes on the real
 * Kafka broker and Redis, an in-process simulator, and a reader of the output and dead-letter
 * topics. Every fleet gets its own topics, consumer group and queue prefix.
 */
import { randomUUID } from "node:crypto";
import { freePort, type RunningService, startService, waitForHttp, REPO_ROOT } from "../../services/cli/src/fleet.ts";

export { freePort };
import { createSimulator } from "@tracesift/fireworks-sim";
import { createKafka, ensureTopics, type Kafka, type Consumer } from "@tracesift/kafka";
import { createLogger } from "@tracesift/runtime";
import { DeadLetter, JudgeResult } from "@tracesift/schemas";
import { Redis } from "ioredis";
import { join } from "node:path";

export const KAFKA_BROKERS = process.env.KAFKA_BROKERS ?? "127.0.0.1:9092";
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

export type Record =
  | { topic: "output"; key: string | null; result: JudgeResult }
  | { topic: "dlq"; key: string | null; letter: DeadLetter };


export type TestFleet = Awaited<ReturnType<typeof startTestFleet>>;

export async function startTestFleet(options: {
  workers?: number;
  workerEnv?: { [k: string]: string };
  ingestEnv?: { [k: string]: string };
  sim?: Parameters<typeof createSimulator>[0];
  partitions?: number;
  /** Also run the queue collector (fleet-wide queue gauges), e.g. `{ COLLECT_INTERVAL_MS: "500" }`. */
  collector?: boolean | { [k: string]: string };
} = {}) {
  const id = randomUUID().slice(0, 8);
  const topics = { input: `t-${id}-traces`, output: `t-${id}-judged`, dlq: `t-${id}-dlq` };
  const logger = createLogger({ service: "test", level: "warn" });
  const kafka = createKafka({ KAFKA_BROKERS, KAFKA_SSL: false }, `test-${id}`, logger);
  await ensureTopics(kafka, [
    { topic: topics.input, numPartitions: options.partitions ?? 3 },
    { topic: topics.output },
    { topic: topics.dlq },
  ]);

  const sim = createSimulator({ latencyMs: 20, ...options.sim });
  const { url: simUrl } = await sim.listen(0, "127.0.0.1");
  const logDir = join(REPO_ROOT, ".cache/test-logs", id);
  const queuePrefix = `test-${id}`;
  const common = {
    KAFKA_BROKERS,
    REDIS_URL,
    QUEUE_PREFIX: queuePrefix,
    INPUT_TOPICS: topics.input,
    OUTPUT_TOPIC: topics.output,
    DEAD_LETTER_TOPIC: topics.dlq,
    LOG_LEVEL: "info",
    KAFKAJS_NO_PARTITIONER_WARNING: "1",
  };
  const services: RunningService[] = [];
  let workerCount = 0;
  /** Every service's /metrics port, for a Prometheus scraping the fleet. */
  const metricsPorts: { ingest: number; workers: number[]; collector?: number } = { ingest: 0, workers: [] };

  async function startWorker(extra: { [k: string]: string } = {}): Promise<RunningService> {
    const port = await freePort();
    metricsPorts.workers.push(port);
    workerCount++;
    const worker = startService({
      service: "judge-worker",
      name: `judge-worker-${workerCount}`,
      env: {
        ...common,
        FIREWORKS_API_KEY: "test-key",
        JUDGE_BASE_URL: simUrl,
        JUDGE_CONCURRENCY: "8",
        METRICS_PORT: String(port),
        ...options.workerEnv,
        ...extra,
      },
      logDir,
    });
    services.push(worker);
    await waitForHttp(`http://127.0.0.1:${port}/readyz`, 60_000, worker);
    return worker;
  }

  const ingestPort = await freePort();
  metricsPorts.ingest = ingestPort;
  const ingest = startService({
    service: "ingest",
    env: { ...common, METRICS_PORT: String(ingestPort), CONSUMER_GROUP: `test-${id}-ingest`, ...options.ingestEnv },
    logDir,
  });
  services.push(ingest);
  const ready = [waitForHttp(`http://127.0.0.1:${ingestPort}/readyz`, 60_000, ingest)];
  if (options.collector) {
    const collectorPort = await freePort();
    metricsPorts.collector = collectorPort;
    const collector = startService({
      service: "collector",
      env: {
        REDIS_URL,
        QUEUE_PREFIX: queuePrefix,
        LOG_LEVEL: "info",
        METRICS_PORT: String(collectorPort),
        COLLECT_INTERVAL_MS: "1000",
        ...(typeof options.collector === "object" ? options.collector : {}),
      },
      logDir,
    });
    services.push(collector);
    ready.push(waitForHttp(`http://127.0.0.1:${collectorPort}/readyz`, 60_000, collector));
  }
  const workers = await Promise.all([...Array(options.workers ?? 2)].map(() => startWorker()));
  await Promise.all(ready);

  // Continuous reader of everything the fleet writes.
  const records: Record[] = [];
  const reader: Consumer = kafka.consumer({ groupId: `test-${id}-reader`, maxWaitTimeInMs: 100 });
  await reader.connect();
  await reader.subscribe({ topics: [topics.output, topics.dlq], fromBeginning: true });
  await reader.run({
    eachMessage: async ({ topic, message }) => {
      const key = message.key?.toString("utf8") ?? null;
      const value = JSON.parse(message.value?.toString("utf8") ?? "null");
      if (topic === topics.output) records.push({ topic: "output", key, result: JudgeResult.parse(value) });
      else records.push({ topic: "dlq", key, letter: DeadLetter.parse(value) });
    },
  });

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();

  return {
    id,
    topics,
    kafka: kafka as Kafka,
    sim,
    simUrl,
    ingest,
    workers,
    records,
    queuePrefix,
    startWorker,
    ingestMetricsUrl: `http://127.0.0.1:${ingestPort}/metrics`,
    metricsPorts,
    async produce(events: { key: string; value: string }[]): Promise<void> {
      await producer.send({ topic: topics.input, acks: -1, messages: events });
    },
    /** Keys present on the output or dead-letter topic, with how many records each has. */
    countsByKey(): Map<string, number> {
      const m = new Map<string, number>();
      for (const r of records) if (r.key) m.set(r.key, (m.get(r.key) ?? 0) + 1);
      return m;
    },
    async stop(): Promise<void> {
      await Promise.all(services.map((s) => s.stop()));
      await producer.disconnect();
      await reader.disconnect();
      await sim.close();
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => undefined);
      await admin.deleteGroups([`test-${id}-ingest`, `test-${id}-reader`]).catch(() => undefined);
      await admin.disconnect();
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`${queuePrefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    },
  };
}

export function openaiEvent(id: string, turns: [role: string, content: string][], metadata: { [k: string]: string } = {}) {
  return {
    key: id,
    value: JSON.stringify({ id, metadata, messages: turns.map(([role, content]) => ({ role, content })) }),
  };
}
