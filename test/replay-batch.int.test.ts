/**
 * `tracesift replay --batch` end to end, against the simulated Fireworks batch endpoints on the
 * real Kafka and Redis: same verdicts as the live client, nothing paid twice across a stop and a
 * resume (and a job that fails, one that expires half-done, an invalid answer, a request the
 * provider errors on), exactly one record per conversation, nothing new on a second run.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { batchCostUsd, batchPrice } from "@tracesift/batch";
import { createSimulator } from "@tracesift/fireworks-sim";
import { createJudgeClient, DEFAULT_PRICES, type TokenPrice } from "@tracesift/judge";
import { createKafka, ensureTopics, type Consumer } from "@tracesift/kafka";
import { createLogger } from "@tracesift/runtime";
import { JudgedResult } from "@tracesift/schemas";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { REPO_ROOT } from "../services/cli/src/fleet.ts";
import { KAFKA_BROKERS, openaiEvent, REDIS_URL } from "./helpers/fleet.ts";

const WAIT = { timeout: 60_000, interval: 200 };
const id = randomBytes(4).toString("hex");
const topics = { input: `bt-${id}-history`, output: `bt-${id}-judged`, dlq: `bt-${id}-dlq` };
const stateDir = join(REPO_ROOT, ".cache", "test-replay-batch", id);

type Seen = { topic: string; key: string; value: Record<string, unknown> };

function cli(simUrl: string, args: string[], env: Record<string, string> = {}) {
  const child: ChildProcess = spawn(join(REPO_ROOT, "node_modules/.bin/tsx"), [join(REPO_ROOT, "services/cli/src/main.ts"), "replay", ...args], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      KAFKA_BROKERS,
      REDIS_URL,
      QUEUE_PREFIX: `bt-${id}`,
      OUTPUT_TOPIC: topics.output,
      DEAD_LETTER_TOPIC: topics.dlq,
      JUDGE_BASE_URL: simUrl,
      FIREWORKS_API_KEY: "test",
      FIREWORKS_ACCOUNT_ID: "tracesift-test",
      BATCH_STATE_DIR: stateDir,
      BATCH_POLL_MS: "250",
      BATCH_MAX_FILE_LINES: "8",
      BATCH_MAX_JOBS: "2",
      BATCH_FALLBACK: "dlq",
      LOG_LEVEL: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => {
    stdout += d;
  });
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.once("exit", (code) => resolve({ code, stdout, stderr })));
  return { child, exited };
}

function summary(stdout: string, tag: "BATCH" | "DRY-RUN"): Record<string, number> {
  const line = stdout.split("\n").find((l) => l.startsWith(`${tag} `));
  if (!line) throw new Error(`no ${tag} line in:\n${stdout}`);
  return JSON.parse(line.slice(tag.length + 1));
}

// Every fourth user corrects the assistant: the simulator's verdict then says perceived error.
const turns = (i: number, extra = ""): [string, string][] => [
  ["user", `Question ${i}: what is ${i} squared?${extra}`],
  ["assistant", `It is ${i * i + (i % 4 === 0 ? 1 : 0)}.`],
  ["user", i % 4 === 0 ? "No, that's wrong." : "Thanks!"],
];

describe("replay --batch", () => {
  const sim = createSimulator({ latencyMs: 0 });
  let simUrl = "";
  const batchStats = async () =>
    (await (await fetch(`${new URL(simUrl).origin}/_sim/batch/stats`)).json()) as { jobs: { id: string; state: string }[]; billed: Record<string, number> };
  let consumer: Consumer;
  const seen: Seen[] = [];
  const kafka = createKafka({ KAFKA_BROKERS, KAFKA_SSL: false }, `test-${id}`, createLogger({ service: "test", level: "warn" }));
  const events = [
    ...[...Array(26)].map((_, i) => openaiEvent(`b-${i}`, turns(i), { app: "history" })),
    // One job fails validation once, one expires half-done once: their requests are submitted again.
    openaiEvent("b-fail", turns(40, " [sim:batch-fail-once:f1]")),
    openaiEvent("b-expire", turns(41, " [sim:batch-expire-once:e1]")),
    // An answer that is not a verdict, and a request the provider errors on every time: dead letters.
    openaiEvent("b-malformed", turns(42, " [sim:malformed]")),
    openaiEvent("b-error", turns(43, " [sim:batch-error]")),
    // Not judgeable (no user reply to the assistant): a skipped result, no request.
    openaiEvent("b-skip", [["user", "hello"], ["assistant", "hi"]]),
  ];
  const from = "0:0,1:0,2:0";

  beforeAll(async () => {
    simUrl = (await sim.listen(0)).url;
    await ensureTopics(kafka, [{ topic: topics.input, numPartitions: 3 }, { topic: topics.output, numPartitions: 1 }, { topic: topics.dlq, numPartitions: 1 }]);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: topics.input, messages: events });
    await producer.disconnect();
    consumer = kafka.consumer({ groupId: `bt-${id}-reader`, maxWaitTimeInMs: 200 });
    await consumer.connect();
    await consumer.subscribe({ topics: [topics.output, topics.dlq], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, message }) => {
        seen.push({ topic, key: message.key?.toString() ?? "", value: JSON.parse(message.value?.toString() ?? "{}") });
      },
    });
  });
  afterAll(async () => {
    await consumer?.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => undefined);
    await admin.disconnect();
    await sim.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("estimates both prices in a dry run without calling the model", async () => {
    const dry = await cli(simUrl, ["--topic", topics.input, "--from", from, "--batch", "--dry-run", "--metrics-port", "0"]).exited;
    expect(dry.code, dry.stderr).toBe(0);
    const s = summary(dry.stdout, "DRY-RUN");
    expect(s.conversations_to_judge).toBe(events.length - 1);
    expect(s.estimated_cost_usd_batch).toBeGreaterThan(0);
    expect(s.estimated_cost_usd_batch! / s.estimated_cost_usd_live!).toBeCloseTo(0.5, 2);
    expect((await batchStats()).jobs).toHaveLength(0);
  });

  it("stopped and resumed, judges like live, pays each request once and leaves one record per conversation", async () => {
    const name = `run-${id}`;
    const args = ["--topic", topics.input, "--from", from, "--batch", "--name", name, "--metrics-port", "0"];
    const first = cli(simUrl, args);
    // Stop as Ctrl-C would, once a batch job is running at the provider.
    const statePath = join(stateDir, name, "state.json");
    await vi.waitFor(() => {
      expect(existsSync(statePath)).toBe(true);
      const state = JSON.parse(readFileSync(statePath, "utf8")) as { chunks: { stage: string }[] };
      expect(state.chunks.some((c) => c.stage === "submitted")).toBe(true);
    }, WAIT);
    first.child.kill("SIGINT");
    const stopped = await first.exited;
    expect(stopped.code, stopped.stderr).toBe(130);
    const jobsAtStop = (await batchStats()).jobs.length;

    const second = await cli(simUrl, args).exited;
    expect(second.code, second.stderr).toBe(0);
    const totals = summary(second.stdout, "BATCH");
    expect(totals.resubmitted).toBeGreaterThanOrEqual(2);

    const keys = events.map((e) => e.key);
    await vi.waitFor(() => {
      for (const k of keys) expect(seen.filter((r) => r.key === k), k).toHaveLength(1);
    }, WAIT);

    // Nothing paid twice: the resume followed the jobs it had started instead of creating new ones.
    const stats = await batchStats();
    expect(stats.jobs.slice(0, jobsAtStop).every((j) => j.state !== "JOB_STATE_RUNNING")).toBe(true);
    for (const [customId, n] of Object.entries(stats.billed)) expect(n, customId).toBe(1);
    expect(Object.keys(stats.billed)).toHaveLength(events.length - 2); // all but the skipped and the errored one

    // The same verdicts as the live client gets from the same model, priced at batch rates.
    const live = createJudgeClient({ baseURL: simUrl, apiKey: "test", model: "accounts/fireworks/models/qwen3p5-35b-a3b", timeoutMs: 10_000, maxTokens: 256, responseFormat: "json_schema" });
    const price = batchPrice(DEFAULT_PRICES["accounts/fireworks/models/qwen3p5-35b-a3b"]!, DEFAULT_PRICES["*"] as TokenPrice);
    const judged = seen.filter((r) => r.topic === topics.output && r.value.status === "judged").map((r) => JudgedResult.parse(r.value));
    expect(judged).toHaveLength(events.length - 3);
    for (const r of judged) {
      const event = events.find((e) => e.key === r.conversation_id)!;
      const messages = (JSON.parse(event.value) as { messages: { role: "user" | "assistant"; content: string }[] }).messages;
      expect(r.verdict, r.conversation_id).toEqual((await live.judge({ messages })).verdict);
      expect(r).toMatchObject({ priority: "backfill", judge: { mode: "batch", prompt_version: "pe-2026-11-v1" } });
      expect(r.cost_usd).toBeCloseTo(batchCostUsd(r.usage, price), 9);
    }
    expect(judged.filter((r) => r.verdict.perceived_error).length).toBeGreaterThan(0);
    expect(judged.some((r) => r.usage.cached_prompt_tokens > 0)).toBe(true);
    const letters = seen.filter((r) => r.topic === topics.dlq);
    expect(Object.fromEntries(letters.map((l) => [l.key, l.value.reason_code]))).toEqual({ "b-malformed": "invalid_model_output", "b-error": "judge_failed" });
    expect(seen.find((r) => r.key === "b-skip")?.value).toMatchObject({ status: "skipped", skip_reason: "no_user_reply" });
  });

  it("run again, over the same range, publishes nothing and pays nothing; under another name, re-pays only what has no verdict", async () => {
    const before = await batchStats();
    const records = seen.length;
    const again = await cli(simUrl, ["--topic", topics.input, "--from", from, "--batch", "--name", `run-${id}`, "--metrics-port", "0"]).exited;
    expect(again.code, again.stderr).toBe(0);
    expect(summary(again.stdout, "BATCH")).toMatchObject({ judged: 0, cost_usd: 0 });
    expect(await batchStats()).toEqual(before);

    // A new backfill of the same range finds every verdict in the result index; the conversation
    // that was dead-lettered is tried again, like a live replay would, and its letter is not repeated.
    const other = await cli(simUrl, ["--topic", topics.input, "--from", from, "--batch", "--name", `other-${id}`, "--metrics-port", "0"]).exited;
    expect(other.code, other.stderr).toBe(0);
    expect(summary(other.stdout, "BATCH")).toMatchObject({ judged: 0 });
    const after = await batchStats();
    const repaid = Object.entries(after.billed).filter(([customId, n]) => n !== before.billed[customId]).map(([customId]) => customId.split(":")[0]);
    expect(repaid).toEqual(["b-malformed"]);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(seen.length).toBe(records);
  });
});
