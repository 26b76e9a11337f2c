/**
 * Verdicts you can trust, end to end on the real broker: confidence from logprobs, a second
 * opinion inside the uncertain band, canaries routed away from the users' output topic and scored,
 * and verdicts exported as OTLP evaluation events.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { createLogger } from "@tracesift/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDatasetFiles } from "../packages/evaluation/src/index.ts";
import { ExportLogsServiceRequest } from "../packages/otel-eval/src/otlp-schema.ts";
import { CanaryEnv, type CanaryRun, startCanary } from "../services/cli/src/canary.ts";
import { KAFKA_BROKERS, openaiEvent, startTestFleet, type TestFleet } from "./helpers/fleet.ts";

const SAMPLE = join(resolve(import.meta.dirname, ".."), "services/cli/samples/eval/sample.jsonl");
const TRACE = "5b8efff798038103d269b633813fc60c";

let fleet: TestFleet;
let canary: CanaryRun | undefined;
let otlp: Server;
const exported: unknown[] = [];
const canaryTopic = `t-${randomUUID().slice(0, 8)}-canary`;

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  otlp = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      exported.push(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => otlp.listen(0, "127.0.0.1", r));
  fleet = await startTestFleet({
    workers: 1,
    workerEnv: {
      JUDGE_LOGPROBS: "true",
      UNCERTAIN_BAND: "0.35-0.65",
      CANARY_TOPIC: canaryTopic,
      OTLP_EVALUATIONS_ENDPOINT: `http://127.0.0.1:${(otlp.address() as AddressInfo).port}/v1/logs`,
      OTEL_BLRP_SCHEDULE_DELAY: "200",
    },
  });
}, 180_000);

afterAll(async () => {
  await canary?.stop();
  await fleet?.stop();
  const admin = fleet?.kafka.admin();
  if (admin) {
    await admin.connect();
    await admin.deleteTopics({ topics: [canaryTopic] }).catch(() => undefined);
    await admin.disconnect();
  }
  await new Promise<void>((r) => otlp.close(() => r()));
});

const turns = (last: string): [string, string][] => [
  ["user", "Book Dana on Tuesday"],
  ["assistant", "Booked Wednesday 3pm"],
  ["user", last],
];

describe("confidence, second opinions and OTLP evaluation events", () => {
  it("carries confidence, asks the arbiter inside the band only, and exports each verdict linked to its trace", async () => {
    await fleet.produce([
      openaiEvent("q-unsure", turns("No, I said Tuesday [sim:confidence:0.55]"), { trace_id: TRACE }),
      openaiEvent("q-sure", turns("Thanks! [sim:confidence:0.97]")),
    ]);
    const results = await until("both verdicts", () => {
      const judged = fleet.records.flatMap((r) => (r.topic === "output" && r.result.status === "judged" ? [r.result] : []));
      const unsure = judged.find((r) => r.conversation_id === "q-unsure");
      const sure = judged.find((r) => r.conversation_id === "q-sure");
      return unsure && sure ? { unsure, sure } : undefined;
    });
    expect(results.unsure.verdict.confidence).toBeCloseTo(0.55, 3);
    expect(results.unsure.verdict.second_opinion).toMatchObject({ perceived_error: true });
    expect(results.sure.verdict.confidence).toBeCloseTo(0.97, 3);
    expect(results.sure.verdict.second_opinion).toBeUndefined();

    const records = await until("exported events", () => {
      const all = exported.flatMap((body) => ExportLogsServiceRequest.parse(body).resourceLogs.flatMap((r) => r.scopeLogs.flatMap((s) => s.logRecords)));
      return all.length >= 2 ? all : undefined;
    });
    expect(records.every((r) => r.eventName === "gen_ai.evaluation.result")).toBe(true);
    const linked = records.find((r) => r.traceId === TRACE);
    expect(linked?.attributes?.find((a) => a.key === "gen_ai.conversation.id")?.value).toEqual({ stringValue: "q-unsure" });
  });
});

describe("live quality canaries", () => {
  it("feeds marked canaries whose verdicts go to the canary topic, never the output topic, and scores them", async () => {
    const env = CanaryEnv.parse({
      KAFKA_BROKERS,
      INPUT_TOPIC: fleet.topics.input,
      CANARY_TOPIC: canaryTopic,
      CANARY_RATE_PER_MIN: "600",
      CANARY_GROUP: `test-${fleet.id}-canary`,
      METRICS_PORT: "0",
    });
    const [file] = readDatasetFiles([SAMPLE]);
    canary = await startCanary(env, file!.dataset.items, createLogger({ service: "test-canary", level: "warn" }));
    const run = canary;
    const metrics = await until("20 scored canaries", async () => {
      const text = await (await fetch(`http://127.0.0.1:${run.port}/metrics`)).text();
      const n = Number(/^tracesift_canary_window_verdicts\{[^}]*\} (\S+)$/m.exec(text)?.[1] ?? 0);
      return n >= 20 ? text : undefined;
    }, 90_000);
    await run.stop();
    canary = undefined;
    expect(run.fed()).toBeGreaterThanOrEqual(20);
    const accuracyLine = /^tracesift_canary_accuracy\{([^}]*)\} (\S+)$/m.exec(metrics);
    expect(accuracyLine?.[1]).toContain(`model="accounts/fireworks/models/qwen3p5-35b-a3b"`);
    const accuracy = Number(accuracyLine?.[2]);
    // The simulator's cue rules agree with most of the sample's labels, not all of them.
    expect(accuracy).toBeGreaterThan(0.5);
    expect(accuracy).toBeLessThanOrEqual(1);
    expect(metrics).toMatch(/^tracesift_canary_kappa\{/m);
    expect(metrics).toMatch(/^tracesift_canary_kappa_floor(\{[^}]*\})? 0.6$/m);
    // Not one canary reached the users' output topic.
    expect(fleet.records.filter((r) => r.key?.startsWith("canary:"))).toEqual([]);
  }, 120_000);
});
