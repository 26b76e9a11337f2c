import { PricingTable } from "@tracesift/judge";
import { KafkaEnv } from "@tracesift/kafka";
import { RedisEnv } from "@tracesift/queue";
import { BoolEnv } from "@tracesift/runtime";
import { z } from "zod";

const jsonOf = <T extends z.ZodType>(schema: T) =>
  z.string().transform((s, ctx) => {
    try {
      const parsed = schema.safeParse(JSON.parse(s));
      if (parsed.success) return parsed.data as z.infer<T>;
      ctx.addIssue({ code: "custom", message: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") });
    } catch {
      ctx.addIssue({ code: "custom", message: "not valid JSON" });
    }
    return z.NEVER;
  });

export const WorkerEnv = KafkaEnv.extend(RedisEnv.shape).extend({
  LOG_LEVEL: z.string().default("info"),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9466),
  OUTPUT_TOPIC: z.string().default("traces.judged"),
  DEAD_LETTER_TOPIC: z.string().default("traces.dlq"),
  JUDGE_BASE_URL: z.url().default("https://api.fireworks.ai/inference/v1"),
  FIREWORKS_API_KEY: z.string().min(1, "FIREWORKS_API_KEY is required (any value works against the simulator)"),
  JUDGE_MODEL: z.string().default("accounts/fireworks/models/qwen3p5-35b-a3b"),
  JUDGE_CONCURRENCY: z.coerce.number().int().positive().default(16),
  JUDGE_TIMEOUT_MS: z.coerce.number().int().positive().default(60_000),
  JUDGE_MAX_TOKENS: z.coerce.number().int().positive().default(256),
  JUDGE_RESPONSE_FORMAT: z.enum(["json_schema", "json_object"]).default("json_schema"),
  /** Ask the provider for log-probabilities so verdicts carry `confidence` (absent when it returns none). */
  JUDGE_LOGPROBS: z.enum(["true", "false"]).default("false").transform((v) => v === "true"),
  /** Per-model USD per 1M tokens, e.g. {"accounts/me/models/judge":{"input":0.2,"output":0.2}}. */
  JUDGE_PRICING: jsonOf(PricingTable).default({}),
  /**
   * Fleet-wide limits of JUDGE_MODEL, per minute, one per provider meter: requests, prompt tokens,
   * uncached prompt tokens (prompt minus cached) and generated tokens. Unset ones are learned from
   * the x-ratelimit-* headers; with no token meter known (a dedicated deployment) concurrency
   * adapts to 429/503s.
   */
  JUDGE_RPM: z.coerce.number().int().positive().optional(),
  JUDGE_PROMPT_TPM: z.coerce.number().int().positive().optional(),
  JUDGE_UNCACHED_PROMPT_TPM: z.coerce.number().int().positive().optional(),
  JUDGE_GENERATED_TPM: z.coerce.number().int().positive().optional(),
  JUDGE_MAX_IN_FLIGHT: z.coerce.number().int().positive().optional(),
  /**
   * What the provider's generated-tokens meter charges for a completion: the tokens generated
   * (`usage`, Fireworks) or the `max_tokens` reserved. The limiter settles each call the same way.
   */
  JUDGE_TPM_CHARGES: z.enum(["usage", "max_tokens"]).default("usage"),
  /** Share of every limit that backfill may not use, so live traffic keeps low latency during a replay. */
  LIVE_RESERVE: z.coerce.number().min(0).max(0.9).default(0.2),
  /** Fleet-wide spend limits in USD per UTC hour / day; unset = no limit. */
  COST_BUDGET_HOURLY_USD: z.coerce.number().positive().optional(),
  COST_BUDGET_DAILY_USD: z.coerce.number().positive().optional(),
  /** Once a budget is spent, also pause live judging (backfill always pauses first). */
  BUDGET_PAUSES_LIVE: BoolEnv.default(false),
  DRAIN_DEADLINE_MS: z.coerce.number().int().positive().default(30_000),
  /**
   * How long results wait to share a produce request: fewer, larger requests (a tenth less worker
   * CPU per job under load, measured with bench/worker-cpu) for a few ms on calls that take seconds.
   * 0 sends as soon as the previous request is acknowledged.
   */
  OUTPUT_LINGER_MS: z.coerce.number().int().min(0).default(5),
  /** How long a paid verdict's publication is retried (broker outage) before it is dead-lettered with the verdict inside. */
  PUBLISH_DEADLINE_MS: z.coerce.number().int().positive().default(10 * 60_000),
  /** How often the failed set is swept into dead letters. */
  FAILED_SWEEP_MS: z.coerce.number().int().positive().default(2_000),
  /** A job's lock; a worker that died is noticed after at most this plus STALLED_CHECK_MS. */
  JOB_LOCK_MS: z.coerce.number().int().positive().default(30_000),
  STALLED_CHECK_MS: z.coerce.number().int().positive().default(15_000),
  /** Times a job may be recovered from a dead worker before it is dead-lettered as `worker_lost`. */
  MAX_STALLED_COUNT: z.coerce.number().int().min(0).default(2),
  /**
   * No model call starts while Redis memory is at this share of `maxmemory` (a call is paid for,
   * and its verdict must then be written): jobs wait in hand until it is below REDIS_MEMORY_RESUME.
   * Above ingest's pause mark, so workers keep draining (which frees memory) while producers wait.
   */
  REDIS_MEMORY_PAUSE: z.coerce.number().gt(0).max(1).default(0.98),
  REDIS_MEMORY_RESUME: z.coerce.number().gt(0).max(1).default(0.95),
  /** How often each service checks that Redis still holds the fleet's state. */
  REDIS_STATE_CHECK_MS: z.coerce.number().int().positive().default(5_000),
});
export type WorkerEnv = z.infer<typeof WorkerEnv>;
