/**
 * Judge configurations: which OpenAI-compatible endpoint, model and prompt a run uses. Read from a
 * JSON file (a list, `{"judges": [...]}` for eval, `{"panel": [...], "arbiters": [...]}` for label)
 * or built from command-line flags. Keys are never in the file: `apiKeyEnv` names the variable.
 */
import { readFileSync } from "node:fs";
import { PROMPT_VERSION, Price } from "@tracesift/judge";
import { ModelLimitsSchema } from "@tracesift/rate-limit";
import { z } from "zod";
import { ARBITER_PROMPT_VERSION } from "./arbiter.ts";

export const JudgeConfig = z.strictObject({
  /** Row label in reports; unique within a run. */
  name: z.string().min(1),
  baseURL: z.url(),
  model: z.string().min(1),
  /** Environment variable holding the API key; unset for endpoints without auth (the simulator). */
  apiKeyEnv: z.string().min(1).optional(),
  /** The fleet has one judge prompt (and one arbiter prompt); a config may name it explicitly. */
  promptVersion: z.string().min(1).optional(),
  /** USD per 1M tokens, or a GPU-hour price for a dedicated deployment; default: the fleet's price table. */
  pricing: Price.optional(),
  /** Provider limits for the fleet limiter; unset fields are learned from headers. */
  limits: ModelLimitsSchema.optional(),
  responseFormat: z.enum(["json_schema", "json_object"]).default("json_schema"),
  maxTokens: z.number().int().positive().default(256),
  timeoutMs: z.number().int().positive().default(60_000),
  /** Ask for log-probabilities so verdicts carry a confidence (and the report a calibration). */
  logprobs: z.boolean().default(false),
});
export type JudgeConfig = z.infer<typeof JudgeConfig>;
export type JudgeConfigInput = z.input<typeof JudgeConfig>;

export const JudgesFile = z.union([z.array(JudgeConfig), z.strictObject({ judges: z.array(JudgeConfig) })]).transform((v) => (Array.isArray(v) ? v : v.judges));

export const PanelFile = z.strictObject({
  panel: z.array(JudgeConfig).min(2, "a panel needs at least two judges"),
  arbiters: z.array(JudgeConfig).min(1, "at least one arbiter is needed"),
});
export type PanelFile = z.infer<typeof PanelFile>;

/** Reads and validates a config file; every problem is a ConfigError naming the file. */
export function readConfigFile<T extends z.ZodType>(schema: T, path: string): z.output<T> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read config ${path}: ${(err as Error).message}`);
  }
  return parseConfigFile(schema, text, path);
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function parseConfigFile<T extends z.ZodType>(schema: T, text: string, what: string): z.output<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${what}: invalid JSON (${(err as Error).message})`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new ConfigError(`${what}: invalid config:\n${lines.join("\n")}`);
  }
  return parsed.data;
}

/** Fills the prompt version for the role and rejects versions that do not exist. */
export function resolvePromptVersion(config: JudgeConfig, role: "judge" | "arbiter"): string {
  const expected = role === "judge" ? PROMPT_VERSION : ARBITER_PROMPT_VERSION;
  if (config.promptVersion !== undefined && config.promptVersion !== expected) {
    throw new ConfigError(`${config.name}: unknown ${role} prompt version "${config.promptVersion}" (this build has ${expected})`);
  }
  return expected;
}

export function assertUniqueNames(configs: readonly JudgeConfig[]): void {
  const seen = new Set<string>();
  for (const c of configs) {
    if (seen.has(c.name)) throw new ConfigError(`judge name "${c.name}" is used twice`);
    seen.add(c.name);
  }
}

export function resolveApiKey(config: JudgeConfig, env: Record<string, string | undefined>): string {
  if (config.apiKeyEnv === undefined) return "unused";
  const key = env[config.apiKeyEnv];
  if (!key) throw new ConfigError(`${config.name}: environment variable ${config.apiKeyEnv} (apiKeyEnv) is not set`);
  return key;
}
