import { z } from "zod";

/** "true"/"1"/"yes" → true; anything else in the set of false words → false. Unset uses the default. */
export const BoolEnv = z
  .union([z.boolean(), z.string()])
  .transform((v, ctx) => {
    if (typeof v === "boolean") return v;
    const s = v.trim().toLowerCase();
    if (["true", "1", "yes", "on"].includes(s)) return true;
    if (["false", "0", "no", "off", ""].includes(s)) return false;
    ctx.addIssue({ code: "custom", message: `expected a boolean, got "${v}"` });
    return z.NEVER;
  });

/** Comma-separated list; empty entries dropped. */
export const ListEnv = z.string().transform((s) =>
  s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x.length > 0),
);

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Parse the environment once at start-up. The error lists every bad variable at once,
 * so an operator fixes a deployment in one pass instead of one crash per variable.
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  // Empty strings mean "unset": compose files and k8s often pass VAR= for optional settings.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join(".") || "(env)"}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  return result.data;
}

/** Names of settings whose values must never be printed (FIREWORKS_API_KEY, apiKey, KAFKA_SASL_PASSWORD…). */
const SECRET_NAME = /(key|token|secret|password|credentials?)$/i;

/**
 * A copy of a config object with secret-looking fields masked, safe to log at start-up. URLs lose
 * their password wherever they appear (`REDIS_URL=redis://:hunter2@host`).
 */
export function redactConfig(config: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(config).map(([k, v]) => [k, SECRET_NAME.test(k) ? (v ? "[redacted]" : v) : typeof v === "string" ? redactUrl(v) : v]),
  );
}

/** `scheme://user:password@host` → `scheme://user:[redacted]@host`, in any string; other text unchanged. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@\s]+@/gi, "$1[redacted]@");
}
