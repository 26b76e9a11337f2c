import { parseArgs } from "node:util";
import { KafkaEnv } from "@tracesift/kafka";
import { RedisEnv } from "@tracesift/queue";
import { createLogger, parseEnv } from "@tracesift/runtime";
import { runDemo } from "./demo.ts";

const USAGE = `tracesift <command> [options]

Commands:
  demo        run the fleet end to end on sample conversations and print their verdicts
`;

const env = parseEnv(KafkaEnv.extend(RedisEnv.shape));
const logger = createLogger({ service: "cli", level: process.env.LOG_LEVEL ?? "info" });
const { positionals } = parseArgs({ allowPositionals: true, strict: false });
const command = positionals[0];

switch (command) {
  case "demo":
    process.exitCode = await runDemo({ logger, kafkaBrokers: env.KAFKA_BROKERS, redisUrl: env.REDIS_URL });
    break;
  default:
    process.stderr.write(USAGE);
    process.exitCode = command ? 2 : 0;
}
