import { KafkaEnv } from "@tracesift/kafka";
import { PipelineEnv } from "@tracesift/pipeline";
import { BackpressureEnv, RedisEnv } from "@tracesift/queue";
import { ListEnv } from "@tracesift/runtime";
import { z } from "zod";

export const IngestEnv = KafkaEnv.extend(RedisEnv.shape)
  .extend(PipelineEnv.shape)
  .extend(BackpressureEnv.shape)
  .extend({
    LOG_LEVEL: z.string().default("info"),
    METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9465),
    INPUT_TOPICS: ListEnv.default(["traces"]),
    INPUT_PARTITIONS: z.coerce.number().int().positive().default(3),
    OUTPUT_TOPIC: z.string().default("traces.judged"),
    DEAD_LETTER_TOPIC: z.string().default("traces.dlq"),
    CONSUMER_GROUP: z.string().default("tracesift-ingest"),
    /** Read a new group's topics from the start (true) or only new events (false). */
    FROM_BEGINNING: z.enum(["true", "false"]).default("true").transform((v) => v === "true"),
    /** Events per Redis/Kafka round trip; offsets advance after each chunk. */
    CHUNK_SIZE: z.coerce.number().int().positive().default(200),
    /** How often idle conversations are looked for. */
    SWEEP_INTERVAL_MS: z.coerce.number().int().positive().default(1_000),
    DRAIN_DEADLINE_MS: z.coerce.number().int().positive().default(30_000),
    /**
     * A member that stops heartbeating (kill -9) holds its partitions this long: short, so a
     * restarted ingest consumes again within seconds (the broker's minimum is 6 s by default).
     */
    CONSUMER_SESSION_TIMEOUT_MS: z.coerce.number().int().positive().default(7_000),
    /** How often each service checks that Redis still holds the fleet's state. */
    REDIS_STATE_CHECK_MS: z.coerce.number().int().positive().default(5_000),
  })
  .superRefine((env, ctx) => {
    // The marks' own rules (low below high), checked on the whole environment.
    const marks = BackpressureEnv.safeParse(env);
    if (!marks.success) for (const issue of marks.error.issues) ctx.addIssue({ code: "custom", message: issue.message, path: issue.path });
  });
export type IngestEnv = z.infer<typeof IngestEnv>;
