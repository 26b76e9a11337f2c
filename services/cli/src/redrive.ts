/**
 * `tracesift redrive`: once the cause of dead letters is fixed (a normalizer bug, a bad key), put
 * them back. Ingest-stage letters are re-produced to their source topic byte for byte; judge-stage
 * letters are re-enqueued as jobs. Each source event is re-driven at most once, however many letters
 * it has (a replay can dead-letter the same event again): a Redis set remembers what was re-driven,
 * by source position (ingest stage) or by job (judge stage), so running the command twice is harmless.
 */
import { createIdempotentProducer, KafkaEnv } from "@tracesift/kafka";
import { createJudgeQueue, enqueueJudgeJobs, judgeJobId, RedisEnv } from "@tracesift/queue";
import { parseEnv } from "@tracesift/runtime";
import { DeadLetter, DeadLetterReason, JudgeJob } from "@tracesift/schemas";
import { z } from "zod";
import { checkKafka, cliKafka, cliRedis, ConnectEnv } from "./connect.ts";
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
    const env = parseEnv(KafkaEnv.extend(RedisEnv.shape).extend(ConnectEnv.shape).extend({ DEAD_LETTER_TOPIC: z.string().default("traces.dlq") }));
    const dryRun = args.values["dry-run"] === true;
    const kafka = cliKafka(env, "tracesift-redrive", logger);
    await checkKafka(kafka, env, [env.DEAD_LETTER_TOPIC]);
    const redis = await cliRedis(env.REDIS_URL, env);
    const queue = createJudgeQueue(redis, env);
    // A lost Redis already fails the command's own calls; BullMQ's copy of the error would only add noise.
    queue.on("error", () => undefined);
    const producer = createIdempotentProducer(kafka);
    const doneKey = `${env.QUEUE_PREFIX}:redriven:${env.DEAD_LETTER_TOPIC}`;
    // `already`: this letter, or another letter of the same source event, was re-driven before.
    const seen = new Set<string>();
    const counts = { read: 0, matched: 0, already: 0, reinjected: 0, requeued: 0, unreadable: 0 };
    const admin = kafka.admin();
    try {
      await admin.connect();
      await producer.connect();
      const ends = await admin.fetchTopicOffsets(env.DEAD_LETTER_TOPIC);
      const pending = new Set(ends.filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => p.partition));
      if (pending.size === 0) {
        process.stdout.write("dead-letter topic is empty\n");
        return 0;
      }
      // A throwaway group positioned at the start: the whole topic is read each time, the Redis set decides.
      const groupId = `tracesift-redrive-${Date.now()}`;
      await admin.setOffsets({ groupId, topic: env.DEAD_LETTER_TOPIC, partitions: ends.map((p) => ({ partition: p.partition, offset: p.low })) });
      // kafkajs restarts a crashed consumer forever; a command reports the error and stops instead.
      const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 300, retry: { retries: 2, restartOnFailure: async () => false } });
      await consumer.connect();
      await consumer.subscribe({ topic: env.DEAD_LETTER_TOPIC });
      await new Promise<void>((resolve, reject) => {
        consumer.on(consumer.events.CRASH, ({ payload }) => reject(payload.error));
        consumer
          .run({
            autoCommit: false,
            eachBatch: async ({ batch }) => {
              const end = BigInt(ends.find((e) => e.partition === batch.partition)?.high ?? "0");
              for (const m of batch.messages) {
                if (BigInt(m.offset) >= end) break;
                counts.read++;
                const parsed = DeadLetter.safeParse(parseJson(m.value?.toString("utf8") ?? "null"));
                if (!parsed.success) {
                  counts.unreadable++;
                  continue;
                }
                const letter = parsed.data;
                if (reasons && !reasons.includes(letter.reason_code)) continue;
                counts.matched++;
                const position = `${batch.partition}:${m.offset}`;
                const original = letter.original_base64 === null ? null : Buffer.from(letter.original_base64, "base64");
                const job = letter.stage === "judge" && original ? JudgeJob.safeParse(parseJson(original.toString("utf8"))) : undefined;
                if (job && !job.success) {
                  // A judge-stage letter carries a job, not an event: it never goes to a source topic.
                  counts.unreadable++;
                  continue;
                }
                const source = job?.success
                  ? `job:${judgeJobId(job.data.conversation.id, job.data.version)}`
                  : `src:${letter.source.topic}:${letter.source.partition}:${letter.source.offset}`;
                // Letters re-driven before sources were remembered are found by their own position.
                const [seenSource, seenPosition] = await Promise.all([redis.sismember(doneKey, source), redis.sismember(doneKey, position)]);
                if (seenSource || seenPosition || seen.has(source)) {
                  counts.already++;
                  continue;
                }
                seen.add(source);
                if (dryRun) continue;
                if (job?.success) {
                  await enqueueJudgeJobs(queue, [job.data], undefined, `-redrive-${batch.partition}-${m.offset}`);
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
                await redis.sadd(doneKey, source, position);
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
      await admin.disconnect().catch(() => undefined);
      await producer.disconnect().catch(() => undefined);
      await queue.close().catch(() => undefined);
      await redis.quit().catch(() => redis.disconnect());
    }
    process.stdout.write(`${dryRun ? "Would re-drive" : "Re-drove"}: ${JSON.stringify(counts)}\nREDRIVE ${JSON.stringify(counts)}\n`);
    return 0;
  },
};

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
