/**
 * `tracesift fleet`: the whole fleet as long-lived local processes, without Docker — the simulator
 * (unless FIREWORKS_API_KEY is set), ingest, N judge workers and the collector, on real Kafka and
 * Redis. Ctrl-C stops every service the way a deployment would (SIGTERM, in-flight jobs drain).
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { ensureTopics, KafkaEnv } from "@tracesift/kafka";
import { RedisEnv } from "@tracesift/queue";
import { parseEnv } from "@tracesift/runtime";
import { z } from "zod";
import { CliError, checkKafka, cliKafka, cliRedis, ConnectEnv, redactUrl } from "./connect.ts";
import { portInUse, REPO_ROOT, type RunningService, startService, waitForHttp, watchServices } from "./fleet.ts";
import type { Command } from "./main.ts";
import { parseCommandArgs, stringArg, UsageError } from "./usage.ts";

const HELP = `tracesift fleet [--workers <n>] [--base-port <port>] [--sim-port <port>]

Runs the fleet in the foreground until Ctrl-C: the simulated Fireworks server (unless
FIREWORKS_API_KEY is set: then the workers call JUDGE_BASE_URL, Fireworks by default, with
JUDGE_MODEL), ingest on INPUT_TOPICS (default traces), N judge workers and the collector. Prints
where each service listens and where its log is. Every other setting comes from the environment,
as for the services themselves (see the README's Configuration table).

  --workers <n>       judge workers (default 2)
  --base-port <port>  collector /metrics here, ingest on +1, workers on +2… (default 9464)
  --sim-port <port>   the simulator's port (default 8787)
`;

const FleetEnv = KafkaEnv.extend(RedisEnv.shape)
  .extend(ConnectEnv.shape)
  .extend({
    INPUT_TOPICS: z.string().default("traces"),
    OUTPUT_TOPIC: z.string().default("traces.judged"),
    DEAD_LETTER_TOPIC: z.string().default("traces.dlq"),
  });

function intArg(raw: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name}: expected an integer from ${min} to ${max}, got "${raw}"\n\n${HELP}`);
  return n;
}

export const command: Command = {
  summary: "run the fleet locally until Ctrl-C (simulator unless FIREWORKS_API_KEY is set)",
  run: async ({ argv, logger }) => {
    const args = parseCommandArgs(argv, { workers: { type: "string" }, "base-port": { type: "string" }, "sim-port": { type: "string" } }, HELP);
    if (!args) return 0;
    const workers = intArg(stringArg(args, "workers"), "workers", 2, 1, 64);
    const basePort = intArg(stringArg(args, "base-port"), "base-port", 9464, 1024, 65535 - 1 - workers);
    const simPort = intArg(stringArg(args, "sim-port"), "sim-port", 8787, 1024, 65535);
    const env = parseEnv(FleetEnv);
    const realKey = process.env.FIREWORKS_API_KEY;

    const ports: { name: string; port: number }[] = [
      ...(realKey ? [] : [{ name: "fireworks-sim", port: simPort }]),
      { name: "collector", port: basePort },
      { name: "ingest", port: basePort + 1 },
      ...Array.from({ length: workers }, (_, i) => ({ name: `judge-worker-${i + 1}`, port: basePort + 2 + i })),
    ];
    for (const p of ports) {
      if (await portInUse(p.port)) throw new CliError(`port ${p.port} (${p.name}) is in use; stop what listens there or pick others with --base-port / --sim-port`);
    }
    const kafka = cliKafka(env, "tracesift-fleet", logger);
    await checkKafka(kafka, env, []);
    (await cliRedis(env.REDIS_URL, env)).disconnect();
    const inputs = env.INPUT_TOPICS.split(",").map((t) => t.trim());
    await ensureTopics(kafka, [...inputs, env.OUTPUT_TOPIC, env.DEAD_LETTER_TOPIC].map((topic) => ({ topic })));

    const logDir = join(REPO_ROOT, ".cache/fleet", `${new Date().toISOString().replace(/[:.]/g, "-")}-${randomBytes(2).toString("hex")}`);
    const common = { KAFKA_BROKERS: env.KAFKA_BROKERS, REDIS_URL: env.REDIS_URL, QUEUE_PREFIX: env.QUEUE_PREFIX, JUDGE_QUEUE: env.JUDGE_QUEUE };
    const judgeEnv: Record<string, string> = realKey ? {} : { FIREWORKS_API_KEY: "sim-key", JUDGE_BASE_URL: `http://127.0.0.1:${simPort}/inference/v1` };
    const services: RunningService[] = [];
    const portOf = new Map(ports.map((p) => [p.name, p.port]));
    const start = (service: Parameters<typeof startService>[0]["service"], name: string, extra: Record<string, string>) => {
      const s = startService({ service, name, env: { ...common, ...extra }, logDir });
      services.push(s);
      return s;
    };
    const stop = async () => {
      watch?.stopping();
      await Promise.all(services.map((s) => s.stop()));
    };
    let watch: ReturnType<typeof watchServices> | undefined;
    const interrupted = new Promise<void>((resolve) => {
      process.once("SIGINT", () => resolve());
      process.once("SIGTERM", () => resolve());
    });
    try {
      if (!realKey) {
        const sim = start("fireworks-sim", "fireworks-sim", { SIM_PORT: String(simPort) });
        await waitForHttp(`http://127.0.0.1:${simPort}/_sim/stats`, 60_000, sim);
      }
      start("collector", "collector", { METRICS_PORT: String(basePort) });
      start("ingest", "ingest", { METRICS_PORT: String(basePort + 1) });
      for (let i = 0; i < workers; i++) start("judge-worker", `judge-worker-${i + 1}`, { ...judgeEnv, METRICS_PORT: String(basePort + 2 + i) });
      watch = watchServices(services);
      await Promise.race([
        watch.died,
        Promise.all(services.filter((s) => s.name !== "fireworks-sim").map((s) => waitForHttp(`http://127.0.0.1:${portOf.get(s.name)}/readyz`, 90_000, s))),
      ]);
      const lines = services.map((s) => {
        const port = portOf.get(s.name);
        const url = s.name === "fireworks-sim" ? `http://127.0.0.1:${port}/inference/v1` : `http://127.0.0.1:${port}/metrics`;
        return `  ${s.name.padEnd(16)} ${url.padEnd(40)} ${s.logFile}`;
      });
      process.stdout.write(
        `fleet is up: Kafka ${env.KAFKA_BROKERS}, Redis ${redactUrl(env.REDIS_URL)}, judge: ${realKey ? (process.env.JUDGE_BASE_URL ?? "Fireworks") : "simulator"}\n` +
          `  input ${inputs.join(", ")} → output ${env.OUTPUT_TOPIC}, dead letters ${env.DEAD_LETTER_TOPIC}\n${lines.join("\n")}\nCtrl-C stops the fleet.\n`,
      );
      await Promise.race([watch.died, interrupted]);
      process.stdout.write("stopping the fleet (in-flight jobs drain)…\n");
      await stop();
      process.stdout.write("fleet stopped\n");
      return 0;
    } catch (err) {
      await stop();
      throw err;
    }
  },
};
