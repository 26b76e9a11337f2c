import { KafkaEnv } from "@tracesift/kafka";
import { RedisEnv } from "@tracesift/queue";
import { ListEnv } from "@tracesift/runtime";
import { z } from "zod";

export const CollectorEnv = RedisEnv.extend(KafkaEnv.shape).extend({
  LOG_LEVEL: z.string().default("info"),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  COLLECT_INTERVAL_MS: z.coerce.number().int().positive().default(5_000),
  // The same names and defaults as ingest's, so one ConfigMap serves both.
  INPUT_TOPICS: ListEnv.default(["traces"]),
  CONSUMER_GROUP: z.string().default("tracesift-ingest"),
  // As the judge workers read them: the budgets, and the model whose limiter state is exported.
  COST_BUDGET_HOURLY_USD: z.coerce.number().positive().optional(),
  COST_BUDGET_DAILY_USD: z.coerce.number().positive().optional(),
  JUDGE_MODEL: z.string().default("accounts/fireworks/models/qwen3p5-35b-a3b"),
  JUDGE_RPM: z.coerce.number().int().positive().optional(),
  JUDGE_TPM: z.coerce.number().int().positive().optional(),
  JUDGE_MAX_IN_FLIGHT: z.coerce.number().int().positive().optional(),
});
export type CollectorEnv = z.infer<typeof CollectorEnv>;
