/**
 * Every Kafka compression codec, written by a real compressing producer (kcat, i.e. librdkafka,
 * `-z gzip|snappy|lz4|zstd`) to the real broker and read back by the fleet's consumer code
 * (createKafka + runAtLeastOnce, as ingest runs it). Needs `scripts/services.sh up` and kcat.
 */
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createLogger } from "@tracesift/runtime";
import { describe, expect, it } from "vitest";
import { createKafka, ensureTopics, type KafkaMessage, runAtLeastOnce } from "./index.ts";

const BROKERS = process.env.KAFKA_BROKERS ?? "127.0.0.1:9092";
const logger = createLogger({ service: "codecs-test", level: "warn" });
const kafka = createKafka({ KAFKA_BROKERS: BROKERS, KAFKA_SSL: false }, "codecs-test", logger);

// Repetitive JSON like real traces, so every codec really compresses (and one large value spans
// several snappy/lz4 blocks).
const values = [
  ...[...Array(20)].map((_, i) => JSON.stringify({ id: `conv-${i}`, messages: [{ role: "user", content: "Book Dana on Tuesday ".repeat(20) }] })),
  JSON.stringify({ id: "big", messages: [{ role: "user", content: "x".repeat(300_000) }] }),
];

describe.each(["gzip", "snappy", "lz4", "zstd"])("a batch compressed with %s", (codec) => {
  it("is read by the fleet's consumer", async () => {
    const run = randomUUID().slice(0, 8);
    const topic = `codec-${codec}-${run}`;
    await ensureTopics(kafka, [{ topic, numPartitions: 1 }]);

    // One batch per kcat run: librdkafka compresses whole message sets.
    const kcat = spawnSync("kcat", ["-P", "-b", BROKERS, "-t", topic, "-p", "0", "-z", codec, "-X", "message.max.bytes=4000000"], {
      input: `${values.join("\n")}\n`,
      encoding: "utf8",
    });
    expect(kcat.status, kcat.stderr).toBe(0);

    const consumer = kafka.consumer({ groupId: `codec-${codec}-${run}` });
    await consumer.connect();
    const received: string[] = [];
    let crashed: unknown;
    consumer.on(consumer.events.CRASH, (e) => {
      crashed = e.payload.error;
    });
    try {
      const done = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out; read ${received.length}, crash: ${String(crashed)}`)), 30_000);
        void runAtLeastOnce({
          consumer,
          topics: [topic],
          fromBeginning: true,
          chunkSize: 50,
          handle: async (messages: KafkaMessage[]) => {
            for (const m of messages) received.push(m.value?.toString("utf8") ?? "");
            if (received.length >= values.length) {
              clearTimeout(timer);
              resolve();
            }
          },
        }).catch(reject);
      });
      await done;
    } finally {
      await consumer.disconnect();
    }
    expect(crashed).toBeUndefined();
    expect(received).toEqual(values);
  });
});
