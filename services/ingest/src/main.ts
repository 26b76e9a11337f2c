import { BatchingProducer, createIdempotentProducer, createKafka, ensureTopics, kafkaReadiness, runAtLeastOnce } from "@tracesift/kafka";
import { backpressureGauges, ingestMetrics, initIngestSeries, redisStateLostCounter } from "@tracesift/metrics";
import { ConversationAssembler } from "@tracesift/assembly";
import { handleChunk, limitsFromEnv, type PipelineOptions, selectionFromEnv, startIdleSweep } from "@tracesift/pipeline";
import {
  type BackpressureWatch,
  createJudgeQueue,
  createRedis,
  isRedisFullError,
  marksFromEnv,
  redisReadiness,
  watchBackpressure,
  watchRedisState,
} from "@tracesift/queue";
import { ResultIndex } from "@tracesift/result-index";
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
const redis = createRedis(env.REDIS_URL, "producer");

// Ops endpoints answer from the start (a probe must see a starting process, not a dead one);
// ready only while the consumer runs and reads (not paused by backpressure).
let consuming = false;
let backpressure: BackpressureWatch | undefined;
const ops = await startOpsServer({
  port: env.METRICS_PORT,
  registry,
  readiness: [
    {
      name: "consumer",
      check: async () => {
        if (!consuming) throw new Error("the Kafka consumer is not running");
      },
    },
    {
      name: "backpressure",
      check: async () => {
        const state = backpressure?.state();
        if (state?.paused) throw new Error(`paused: ${state.reason}`);
      },
    },
    redisReadiness(redis),
    kafkaReadiness(kafka),
  ],
});
shutdown.add("ops server", ops.close);

await ensureTopics(kafka, [
  ...env.INPUT_TOPICS.map((topic) => ({ topic, numPartitions: env.INPUT_PARTITIONS })),
  { topic: env.OUTPUT_TOPIC },
  { topic: env.DEAD_LETTER_TOPIC },
]);

shutdown.add("redis", async () => {
  await redis.quit();
});
const stateLost = redisStateLostCounter(registry);
const stateWatch = watchRedisState(redis, env.QUEUE_PREFIX, env.REDIS_STATE_CHECK_MS, (lastSeen) => {
  stateLost.inc();
  logger.error({ lastSeen }, `Redis lost the fleet's state (queued jobs, dedupe memory): run 'tracesift recover --since ${lastSeen.toISOString()}'`);
});
shutdown.add("redis state watch", async () => stateWatch.stop());
const queue = createJudgeQueue(redis, env);
shutdown.add("queue", () => queue.close());

const pressure = backpressureGauges(registry);
const inputTopics = env.INPUT_TOPICS.map((topic) => ({ topic }));
let consumerStarted = false;
backpressure = watchBackpressure({
  redis,
  queue,
  marks: marksFromEnv(env),
  intervalMs: env.BACKPRESSURE_CHECK_MS,
  onChange: (state) => {
    pressure.paused.set(state.paused ? 1 : 0);
    if (state.paused) logger.warn({ reason: state.reason, backlog: state.backlog, used_memory: state.usedMemory }, "backpressure: pausing the Kafka consumer");
    else logger.info({ backlog: state.backlog, used_memory: state.usedMemory }, "backpressure cleared: resuming the Kafka consumer");
    // Before `run` there is nothing to pause: the first chunk waits in `whilePaused` instead.
    if (!consumerStarted) return;
    if (state.paused) consumer.pause(inputTopics);
    else consumer.resume(inputTopics);
  },
  onError: (err) => logger.debug({ err: err instanceof Error ? err.message : String(err) }, "backpressure check failed"),
});
pressure.paused.set(0);
const pressureGauge = setInterval(() => pressure.redisMemoryRatio.set(backpressure?.state().memoryRatio ?? 0), 1_000);
pressureGauge.unref();
shutdown.add("backpressure watch", async () => {
  clearInterval(pressureGauge);
  backpressure?.stop();
});
const stopping = new AbortController();
shutdown.add("stop waiting for Redis memory", async () => stopping.abort());

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
  recordIndex: new ResultIndex(redis, env.QUEUE_PREFIX),
};
const sweep = startIdleSweep(pipeline, env.SWEEP_INTERVAL_MS, (err) => logger.error({ err: err instanceof Error ? err.message : String(err) }, "idle sweep failed"));
shutdown.add("idle sweep", () => sweep.stop());

const consumer = kafka.consumer({
  groupId: env.CONSUMER_GROUP,
  sessionTimeout: env.CONSUMER_SESSION_TIMEOUT_MS,
  heartbeatInterval: Math.max(500, Math.floor(env.CONSUMER_SESSION_TIMEOUT_MS / 4)),
  // Must exceed the largest accepted event or the partition stalls on it.
  maxBytesPerPartition: Math.max(env.MAX_EVENT_BYTES * 2, 10 * 1024 * 1024),
  maxBytes: Math.max(env.MAX_EVENT_BYTES * 4, 50 * 1024 * 1024),
});
consumer.on(consumer.events.GROUP_JOIN, () => {
  consuming = true;
  // After a rebalance this replica may own other partitions: drop lag it can no longer update.
  metrics.consumerLag.reset();
});
// kafkajs restarts the consumer itself after retriable errors. One it does not restart leaves a
// process that looks alive and reads nothing: never that. Not ready at once, then exit non-zero
// so the supervisor (Kubernetes, Compose, systemd) starts a fresh one.
consumer.on(consumer.events.CRASH, (event) => {
  consuming = false;
  const { error, restart } = event.payload;
  if (restart) {
    logger.warn({ err: error.message }, "Kafka consumer crashed; kafkajs restarts it");
    return;
  }
  logger.error({ err: error.message }, "Kafka consumer stopped and will not restart: exiting so that a fresh process takes over");
  void shutdown.run().finally(() => process.exit(1));
});
consumer.on(consumer.events.STOP, () => {
  consuming = false;
});
await consumer.connect();
// Closed first: stop fetching, finish the chunk in hand, commit, leave the group.
shutdown.add("kafka consumer", () => consumer.disconnect());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Holds the chunk in hand while backpressure lasts, heartbeating so the group keeps us. */
async function whilePaused(ctx: { heartbeat: () => Promise<void>; isStale: () => boolean }): Promise<void> {
  const watch = backpressure;
  while (watch?.state().paused && !stopping.signal.aborted && !ctx.isStale()) {
    consumer.pause(inputTopics);
    await Promise.race([watch.whenClear(stopping.signal), sleep(1_000)]);
    await ctx.heartbeat();
  }
}

consumerStarted = true;
await runAtLeastOnce({
  consumer,
  topics: env.INPUT_TOPICS,
  fromBeginning: env.FROM_BEGINNING,
  chunkSize: env.CHUNK_SIZE,
  handle: async (messages, ctx) => {
    const first = messages[0];
    const last = messages[messages.length - 1];
    const lag = { topic: ctx.topic, partition: String(ctx.partition) };
    // Set before the chunk too: a chunk that waits (Redis full) must still show as lag.
    if (first) metrics.consumerLag.set(lag, Number(ctx.highWatermark) - Number(first.offset));
    // A full Redis is a pause, not a failure: the chunk in hand waits for memory and is tried
    // again (its job ids and records are deterministic), instead of failing the batch and
    // crash-looping the consumer. The group keeps the partition: we heartbeat while waiting (a
    // rebalance makes the heartbeat throw, and the chunk goes to the partition's next owner).
    await whilePaused(ctx);
    for (;;) {
      try {
        const totals = await handleChunk(messages, ctx.topic, ctx.partition, pipeline);
        if (last) metrics.consumerLag.set(lag, Number(ctx.highWatermark) - Number(last.offset) - 1);
        logger.debug({ topic: ctx.topic, partition: ctx.partition, ...totals }, "chunk handled");
        return;
      } catch (err) {
        if (!isRedisFullError(err) || stopping.signal.aborted || ctx.isStale()) throw err;
        logger.warn({ topic: ctx.topic, partition: ctx.partition, events: messages.length }, "Redis is full: the chunk waits for memory");
        await backpressure?.check();
        // Refused for memory while under the marks (marks set above maxmemory): do not spin.
        if (!backpressure?.state().paused) await sleep(1_000);
        await whilePaused(ctx);
      }
    }
  },
});
logger.info({ topics: env.INPUT_TOPICS, group: env.CONSUMER_GROUP, metricsPort: ops.port }, "ingest running");
