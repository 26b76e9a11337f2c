/**
 * `tracesift redrive`: once the cause of dead letters is fixed (a normalizer bug, a bad key), put
 * them back. Ingest-stage letters are re-produced to their source topic byte for byte; judge-stage
 * letters are re-enqueued as jobs. Each letter is re-driven at most once (a Redis set of the DLQ
 * positions already re-driven), so running the command twice is harmless.
 */
import { createIdempotentProducer, createKafka, KafkaEnv } from "@tracesift/kafka";
import { createJudgeQueue, createRedis, enqueueJudgeJobs, RedisEnv } from "@tracesift/queue";
import { parseEnv } from "@tracesift/runtime";
import { DeadLetter, DeadLetterReason, JudgeJob } from "@tracesift/schemas";
import { z } from "zod";
import type { Command } from "./main.ts";
import { parseCommandArgs, stringArg, UsageError } from "./usage.ts";

const HELP = `tracesift redrive [--reason <code,...>] [--to <topic>] [--dry-run]

Re-injects dead-lettered events from the dead-letter topic (DEAD_LETTER_TOPIC, default traces.dlq).

  --reason <codes>  only these reason codes (${DeadLetterReason.options.join(", ")}); default: all
  --to <topic>      send ingest-stage events here instead of the topic they came from
  --dry-run         count what would be re-driven, change nothing
`;

export const command: Command = {
  summary: "re-inject dead-lettered events (all, or by reason) once the cause is fixed",
  run: async ({ argv, logger }) => {
    const args = parseCommandArgs(argv, { reason: { type: "string" }, to: { type: "string" }, "dry-run": { type: "boolean" } }, HELP);
    if (!args) return 0;
    const reasons = stringArg(args, "reason")?.split(",").map((r) => r.trim());
    for (const r of reasons ?? []) if (!DeadLetterReason.safeParse(r).success) throw new UsageError(`unknown reason "${r}"\n\n${HELP}`);
    const env = parseEnv(KafkaEnv.extend(RedisEnv.shape).extend({ DEAD_LETTER_TOPIC: z.string().default("traces.dlq") }));
    const dryRun = args.values["dry-run"] === true;
    const kafka = createKafka(env, "tracesift-redrive", logger);
    const redis = createRedis(env.REDIS_URL, "producer");
    const queue = createJudgeQueue(redis, env);
    const producer = createIdempotentProducer(kafka);
    const doneKey = `${env.QUEUE_PREFIX}:redriven:${env.DEAD_LETTER_TOPIC}`;
    const counts = { read: 0, matched: 0, already: 0, reinjected: 0, requeued: 0, unreadable: 0 };
    const admin = kafka.admin();
    await admin.connect();
    await producer.connect();
    try {
      const ends = await admin.fetchTopicOffsets(env.DEAD_LETTER_TOPIC);
      const pending = new Set(ends.filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => p.partition));
      if (pending.size === 0) {
        process.stdout.write("dead-letter topic is empty\n");
        return 0;
      }
      // A throwaway group positioned at the start: the whole topic is read each time, the Redis set decides.
      const groupId = `tracesift-redrive-${Date.now()}`;
      await admin.setOffsets({ groupId, topic: env.DEAD_LETTER_TOPIC, partitions: ends.map((p) => ({ partition: p.partition, offset: p.low })) });
      const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 300 });
      await consumer.connect();
      await consumer.subscribe({ topic: env.DEAD_LETTER_TOPIC });
      await new Promise<void>((resolve, reject) => {
        consumer
          .run({
            autoCommit: false,
            eachBatch: async ({ batch }) => {
              const end = BigInt(ends.find((e) => e.partition === batch.partition)?.high ?? "0");
              for (const m of batch.messages) {
                if (BigInt(m.offset) >= end) break;
                counts.read++;
                const parsed = DeadLetter.safeParse(JSON.parse(m.value?.toString("utf8") ?? "null"));
                if (!parsed.success) {
                  counts.unreadable++;
                  continue;
                }
                const letter = parsed.data;
                if (reasons && !reasons.includes(letter.reason_code)) continue;
                counts.matched++;
                const position = `${batch.partition}:${m.offset}`;
                if (await redis.sismember(doneKey, position)) {
                  counts.already++;
                  continue;
                }
                if (dryRun) continue;
                const original = letter.original_base64 === null ? null : Buffer.from(letter.original_base64, "base64");
                if (letter.stage === "judge" && original) {
                  const job = JudgeJob.parse(JSON.parse(original.toString("utf8")));
                  await enqueueJudgeJobs(queue, [job], undefined, `-redrive-${batch.partition}-${m.offset}`);
                  counts.requeued++;
                } else {
                  await producer.send({
                    topic: stringArg(args, "to") ?? letter.source.topic,
                    acks: -1,
                    // Not Tracesift's provenance header: a re-driven event must be judged like a live one.
                    messages: [{ key: letter.original_key, value: original, headers: { "tracesift-redriven-from": `${env.DEAD_LETTER_TOPIC}/${position}` } }],
                  });
                  counts.reinjected++;
                }
                await redis.sadd(doneKey, position);
              }
              const last = batch.messages[batch.messages.length - 1];
              if (!last || BigInt(last.offset) >= end - 1n) pending.delete(batch.partition);
              if (pending.size === 0) resolve();
            },
          })
          .catch(reject);
      });
      await consumer.disconnect();
      await admin.deleteGroups([groupId]).catch(() => undefined);
    } finally {
      await admin.disconnect();
      await producer.disconnect();
      await queue.close();
      await redis.quit();
    }
    process.stdout.write(`${dryRun ? "Would re-drive" : "Re-drove"}: ${JSON.stringify(counts)}\nREDRIVE ${JSON.stringify(counts)}\n`);
    return 0;
  },
};
