import { pino, type Logger } from "pino";

export type { Logger };

/** Paths pino masks wherever they appear, so an API key in a config or error object never reaches logs. */
const REDACT_PATHS = [
  "apiKey",
  "*.apiKey",
  "config.apiKey",
  "headers.authorization",
  "*.headers.authorization",
  "err.headers.authorization",
  "FIREWORKS_API_KEY",
  "*.FIREWORKS_API_KEY",
];

export function createLogger(options: { service: string; level?: string }): Logger {
  return pino({
    name: options.service,
    level: options.level ?? "info",
    base: { service: options.service },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
