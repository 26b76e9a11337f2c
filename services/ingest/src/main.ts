import { BatchingProducer, createIdempotentProducer, createKafka, ensureTopics, kafkaReadiness, runAtLeastOnce } from "@tracesift/kafka";
import { ingestMetrics, initIngestSeries } from "@tracesift/metrics";
import { ConversationAssembler } from "@tracesift/assembly";
import { handleChunk, limitsFromEnv, type PipelineOptions, selectionFromEnv, startIdleSweep } from "@tracesift/pipeline";
import { createJudgeQueue, createRedis, redisReadiness } from "@tracesift/queue";
import { createLogger, createRegistry, parseEnv, redactConfig, Shutdown, startOpsServer } from "@tracesift/runtime";
import { IngestEnv } from "./config.ts";

const env = parseEnv(IngestEnv);
const logger = createLogger({ service: "ingest", level: env.LOG_LEVEL });
logger.info({ config: redactConfig(env) }, "starting");

const shutdown = new Shutdown(logger, env.DRAIN_DEADLINE_MS);
shutdown.onSignals();

const registry = createRegistry("ingest");
const metrics = ingestMetrics(registry);
initIngestSeries(metrics, env.INPUT_TOPICS, "live");

const kafka = createKafka(env, "tracesift-ingest", logger);
await ensureTopics(kafka, [
  ...env.INPUT_TOPICS.map((topic) => ({ topic, numPartitions: env.INPUT_PARTITIONS })),
  { topic: env.OUTPUT_TOPIC },
  { topic: env.DEAD_LETTER_TOPIC },
]);

const redis = createRedis(env.REDIS_URL, "producer");
shutdown.add("redis", async () => {
  await redis.quit();
});
const queue = createJudgeQueue(redis, env);
shutdown.add("queue", () => queue.close());

const kafkaProducer = createIdempotentProducer(kafka);
await kafkaProducer.connect();
shutdown.add("kafka producer", () => kafkaProducer.disconnect());
const producer = new BatchingProducer(kafkaProducer);

const assembler = new ConversationAssembler({
  redis,
  prefix: `${env.QUEUE_PREFIX}:assembly`,
  idleMs: env.IDLE_WINDOW_MS,
  mode: env.ASSEMBLY_MODE,
});
const pipeline: PipelineOptions = {
  queue,
  producer,
  assembler,
  metrics,
  outputTopic: env.OUTPUT_TOPIC,
  deadLetterTopic: env.DEAD_LETTER_TOPIC,
  maxEventBytes: env.MAX_EVENT_BYTES,
  maxAttempts: env.JUDGE_MAX_ATTEMPTS,
  priority: "live",
  replay: "live",
  topicFormats: env.TOPIC_FORMATS,
  immediateFormats: new Set(env.IMMEDIATE_FORMATS),
  selection: selectionFromEnv(env),
  limits: limitsFromEnv(env),
};
const sweep = startIdleSweep(pipeline, env.SWEEP_INTERVAL_MS, (err) => logger.error({ err }, "idle sweep failed"));
shutdown.add("idle sweep", () => sweep.stop());

const consumer = kafka.consumer({
  groupId: env.CONSUMER_GROUP,
  // Must exceed the largest accepted event or the partition stalls on it.
  maxBytesPerPartition: Math.max(env.MAX_EVENT_BYTES * 2, 10 * 1024 * 1024),
  maxBytes: Math.max(env.MAX_EVENT_BYTES * 4, 50 * 1024 * 1024),
});
await consumer.connect();
// After a rebalance this replica may own other partitions: drop lag it can no longer update.
consumer.on(consumer.events.GROUP_JOIN, () => metrics.consumerLag.reset());
// Closed first: stop fetching, finish the chunk in hand, commit, leave the group.
shutdown.add("kafka consumer", () => consumer.disconnect());

await runAtLeastOnce({
  consumer,
  topics: env.INPUT_TOPICS,
  fromBeginning: env.FROM_BEGINNING,
  chunkSize: env.CHUNK_SIZE,
  handle: async (messages, ctx) => {
    const last = messages[messages.length - 1];
    const totals = await handleChunk(messages, ctx.topic, ctx.partition, pipeline);
    if (last) metrics.consumerLag.set({ topic: ctx.topic, partition: String(ctx.partition) }, Number(ctx.highWatermark) - Number(last.offset) - 1);
    logger.debug({ topic: ctx.topic, partition: ctx.partition, ...totals }, "chunk handled");
  },
});

const ops = await startOpsServer({
  port: env.METRICS_PORT,
  registry,
  readiness: [redisReadiness(redis), kafkaReadiness(kafka)],
});
shutdown.add("ops server", ops.close);
logger.info({ topics: env.INPUT_TOPICS, group: env.CONSUMER_GROUP, metricsPort: ops.port }, "ingest running");
