import type { Admin, Kafka } from "@tracesift/kafka";
import { DeadLetter, JudgeResult } from "@tracesift/schemas";

export type CollectedRecord =
  | { topic: "output"; key: string | null; result: JudgeResult }
  | { topic: "dlq"; key: string | null; letter: DeadLetter };

/** Current end offsets of topics, so a reader can start exactly where a run's records begin. */
export async function endOffsets(admin: Admin, topics: string[]) {
  return Promise.all(
    topics.map(async (topic) => ({
      topic,
      partitions: (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, offset: p.high })),
    })),
  );
}

/**
 * Reads results and dead letters written after `from` until `done` says the run is complete.
 * Uses its own consumer group positioned with setOffsets, never touching the fleet's groups.
 */
export async function collectRecords(options: {
  kafka: Kafka;
  outputTopic: string;
  deadLetterTopic: string;
  from: Awaited<ReturnType<typeof endOffsets>>;
  groupId: string;
  done: (records: CollectedRecord[]) => boolean;
  timeoutMs: number;
}): Promise<CollectedRecord[]> {
  const admin = options.kafka.admin();
  await admin.connect();
  try {
    for (const t of options.from) await admin.setOffsets({ groupId: options.groupId, topic: t.topic, partitions: t.partitions });
  } finally {
    await admin.disconnect();
  }
  const consumer = options.kafka.consumer({ groupId: options.groupId, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topics: [options.outputTopic, options.deadLetterTopic] });
  const records: CollectedRecord[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out after ${options.timeoutMs} ms with ${records.length} records`)),
        options.timeoutMs,
      );
      consumer
        .run({
          eachMessage: async ({ topic, message }) => {
            const key = message.key?.toString("utf8") ?? null;
            const value = JSON.parse(message.value?.toString("utf8") ?? "null");
            if (topic === options.outputTopic) records.push({ topic: "output", key, result: JudgeResult.parse(value) });
            else records.push({ topic: "dlq", key, letter: DeadLetter.parse(value) });
            if (options.done(records)) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
    const cleanup = options.kafka.admin();
    await cleanup.connect();
    await cleanup.deleteGroups([options.groupId]).catch(() => undefined);
    await cleanup.disconnect();
  }
  return records;
}
