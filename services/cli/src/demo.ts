import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ensureTopics, KafkaEnv } from "@tracesift/kafka";
import { RedisEnv } from "@tracesift/queue";
import { type Logger, parseEnv } from "@tracesift/runtime";
import { checkKafka, cliKafka, cliRedis, ConnectEnv } from "./connect.ts";
import { freePort, REPO_ROOT, type RunningService, startService, waitForHttp, watchServices } from "./fleet.ts";
import type { Command } from "./main.ts";
import { type CollectedRecord, collectRecords, endOffsets } from "./results.ts";
import { parseCommandArgs } from "./usage.ts";

const HELP = `tracesift demo

Starts the simulated Fireworks server (unless FIREWORKS_API_KEY is set), ingest and two judge
workers on free ports against Kafka (KAFKA_BROKERS) and Redis (REDIS_URL), sends the sample
conversations of services/cli/samples/demo.jsonl to the input topic (INPUT_TOPICS, default
traces), prints what came back for each (verdict, skip or dead letter) from OUTPUT_TOPIC and
DEAD_LETTER_TOPIC, and stops the services. Logs: .cache/demo/<run>/.
`;

/**
 * The whole fleet on real Kafka and Redis: simulator (unless a Fireworks key is set), ingest and
 * two judge workers as separate processes; sample conversations in, verdicts read back out.
 */
export async function runDemo(options: { logger: Logger; kafka: KafkaEnv & ConnectEnv; redisUrl: string }): Promise<number> {
  const { logger } = options;
  const runId = randomBytes(3).toString("hex");
  const logDir = join(REPO_ROOT, ".cache/demo", runId);
  // The fleet's own variables, so a demo can run beside another fleet on the same broker.
  const topics = {
    input: process.env.INPUT_TOPICS?.split(",")[0]?.trim() || "traces",
    output: process.env.OUTPUT_TOPIC || "traces.judged",
    dlq: process.env.DEAD_LETTER_TOPIC || "traces.dlq",
  };
  const realKey = process.env.FIREWORKS_API_KEY;
  const common = {
    KAFKA_BROKERS: options.kafka.KAFKA_BROKERS,
    REDIS_URL: options.redisUrl,
    INPUT_TOPICS: topics.input,
    OUTPUT_TOPIC: topics.output,
    DEAD_LETTER_TOPIC: topics.dlq,
    LOG_LEVEL: "info",
  };
  // Free ports, not fixed ones: with a fleet already on 9465 the demo's services would die with
  // EADDRINUSE while the other fleet's /readyz and verdicts passed for theirs.
  const [simPort, ingestPort, ...workerPorts] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const judgeEnv = realKey
    ? { FIREWORKS_API_KEY: realKey }
    : { FIREWORKS_API_KEY: "sim-key", JUDGE_BASE_URL: `http://127.0.0.1:${simPort}/inference/v1` };

  const kafka = cliKafka(options.kafka, "tracesift-demo", logger);
  await checkKafka(kafka, options.kafka, []);
  (await cliRedis(options.redisUrl, options.kafka)).disconnect();
  await ensureTopics(kafka, [{ topic: topics.input }, { topic: topics.output }, { topic: topics.dlq }]);

  const services: RunningService[] = [];
  let watch: ReturnType<typeof watchServices> | undefined;
  try {
    if (!realKey) {
      const sim = startService({ service: "fireworks-sim", env: { SIM_PORT: String(simPort), SIM_LATENCY_MS: "150" }, logDir });
      services.push(sim);
      await waitForHttp(`http://127.0.0.1:${simPort}/_sim/stats`, 60_000, sim);
    }
    const ingest = startService({ service: "ingest", env: { ...common, METRICS_PORT: String(ingestPort) }, logDir });
    services.push(ingest);
    for (const [i, port] of workerPorts.entries()) {
      services.push(
        startService({
          service: "judge-worker",
          name: `judge-worker-${i + 1}`,
          env: { ...common, ...judgeEnv, METRICS_PORT: String(port), JUDGE_CONCURRENCY: "4" },
          logDir,
        }),
      );
    }
    // From here on, any of the demo's own services exiting fails the demo, naming its log.
    watch = watchServices(services);
    const ports = [ingestPort, ...workerPorts];
    await Promise.race([
      watch.died,
      Promise.all(services.filter((s) => s.name !== "fireworks-sim").map((s, i) => waitForHttp(`http://127.0.0.1:${ports[i]}/readyz`, 90_000, s))),
    ]);
    logger.info({ logDir, judge: realKey ? "Fireworks" : "simulator" }, "fleet is up");

    const lines = readFileSync(join(REPO_ROOT, "services/cli/samples/demo.jsonl"), "utf8").split("\n").filter((l) => l.trim());
    const events = lines.map((line, i) => {
      try {
        const parsed = JSON.parse(line) as { id?: unknown };
        const id = `${typeof parsed.id === "string" ? parsed.id : `event-${i}`}-${runId}`;
        return { key: id, value: JSON.stringify({ ...parsed, id }) };
      } catch {
        return { key: `malformed-${i}-${runId}`, value: line };
      }
    });

    const admin = kafka.admin();
    await admin.connect();
    const from = await endOffsets(admin, [topics.output, topics.dlq]);
    await admin.disconnect();

    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({ topic: topics.input, acks: -1, messages: events });
    await producer.disconnect();
    logger.info({ events: events.length, topic: topics.input }, "sample events produced");

    const keys = new Set(events.map((e) => e.key));
    const mine = (r: CollectedRecord) => r.key !== null && keys.has(r.key);
    const records = await Promise.race([
      watch.died,
      collectRecords({
      kafka,
      outputTopic: topics.output,
      deadLetterTopic: topics.dlq,
      from,
      groupId: `tracesift-demo-reader-${runId}`,
      done: (rs) => new Set(rs.filter(mine).map((r) => r.key)).size >= keys.size,
      timeoutMs: 120_000,
      }),
    ]);
    printTable(records.filter(mine), runId);
    return 0;
  } finally {
    watch?.stopping();
    await Promise.all(services.map((s) => s.stop()));
  }
}

function printTable(records: CollectedRecord[], runId: string): void {
  const rows = records.map((r) => {
    const id = (r.key ?? "").replace(`-${runId}`, "");
    if (r.topic === "dlq") return [id, "dead-letter", r.letter.reason_code, r.letter.reason, "", ""];
    const res = r.result;
    if (res.status === "skipped") return [id, "skipped", res.skip_reason, "", "", ""];
    return [
      id,
      "judged",
      res.verdict.perceived_error ? "PERCEIVED ERROR" : "no error",
      res.verdict.reason,
      String(res.usage.total_tokens),
      `$${res.cost_usd.toFixed(6)}`,
    ];
  });
  const header = ["conversation", "status", "verdict", "reason", "tokens", "cost"];
  const widths = header.map((h, i) => Math.min(70, Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length))));
  const fmt = (r: string[]) => r.map((c, i) => c.slice(0, widths[i]).padEnd(widths[i] ?? 0)).join("  ");
  console.log(`\n${fmt(header)}\n${widths.map((w) => "-".repeat(w)).join("  ")}`);
  for (const r of rows) console.log(fmt(r));
  const judged = records.filter((r) => r.topic === "output" && r.result.status === "judged").length;
  const cost = records.reduce((s, r) => s + (r.topic === "output" && r.result.status === "judged" ? r.result.cost_usd : 0), 0);
  console.log(`\n${records.length} events: ${judged} judged, total cost $${cost.toFixed(6)}\n`);
}

export const command: Command = {
  summary: "run the fleet end to end on sample conversations and print their verdicts",
  run: async ({ argv, logger }) => {
    if (!parseCommandArgs(argv, {}, HELP)) return 0;
    const env = parseEnv(KafkaEnv.extend(RedisEnv.shape).extend(ConnectEnv.shape));
    return runDemo({ logger, kafka: env, redisUrl: env.REDIS_URL });
  },
};
