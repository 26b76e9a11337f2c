// Proves that kafkajs 2.2.4 (maintenance mode, CI never went past Kafka 2.4) still speaks to the
// broker that scripts/services.sh starts: every client API the project relies on is exercised once.
// Needs `scripts/services.sh up`.
import { randomUUID } from "node:crypto";
import { type Admin, type Consumer, Kafka, logLevel, Partitioners, type Producer } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

const brokers = (process.env.KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");
const run = randomUUID().slice(0, 8);
const topic = `smoke-${run}`;
const groupId = `smoke-${run}`;

const PARTITIONS = 2;
// Larger than the broker's 1 MB default message.max.bytes, so it proves the raised limit; traces
// of 200 KB+ must pass even when several share one batch.
const BIG_VALUE = "x".repeat(1_500_000);
const MiB = 1024 * 1024;

// Two timestamps well apart, so fetchTopicOffsetsByTimestamp has a boundary to find.
const now = Date.now();
const EARLY = now - 60_000;
const LATE = now - 30_000;

interface Sent {
  partition: number;
  key: string;
  value: string;
  timestamp: number;
}

// Partition 0: 3 early + 3 late (the last one big); partition 1: 3 early + 2 late.
const sent: Sent[] = [];
for (let partition = 0; partition < PARTITIONS; partition++) {
  for (let i = 0; i < 5; i++) {
    sent.push({
      partition,
      key: `k-${partition}-${i}`,
      value: JSON.stringify({ partition, i }),
      timestamp: i < 3 ? EARLY : LATE,
    });
  }
}
sent.push({ partition: 0, key: "k-0-big", value: BIG_VALUE, timestamp: LATE });

const countIn = (partition: number, filter: (m: Sent) => boolean = () => true) =>
  sent.filter((m) => m.partition === partition && filter(m)).length;

const kafka = new Kafka({ clientId: `smoke-${run}`, brokers, logLevel: logLevel.WARN });
let admin: Admin;
let producer: Producer | undefined;
let consumer: Consumer | undefined;

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  expect(created).toBe(true);
});

afterAll(async () => {
  await consumer?.disconnect();
  await producer?.disconnect();
  // Cleanup must not hide the failure that got us here, nor leave the admin client connected.
  try {
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.deleteTopics({ topics: [topic], timeout: 30_000 });
  } finally {
    await admin.disconnect();
  }
});

describe("kafkajs 2.2.4 against the development broker", () => {
  it("an idempotent producer writes keyed messages with explicit partitions and timestamps", async () => {
    producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      // Explicit, so kafkajs does not warn about its v2 default partitioner change.
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    const metadata = await producer.send({
      topic,
      acks: -1,
      messages: sent.map((m) => ({
        partition: m.partition,
        key: m.key,
        value: m.value,
        timestamp: String(m.timestamp),
      })),
    });
    expect(metadata.map((r) => r.errorCode)).toEqual(metadata.map(() => 0));

    const high = await admin.fetchTopicOffsets(topic);
    const byPartition = Object.fromEntries(high.map((p) => [p.partition, Number(p.high)]));
    expect(byPartition).toEqual({ 0: countIn(0), 1: countIn(1) });
  });

  it("a consumer group reads every message and its committed offsets are visible to the admin", async () => {
    const received = new Map<string, { partition: number; value: string }>();
    consumer = kafka.consumer({
      groupId,
      // Must exceed the largest message or the consumer stalls on it.
      maxBytesPerPartition: 4 * MiB,
      maxBytes: 8 * MiB,
      // disconnect() waits for the in-flight long poll; keep it short.
      maxWaitTimeInMs: 500,
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const c = consumer;
    await c.run({
      autoCommit: false,
      eachMessage: async ({ topic: t, partition, message }) => {
        received.set(message.key?.toString() ?? "", { partition, value: message.value?.toString() ?? "" });
        await c.commitOffsets([{ topic: t, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
      },
    });

    await vi.waitFor(() => expect(received.size).toBe(sent.length), { timeout: 60_000, interval: 200 });
    for (const m of sent) {
      expect(received.get(m.key)?.partition).toBe(m.partition);
      expect(received.get(m.key)?.value.length).toBe(m.value.length);
    }

    const [described] = (await admin.describeGroups([groupId])).groups;
    expect(described?.state).toBe("Stable");
    expect(described?.protocolType).toBe("consumer");

    // The last commit may still be in flight when the last message has been seen.
    await vi.waitFor(
      async () => {
        const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
        const committed = Object.fromEntries(
          (offsets?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]),
        );
        expect(committed).toEqual({ 0: countIn(0), 1: countIn(1) });
      },
      { timeout: 30_000, interval: 200 },
    );

    await consumer.disconnect();
    consumer = undefined;
  });

  it("fetchTopicOffsetsByTimestamp finds the first offset at or after a timestamp", async () => {
    const at = async (timestamp: number) =>
      Object.fromEntries(
        (await admin.fetchTopicOffsetsByTimestamp(topic, timestamp)).map((p) => [p.partition, Number(p.offset)]),
      );
    expect(await at(EARLY)).toEqual({ 0: 0, 1: 0 });
    expect(await at(LATE)).toEqual({
      0: countIn(0, (m) => m.timestamp < LATE),
      1: countIn(1, (m) => m.timestamp < LATE),
    });
    // Past the newest message kafkajs falls back to the high watermark.
    expect(await at(now + 60_000)).toEqual({ 0: countIn(0), 1: countIn(1) });
  });
});
