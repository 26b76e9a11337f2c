/**
 * `tracesift recover --since <time>`: after Redis lost the fleet's state (queued jobs, the result
 * index, the assembly buffer), judge again exactly what has no result yet. The output topic is the
 * durable record: its results since the loss are written back into the result index first, then
 * the input topics are replayed from that time; the replay (and every worker) skips what the
 * index holds, so recovery pays for nothing twice.
 */
import { KafkaEnv, readRange } from "@tracesift/kafka";
import { PipelineEnv } from "@tracesift/pipeline";
import { RedisEnv } from "@tracesift/queue";
import { ResultIndex } from "@tracesift/result-index";
import { ListEnv, parseEnv } from "@tracesift/runtime";
import { DeadLetter, JudgeResult } from "@tracesift/schemas";
import { z } from "zod";
import { checkKafka, cliKafka, cliRedis, ConnectEnv } from "./connect.ts";
import type { Command } from "./main.ts";
import { parseCommandArgs, requiredArg, UsageError } from "./usage.ts";

const HELP = `tracesift recover --since <ISO time> [--dry-run]

Run after Redis lost its data (the fleet logs "Redis lost the fleet's state" with the time to
use, and tracesift_redis_state_lost_total increases). Rebuilds the result index from the output
topic and replays every input topic from --since minus IDLE_WINDOW_MS (so conversations still
being assembled at the loss are whole again), judging only conversations without a result.

  --since <time>   when Redis was last known good (ISO time)
  --dry-run        rebuild the index, then only estimate what the replay would judge
`;

const RecoverEnv = KafkaEnv.extend(RedisEnv.shape)
  .extend(PipelineEnv.shape)
  .extend(ConnectEnv.shape)
  .extend({
    INPUT_TOPICS: ListEnv.default(["traces"]),
    OUTPUT_TOPIC: z.string().default("traces.judged"),
    DEAD_LETTER_TOPIC: z.string().default("traces.dlq"),
  });

export const command: Command = {
  summary: "after Redis lost its data: rebuild the result index from the output topic and judge only what has no result",
  run: async ({ argv, logger }) => {
    const args = parseCommandArgs(argv, { since: { type: "string" }, "dry-run": { type: "boolean" } }, HELP);
    if (!args) return 0;
    const sinceArg = requiredArg(args, "since", HELP);
    const since = Date.parse(sinceArg);
    if (Number.isNaN(since)) throw new UsageError(`--since: expected an ISO time, got "${sinceArg}"`);
    const env = parseEnv(RecoverEnv);
    const from = since - env.IDLE_WINDOW_MS;
    const kafka = cliKafka(env, "tracesift-recover", logger);
    await checkKafka(kafka, env, [env.OUTPUT_TOPIC, env.DEAD_LETTER_TOPIC, ...env.INPUT_TOPICS]);
    const redis = await cliRedis(env.REDIS_URL, env);
    const index = new ResultIndex(redis, env.QUEUE_PREFIX);
    let results = 0;
    let letters = 0;
    try {
      // Results and letters of events read from `from` on were all written after `from`.
      await readRange({
        kafka,
        topic: env.OUTPUT_TOPIC,
        fromMs: from,
        onMessages: async (messages) => {
          const parsed = messages.map((m) => JudgeResult.safeParse(JSON.parse(m.value?.toString("utf8") ?? "null"))).flatMap((p) => (p.success ? [p.data] : []));
          const judged = parsed.flatMap((r) => (r.status === "judged" ? [r] : []));
          await Promise.all([...judged.map((r) => index.published(r)), index.markRecords(parsed.filter((r) => r.status === "skipped").map((r) => r.result_id))]);
          results += parsed.length;
        },
      });
      await readRange({
        kafka,
        topic: env.DEAD_LETTER_TOPIC,
        fromMs: from,
        onMessages: async (messages) => {
          const ids = messages
            .map((m) => DeadLetter.safeParse(JSON.parse(m.value?.toString("utf8") ?? "null")))
            .flatMap((p) => (p.success && p.data.dead_letter_id ? [p.data.dead_letter_id] : []));
          await index.markRecords(ids);
          letters += ids.length;
        },
      });
    } finally {
      await redis.quit().catch(() => undefined);
    }
    process.stdout.write(`recover: ${results} results and ${letters} dead letters since ${new Date(from).toISOString()} are known again\n`);
    const replay = (await import("./replay.ts")).command;
    let status = 0;
    for (const topic of env.INPUT_TOPICS) {
      process.stdout.write(`recover: replaying ${topic} from ${new Date(from).toISOString()}\n`);
      const argvReplay = ["--topic", topic, "--from", new Date(from).toISOString(), "--name", `recover-${topic}-${from}`];
      if (args.values["dry-run"]) argvReplay.push("--dry-run");
      const code = await replay.run({ argv: argvReplay, logger });
      if (code !== 0) status = code;
    }
    return status;
  },
};
