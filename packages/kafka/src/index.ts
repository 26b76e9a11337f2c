/**
 * The project's only door to kafkajs (in maintenance mode since 2023): if it has to be replaced,
 * this package is what changes.
 */
import {
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  Kafka,
  type KafkaConfig,
  type KafkaMessage,
  logLevel,
  type Producer,
  type SASLOptions,
} from "kafkajs";
import type { Logger } from "@tracesift/runtime";
import "./codecs.ts";
import { z } from "zod";

export type { Admin, Consumer, IHeaders, Kafka, KafkaMessage, Producer };

/** Environment contract shared by every service that talks to Kafka. */
export const KafkaEnv = z.object({
  KAFKA_BROKERS: z.string().default("127.0.0.1:9092"),
  KAFKA_CLIENT_ID: z.string().optional(),
  KAFKA_SSL: z
    .enum(["true", "false"])
    .default("false")
    .transform((v) => v === "true"),
  KAFKA_SASL_MECHANISM: z.enum(["plain", "scram-sha-256", "scram-sha-512"]).optional(),
  KAFKA_SASL_USERNAME: z.string().optional(),
  KAFKA_SASL_PASSWORD: z.string().optional(),
});
export type KafkaEnv = z.infer<typeof KafkaEnv>;

/** Connection and retry bounds: a command line fails within seconds where a service keeps retrying. */
export type KafkaTuning = Pick<KafkaConfig, "connectionTimeout" | "requestTimeout" | "retry">;

/** Longest text a kafkajs log field may carry into our logs. */
const LOG_FIELD_MAX = 300;

/**
 * kafkajs logs the error of a failed `eachBatch` with its message and stack, and those can quote
 * whatever the handler was holding (a whole conversation, in a BullMQ or zod error). Trace content
 * can hold personal data; logs must not: long strings are cut, with their length kept.
 */
export function capLogFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = typeof v === "string" && v.length > LOG_FIELD_MAX ? `${v.slice(0, LOG_FIELD_MAX)}… [${v.length} chars, cut]` : v;
  }
  return out;
}

export function createKafka(env: KafkaEnv, clientId: string, logger: Logger, tuning: KafkaTuning = {}): Kafka {
  let sasl: SASLOptions | undefined;
  if (env.KAFKA_SASL_MECHANISM) {
    sasl = {
      mechanism: env.KAFKA_SASL_MECHANISM,
      username: env.KAFKA_SASL_USERNAME ?? "",
      password: env.KAFKA_SASL_PASSWORD ?? "",
    } as SASLOptions;
  }
  return new Kafka({
    clientId: env.KAFKA_CLIENT_ID ?? clientId,
    brokers: env.KAFKA_BROKERS.split(",").map((b) => b.trim()),
    ssl: env.KAFKA_SSL,
    ...(sasl ? { sasl } : {}),
    ...tuning,
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => {
      const { message: rawMessage, ...extra } = entry.log;
      const child = { kafka: entry.namespace, ...capLogFields(extra) };
      const message = capLogFields({ message: rawMessage }).message as string;
      if (entry.level <= logLevel.ERROR) logger.error(child, message);
      else if (entry.level === logLevel.WARN) logger.warn(child, message);
      else logger.debug(child, message);
    },
  });
}

/** Create missing topics and wait for their leaders: freshly auto-created KRaft topics can briefly have none. */
export async function ensureTopics(
  kafka: Kafka,
  topics: { topic: string; numPartitions?: number; configEntries?: { name: string; value: string }[] }[],
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.topic));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((t) => ({
          topic: t.topic,
          numPartitions: t.numPartitions ?? 3,
          replicationFactor: -1,
          ...(t.configEntries ? { configEntries: t.configEntries } : {}),
        })),
      });
    }
  } catch (err) {
    // Two services racing to create the same topic is fine.
    if (!(err instanceof Error && /already exists/i.test(err.message))) throw err;
  } finally {
    await admin.disconnect();
  }
}

export function headerString(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined) return undefined;
  return typeof first === "string" ? first : first.toString("utf8");
}

export type BatchContext = {
  topic: string;
  partition: number;
  heartbeat: () => Promise<void>;
  isStale: () => boolean;
  highWatermark: string;
};

/**
 * Runs a consumer group at-least-once: `handle` gets messages in chunks, and a chunk's offsets are
 * resolved only after `handle` resolved — i.e. after its jobs are in Redis and its records on Kafka.
 * A crash before that redelivers the chunk; deterministic job ids make the redelivery harmless.
 */
export async function runAtLeastOnce(options: {
  consumer: Consumer;
  topics: string[];
  fromBeginning: boolean;
  chunkSize: number;
  handle: (messages: KafkaMessage[], ctx: BatchContext) => Promise<void>;
}): Promise<void> {
  const { consumer } = options;
  await consumer.subscribe({ topics: options.topics, fromBeginning: options.fromBeginning });
  await consumer.run({
    eachBatchAutoResolve: false,
    autoCommit: true,
    eachBatch: async (payload: EachBatchPayload) => {
      const { batch, resolveOffset, heartbeat, isRunning, isStale, commitOffsetsIfNecessary } = payload;
      const ctx: BatchContext = { topic: batch.topic, partition: batch.partition, heartbeat, isStale, highWatermark: batch.highWatermark };
      for (let i = 0; i < batch.messages.length; i += options.chunkSize) {
        // A rebalance took the partition away: whatever is left belongs to its new owner now.
        if (!isRunning() || isStale()) return;
        const chunk = batch.messages.slice(i, i + options.chunkSize);
        await options.handle(chunk, ctx);
        const last = chunk[chunk.length - 1];
        if (last) resolveOffset(last.offset);
        await commitOffsetsIfNecessary();
        await heartbeat();
      }
    },
  });
}

export type OutgoingRecord = { topic: string; key: string | null; value: string | Buffer; headers?: IHeaders };

/**
 * Coalesces records from many concurrent callers into few produce requests. An idempotent
 * producer allows one request in flight, so sending per job would cap the fleet at one round trip
 * per result; here each caller still awaits the broker's ack for its own record.
 *
 * Batching is natural rather than timed: records sent in the same event-loop turn leave together,
 * and records sent while a request is in flight form the next one. An idle producer adds no
 * delay, a busy one sends as many records per request as arrived during the last round trip
 * (a fixed linger made every judge job wait for it, and a worker's throughput is its concurrency
 * over its jobs' latency). `lingerMs` > 0 trades latency for larger batches.
 */
export class BatchingProducer {
  private pending: { record: OutgoingRecord; resolve: () => void; reject: (err: unknown) => void }[] = [];
  /** Cancels the drain scheduled for later (linger or next turn), if any. */
  private cancelScheduled: (() => void) | null = null;
  private draining: Promise<void> | null = null;
  private readonly lingerMs: number;
  private readonly maxBatch: number;

  constructor(
    private readonly producer: Producer,
    options: { lingerMs?: number; maxBatch?: number } = {},
  ) {
    this.lingerMs = options.lingerMs ?? 0;
    this.maxBatch = options.maxBatch ?? 500;
  }

  send(record: OutgoingRecord): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ record, resolve, reject });
      this.schedule(this.pending.length >= this.maxBatch);
    });
  }

  sendAll(records: OutgoingRecord[]): Promise<void> {
    return Promise.all(records.map((r) => this.send(r))).then(() => undefined);
  }

  /** Wait for everything queued so far to be acknowledged (or failed). */
  async flush(): Promise<void> {
    while (this.pending.length > 0 || this.draining) {
      this.schedule(true);
      await this.draining;
    }
  }

  /** Starts a drain unless one runs (it will pick the new records up) or one is about to start. */
  private schedule(now: boolean): void {
    if (this.draining) return;
    if (this.cancelScheduled && !now) return;
    this.cancelScheduled?.();
    this.cancelScheduled = null;
    if (now) {
      this.start();
    } else if (this.lingerMs > 0) {
      const timer = setTimeout(() => this.start(), this.lingerMs);
      this.cancelScheduled = () => clearTimeout(timer);
    } else {
      const immediate = setImmediate(() => this.start());
      this.cancelScheduled = () => clearImmediate(immediate);
    }
  }

  private start(): void {
    this.cancelScheduled = null;
    if (this.draining || this.pending.length === 0) return;
    this.draining = this.drain().finally(() => {
      this.draining = null;
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      const byTopic = new Map<string, OutgoingRecord[]>();
      for (const { record } of batch) {
        const list = byTopic.get(record.topic) ?? [];
        list.push(record);
        byTopic.set(record.topic, list);
      }
      try {
        await this.producer.sendBatch({
          acks: -1,
          topicMessages: [...byTopic].map(([topic, records]) => ({
            topic,
            messages: records.map((r) => ({ key: r.key, value: r.value, ...(r.headers ? { headers: r.headers } : {}) })),
          })),
        });
        for (const p of batch) p.resolve();
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
  }
}

/** An idempotent producer: broker-side dedup of retried sends within a session. */
export function createIdempotentProducer(kafka: Kafka): Producer {
  return kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
}

/** Readiness probe: the brokers answer a metadata request. */
export function kafkaReadiness(kafka: Kafka) {
  return {
    name: "kafka",
    check: async () => {
      const admin = kafka.admin();
      await admin.connect();
      await admin.disconnect();
    },
  };
}

/**
 * Reads a topic from a time (or its start) up to its end as it is when the call starts, with a
 * throwaway consumer group that is deleted afterwards: the fleet's groups never move.
 */
export async function readRange(options: {
  kafka: Kafka;
  topic: string;
  /** Epoch ms; messages at or after it. Omitted: from the earliest retained message. */
  fromMs?: number;
  maxBytesPerPartition?: number;
  onMessages: (messages: KafkaMessage[], partition: number) => Promise<void> | void;
}): Promise<number> {
  const { kafka, topic } = options;
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `tracesift-read-${topic}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  let ranges: { partition: number; start: bigint; end: bigint }[];
  try {
    const ends = await admin.fetchTopicOffsets(topic);
    const starts = options.fromMs === undefined ? null : await admin.fetchTopicOffsetsByTimestamp(topic, options.fromMs);
    ranges = ends.map((e) => {
      const at = starts?.find((s) => s.partition === e.partition)?.offset;
      const start = at === undefined ? BigInt(e.low) : BigInt(at) < 0n ? BigInt(e.high) : BigInt(at);
      return { partition: e.partition, start, end: BigInt(e.high) };
    });
    ranges = ranges.filter((r) => r.start < r.end);
    if (ranges.length === 0) return 0;
    await admin.setOffsets({ groupId, topic, partitions: ranges.map((r) => ({ partition: r.partition, offset: String(r.start) })) });
  } finally {
    await admin.disconnect();
  }
  const remaining = new Set(ranges.map((r) => r.partition));
  let read = 0;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200, maxBytesPerPartition: options.maxBytesPerPartition ?? 10 * 1024 * 1024 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic });
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            const range = ranges.find((r) => r.partition === batch.partition);
            if (!range || !remaining.has(batch.partition)) return;
            const messages = batch.messages.filter((m) => BigInt(m.offset) < range.end);
            read += messages.length;
            if (messages.length > 0) await options.onMessages(messages, batch.partition);
            const last = batch.messages[batch.messages.length - 1];
            if (last && BigInt(last.offset) >= range.end - 1n) {
              remaining.delete(batch.partition);
              if (remaining.size === 0) resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
    const cleanup = kafka.admin();
    await cleanup.connect();
    await cleanup.deleteGroups([groupId]).catch(() => undefined);
    await cleanup.disconnect();
  }
  return read;
}
