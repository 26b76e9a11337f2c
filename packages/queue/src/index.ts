/**
 * The judge queue, defined once: its name, payload schema, job ids and default options.
 * Ingest and replay add to it, judge workers consume it.
 */
import { createHash } from "node:crypto";
import { gunzipSync, gzipSync, constants as zlib } from "node:zlib";
import { type ConversationVersion, JudgeJob, Priority } from "@tracesift/schemas";
import { type JobsOptions, Queue } from "bullmq";
import { Redis } from "ioredis";
import { z } from "zod";

export { JudgeJob };

export const RedisEnv = z.object({
  REDIS_URL: z.string().default("redis://127.0.0.1:6379"),
  /** Key prefix of every BullMQ key: lets several fleets (or tests) share one Redis. */
  QUEUE_PREFIX: z.string().default("tracesift"),
  JUDGE_QUEUE: z.string().default("judge"),
});
export type RedisEnv = z.infer<typeof RedisEnv>;

/**
 * Producers fail fast when Redis is gone (the Kafka offset is then not committed and the batch is
 * redelivered); workers wait for Redis forever, as BullMQ requires of blocking connections.
 * `worker-state` is the worker's second connection, for its own state next to BullMQ's.
 */
export function createRedis(url: string, role: "producer" | "worker" | "worker-state"): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: role === "producer" ? 3 : null,
    enableReadyCheck: true,
    lazyConnect: false,
    // The worker's own state (rate limiter, result index, budget) is many small commands from
    // concurrent jobs: sent together each event-loop turn, they cost one write instead of one
    // each, and a write per command was the worker's largest CPU cost after the model call.
    enableAutoPipelining: role === "worker-state",
  });
}

/** BullMQ runs lower numbers first: live conversations overtake a backfill. */
export const PRIORITY_RANK: Record<Priority, number> = { live: 1, backfill: 10 };

export const DEFAULT_ATTEMPTS = 5;

/**
 * What a queued job holds in Redis: the JudgeJob's JSON, gzipped and base64'd (BullMQ stores job
 * data as JSON text), beside the few fields that are read without decoding. A queued conversation
 * then costs Redis about 4/3 of its gzip size instead of its whole JSON, and its text never shows
 * in Redis tooling, job dumps or error logs. `id` and `bytes` name it in logs without its content.
 */
export const CompactJudgeJob = z.object({
  v: z.literal(2),
  gz: z.string(),
  priority: Priority,
  /** The conversation's id and the JudgeJob's JSON size: what logs may say about it. */
  id: z.string(),
  bytes: z.number().int().nonnegative(),
});
export type CompactJudgeJob = z.infer<typeof CompactJudgeJob>;

/** A queued job's data: compact, or a v1 job (the whole JudgeJob) enqueued before compaction. */
export type QueuedJudgeJob = CompactJudgeJob | JudgeJob;

export function encodeJudgeJob(job: JudgeJob): CompactJudgeJob {
  const json = Buffer.from(JSON.stringify(job));
  // Level 6 is zlib's default; higher levels gain ~1% on chat text for twice the CPU.
  const gz = gzipSync(json, { level: zlib.Z_DEFAULT_COMPRESSION });
  return { v: 2, gz: gz.toString("base64"), priority: job.priority, id: job.conversation.id, bytes: json.length };
}

export type DecodedJudgeJob = { ok: true; job: JudgeJob } | { ok: false; error: string };

/**
 * Reads a job's data whatever its version: compact jobs are inflated and parsed, v1 jobs parsed
 * as they are. Never throws: a payload that cannot be read says why.
 */
export function decodeJudgeJob(data: unknown): DecodedJudgeJob {
  const compact = CompactJudgeJob.safeParse(data);
  let candidate: unknown = data;
  if (compact.success) {
    try {
      candidate = JSON.parse(gunzipSync(Buffer.from(compact.data.gz, "base64")).toString("utf8"));
    } catch (err) {
      return { ok: false, error: `compact payload does not inflate: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
  const parsed = JudgeJob.safeParse(candidate);
  if (!parsed.success) return { ok: false, error: `job payload is not a JudgeJob: ${parsed.error.issues[0]?.message ?? ""}` };
  return { ok: true, job: parsed.data };
}

/** What logs may say about a queued job: its conversation id and size, never its content. */
export function describeQueuedJob(data: unknown): { conversation_id?: string; bytes?: number } {
  const compact = CompactJudgeJob.safeParse(data);
  if (compact.success) return { conversation_id: compact.data.id, bytes: compact.data.bytes };
  const v1 = JudgeJob.safeParse(data);
  if (v1.success) return { conversation_id: v1.data.conversation.id, bytes: JSON.stringify(v1.data).length };
  return {};
}

export function judgeJobOptions(job: JudgeJob, attempts = DEFAULT_ATTEMPTS, idSuffix = ""): JobsOptions {
  return {
    jobId: judgeJobId(job.conversation.id, job.version) + idSuffix,
    priority: PRIORITY_RANK[job.priority],
    attempts,
    backoff: { type: "exponential", delay: 1_000 },
    // A finished job keeps nothing in Redis: redeliveries of any age are deduped by the result
    // index the worker checks before calling the model (ids only, with a TTL), not by job ids.
    removeOnComplete: true,
    // The failed-job sweeper removes a failed job once its dead letter is written.
    removeOnFail: false,
  };
}

/**
 * Deterministic per conversation state: a redelivered event maps to the same job, a new turn to a new one.
 * Hashed because BullMQ forbids ':' in ids and conversation ids are user data.
 */
export function judgeJobId(conversationId: string, version: ConversationVersion): string {
  const h = createHash("sha256").update(conversationId).digest("hex").slice(0, 24);
  return `c-${h}-${version.message_count}-${version.content_hash}`;
}

export function createJudgeQueue(connection: Redis, env: Pick<RedisEnv, "QUEUE_PREFIX" | "JUDGE_QUEUE">) {
  return new Queue<QueuedJudgeJob>(env.JUDGE_QUEUE, { connection, prefix: env.QUEUE_PREFIX });
}

export type JudgeQueue = Queue<QueuedJudgeJob>;

/** Enqueues jobs compact (see `CompactJudgeJob`); workers decode them with `decodeJudgeJob`. */
export async function enqueueJudgeJobs(queue: JudgeQueue, jobs: JudgeJob[], attempts?: number, idSuffix?: string): Promise<void> {
  if (jobs.length === 0) return;
  await queue.addBulk(jobs.map((job) => ({ name: "judge", data: encodeJudgeJob(job), opts: judgeJobOptions(job, attempts, idSuffix) })));
}

/** Readiness probe: Redis answers. */
export function redisReadiness(redis: Redis) {
  return { name: "redis", check: async () => void (await redis.ping()) };
}

/**
 * Notices a Redis that lost its data (a restart without persistence, a failover to an empty
 * replica, a lost volume): a marker written once is read back every `intervalMs`; if it is gone,
 * the queue, the dedupe memory and the assembly buffer went with it. `onLost` is told when the
 * marker was last seen, which is where `tracesift recover --since` must start.
 */
export function watchRedisState(redis: Redis, prefix: string, intervalMs: number, onLost: (lastSeen: Date) => void) {
  const key = `${prefix}:state-marker`;
  let lastSeen = new Date();
  let known = false;
  const check = async () => {
    const value = await redis.get(key);
    if (value === null) {
      if (known) onLost(lastSeen);
      await redis.set(key, new Date().toISOString(), "NX");
    }
    known = true;
    lastSeen = new Date();
  };
  const first = check().catch(() => undefined);
  const timer = setInterval(() => {
    check().catch(() => undefined);
  }, intervalMs);
  timer.unref();
  return {
    ready: first,
    stop(): void {
      clearInterval(timer);
    },
  };
}

export {
  type BackpressureState,
  type BackpressureWatch,
  BackpressureEnv,
  isRedisFullError,
  type Marks,
  marksFromEnv,
  nextState,
  type Pressure,
  readPressure,
  watchBackpressure,
} from "./backpressure.ts";
