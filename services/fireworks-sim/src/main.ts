import { createLogger, redactConfig, Shutdown } from "@tracesift/runtime";
// By path, not by name: this service's package.json is also named @tracesift/fireworks-sim, so pnpm
// links that name to the service itself. Switch to the package name once the service is renamed.
import { createSimulator } from "@tracesift/fireworks-sim";
import { readEnv } from "./env.ts";

const env = readEnv();
const logger = createLogger({ service: "fireworks-sim", level: env.LOG_LEVEL });
logger.info({ config: redactConfig(env) }, "starting");

const sim = createSimulator({
  latencyMs: env.SIM_LATENCY_MS,
  latencyPerKTokensMs: env.SIM_LATENCY_PER_KTOKENS_MS,
  latencyJitterMs: env.SIM_LATENCY_JITTER_MS,
  rpm: env.SIM_RPM,
  tpm: env.SIM_TPM,
  promptTokensPerSec: env.SIM_PROMPT_TPS,
  uncachedPromptTokensPerSec: env.SIM_UNCACHED_PROMPT_TPS,
  generatedTokensPerSec: env.SIM_GENERATED_TPS,
  accountRpm: env.SIM_ACCOUNT_RPM,
  rampStartShare: env.SIM_RAMP_START_SHARE,
  rampMs: env.SIM_RAMP_MS,
  replicas: env.SIM_REPLICAS,
  sendRetryAfter: env.SIM_SEND_RETRY_AFTER,
  sendRateLimitHeaders: env.SIM_SEND_RATE_LIMIT_HEADERS,
  apiKey: env.SIM_API_KEY,
  models: env.SIM_MODELS,
  // Debug, not info: a benchmark sends thousands of requests a minute; /_sim/stats has the totals.
  onRequest: (event) => logger.debug(event, "request"),
});

const shutdown = new Shutdown(logger, 5_000);
shutdown.add("simulator", () => sim.close());
shutdown.onSignals();

try {
  const { url } = await sim.listen(env.SIM_PORT, env.SIM_HOST);
  logger.info({ url, admin: url.replace(/\/inference\/v1$/, "/_sim/") }, "listening");
} catch (err) {
  logger.fatal({ err }, "could not start");
  process.exit(1);
}
