import { BoolEnv, ListEnv, parseEnv } from "@tracesift/runtime";
import { z } from "zod";

const optionalPositiveInt = z.coerce.number().int().positive().optional();

export const EnvSchema = z.object({
  SIM_PORT: z.coerce.number().int().min(0).max(65_535).default(8787),
  SIM_HOST: z.string().min(1).default("127.0.0.1"),
  SIM_LATENCY_MS: z.coerce.number().min(0).default(50),
  SIM_LATENCY_PER_KTOKENS_MS: z.coerce.number().min(0).default(0),
  SIM_LATENCY_JITTER_MS: z.coerce.number().min(0).default(0),
  /** Requests / tokens per minute per model; unset = unlimited. */
  SIM_RPM: optionalPositiveInt,
  SIM_TPM: optionalPositiveInt,
  /** Fireworks' token meters, per second (its starting limits: 60000 / 15000 / 600); unset = unlimited. */
  SIM_PROMPT_TPS: z.coerce.number().positive().optional(),
  SIM_UNCACHED_PROMPT_TPS: z.coerce.number().positive().optional(),
  SIM_GENERATED_TPS: z.coerce.number().positive().optional(),
  /** Requests per minute across all models, as Fireworks' account cap. */
  SIM_ACCOUNT_RPM: z.coerce.number().int().positive().default(6000),
  /** Limits start at this share after an idle minute and reach the ceiling SIM_RAMP_MS later (1 = fixed). */
  SIM_RAMP_START_SHARE: z.coerce.number().gt(0).max(1).default(0.5),
  SIM_RAMP_MS: z.coerce.number().int().positive().default(30_000),
  /** Serving replicas, each with its own prompt cache (affinity by x-multi-turn-session-id). */
  SIM_REPLICAS: z.coerce.number().int().positive().default(4),
  SIM_SEND_RETRY_AFTER: BoolEnv.default(true),
  SIM_SEND_RATE_LIMIT_HEADERS: BoolEnv.default(true),
  /** When set, chat requests need this bearer token. */
  SIM_API_KEY: z.string().min(1).optional(),
  /** Comma-separated model ids to accept; unset accepts any. */
  SIM_MODELS: ListEnv.optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info"),
});

export type Env = z.output<typeof EnvSchema>;

export function readEnv(env: NodeJS.ProcessEnv = process.env): Env {
  return parseEnv(EnvSchema, env);
}
