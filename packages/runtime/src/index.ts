export { BoolEnv, ConfigError, ListEnv, parseEnv, redactConfig, redactUrl } from "./env.ts";
export { createRegistry, type ReadinessCheck, startOpsServer } from "./http.ts";
export { createLogger, type Logger } from "./logger.ts";
export { Shutdown } from "./shutdown.ts";
