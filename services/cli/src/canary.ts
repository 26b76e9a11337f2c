/**
 * `tracesift canary`: feeds labelled conversations into the live input topic at a small rate,
 * marked so the judge workers publish their verdicts to the canary topic instead of the users'
 * output topic, and scores those verdicts against the labels: rolling accuracy, precision, recall
 * and Cohen's kappa per judge version, served as Prometheus metrics until stopped.
 */
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { canaryEvent, type DatasetItem, RollingCanaryScore, readDatasetFiles } from "@tracesift/evaluation";
import { createKafka, ensureTopics, KafkaEnv } from "@tracesift/kafka";
import { canaryMetrics } from "@tracesift/metrics";
import { createRegistry, type Logger, parseEnv, startOpsServer } from "@tracesift/runtime";
import { JudgeResult } from "@tracesift/schemas";
import { z } from "zod";
import type { Command } from "./main.ts";
import { parseCommandArgs, stringArg, UsageError } from "./usage.ts";

const SAMPLE = fileURLToPath(new URL("../samples/eval/sample.jsonl", import.meta.url));

const HELP = `tracesift canary [--dataset <labelled.jsonl>] [--rate <per minute>] [--duration <seconds>]

Feeds labelled conversations (default: the project's sample) into INPUT_TOPIC at a small rate,
each marked in its metadata (tracesift_canary, tracesift_canary_label) so judge workers publish
its verdict to CANARY_TOPIC, never to the users' output topic. Scores those verdicts against the
labels over CANARY_WINDOW_MS per judge model and prompt version, and serves them on
METRICS_PORT/metrics: tracesift_canary_{accuracy,precision,recall,kappa,window_verdicts}.
Judge workers must run with the same CANARY_TOPIC. Runs until SIGINT/SIGTERM or --duration.

Environment: KAFKA_*, INPUT_TOPIC (traces), CANARY_TOPIC (traces.canary), CANARY_RATE_PER_MIN (2),
CANARY_WINDOW_MS (86400000), CANARY_KAPPA_FLOOR (0.6), CANARY_GROUP (tracesift-canary),
METRICS_PORT (9467).
`;

export const CanaryEnv = KafkaEnv.extend({
  INPUT_TOPIC: z.string().min(1).default("traces"),
  CANARY_TOPIC: z.string().min(1).default("traces.canary"),
  CANARY_RATE_PER_MIN: z.coerce.number().positive().max(600).default(2),
  CANARY_WINDOW_MS: z.coerce.number().int().positive().default(24 * 3600_000),
  CANARY_KAPPA_FLOOR: z.coerce.number().min(-1).max(1).default(0.6),
  CANARY_GROUP: z.string().min(1).default("tracesift-canary"),
  METRICS_PORT: z.coerce.number().int().nonnegative().default(9467),
});
export type CanaryEnv = z.output<typeof CanaryEnv>;

export type CanaryRun = { port: number; run: string; fed: () => number; stop: () => Promise<void> };

/** Starts feeding and scoring; the test seam of the command. */
export async function startCanary(env: CanaryEnv, items: readonly DatasetItem[], logger: Logger): Promise<CanaryRun> {
  const labelled = items.filter((i) => i.label !== undefined && i.judgeable);
  if (labelled.length === 0) throw new UsageError("the canary dataset has no labelled, judgeable conversation");
  const run = randomUUID().slice(0, 8);
  const registry = createRegistry("canary");
  const metrics = canaryMetrics(registry);
  metrics.kappaFloor.set(env.CANARY_KAPPA_FLOOR);
  const score = new RollingCanaryScore(env.CANARY_WINDOW_MS);

  const kafka = createKafka(env, "tracesift-canary", logger);
  await ensureTopics(kafka, [{ topic: env.INPUT_TOPIC }, { topic: env.CANARY_TOPIC }]);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const consumer = kafka.consumer({ groupId: env.CANARY_GROUP, maxWaitTimeInMs: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic: env.CANARY_TOPIC, fromBeginning: false });

  const publish = () => {
    // Scores are recomputed whole: a version whose window emptied reports nothing rather than stale values.
    for (const g of [metrics.window, metrics.accuracy, metrics.precision, metrics.recall, metrics.kappa]) g.reset();
    for (const s of score.scores()) {
      const labels = { model: s.model, prompt_version: s.prompt_version };
      metrics.window.set(labels, s.n);
      if (s.accuracy !== null) metrics.accuracy.set(labels, s.accuracy);
      if (s.precision !== null) metrics.precision.set(labels, s.precision);
      if (s.recall !== null) metrics.recall.set(labels, s.recall);
      if (s.kappa !== null) metrics.kappa.set(labels, s.kappa);
    }
  };
  await consumer.run({
    eachMessage: async ({ message }) => {
      let json: unknown;
      try {
        json = JSON.parse(message.value?.toString("utf8") ?? "null");
      } catch {
        return;
      }
      const parsed = JudgeResult.safeParse(json);
      if (!parsed.success || parsed.data.status !== "judged") return;
      if (score.add(parsed.data)) {
        metrics.scored.inc({ model: parsed.data.judge.model, prompt_version: parsed.data.judge.prompt_version });
        publish();
      }
    },
  });

  let seq = 0;
  let feeding: Promise<void> = Promise.resolve();
  const feed = () => {
    const item = labelled[seq % labelled.length]!;
    const event = canaryEvent(item, run, ++seq);
    feeding = producer
      .send({ topic: env.INPUT_TOPIC, acks: -1, messages: [event] })
      .then(() => metrics.fed.inc())
      .catch((err: unknown) => logger.warn({ err: err instanceof Error ? err.message : String(err) }, "could not feed a canary"));
  };
  feed();
  const feeder = setInterval(feed, 60_000 / env.CANARY_RATE_PER_MIN);
  // Verdicts age out of the window even when none arrive.
  const refresher = setInterval(publish, Math.min(60_000, env.CANARY_WINDOW_MS));
  const ops = await startOpsServer({ port: env.METRICS_PORT, registry, readiness: [] });
  logger.info({ run, input: env.INPUT_TOPIC, canary_topic: env.CANARY_TOPIC, rate_per_min: env.CANARY_RATE_PER_MIN, port: ops.port }, "feeding canaries");

  return {
    port: ops.port,
    run,
    fed: () => seq,
    stop: async () => {
      clearInterval(feeder);
      clearInterval(refresher);
      await feeding;
      await Promise.allSettled([producer.disconnect(), consumer.disconnect(), ops.close()]);
    },
  };
}

export const command: Command = {
  summary: "feed labelled canaries into the live stream and score the judge on them (rolling accuracy, P/R, kappa)",
  run: async ({ argv, logger }) => {
    const args = parseCommandArgs(argv, { dataset: { type: "string" }, rate: { type: "string" }, duration: { type: "string" } }, HELP);
    if (!args) return 0;
    const rate = stringArg(args, "rate");
    const env = parseEnv(CanaryEnv, { ...process.env, ...(rate !== undefined ? { CANARY_RATE_PER_MIN: rate } : {}) });
    const duration = Number(stringArg(args, "duration") ?? Number.POSITIVE_INFINITY);
    if (!(duration > 0)) throw new UsageError("--duration must be a positive number of seconds");
    const [file] = readDatasetFiles([stringArg(args, "dataset") ?? SAMPLE]);
    const canary = await startCanary(env, file?.dataset.items ?? [], logger);
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
      if (Number.isFinite(duration)) setTimeout(resolve, duration * 1000).unref();
    });
    await canary.stop();
    return 0;
  },
};
