export { BoolEnv, ConfigError, ListEnv, parseEnv, redactConfig, SECRET_ENV_PATTERN } from "./env.ts";
export { createRegistry, type ReadinessCheck, startOpsServer } from "./http.ts";
export { createLogger, type Logger } from "./logger.ts";
export { Shutdown } from "./shutdown.ts";
