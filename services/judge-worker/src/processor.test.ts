import { InvalidOutputError, type JudgeClient } from "@tracesift/judge";
import type { BatchingProducer, OutgoingRecord } from "@tracesift/kafka";
import { judgeMetrics } from "@tracesift/metrics";
import type { ResultIndex } from "@tracesift/result-index";
import { createLogger } from "@tracesift/runtime";
import type { JudgedResult, JudgeJob, TokenUsage } from "@tracesift/schemas";
import type { Job } from "bullmq";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { CostBudget } from "./budget.ts";
import { createProcessor } from "./processor.ts";

const usage: TokenUsage = { prompt_tokens: 1000, cached_prompt_tokens: 0, completion_tokens: 20, total_tokens: 1020 };
const data: JudgeJob = {
  conversation: { id: "c1", source: "openai", metadata: { app: "a" }, messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "yo" }, { role: "user", content: "wrong" }] },
  version: { message_count: 3, content_hash: "h" },
  source: { topic: "t", partition: 0, offset: "1" },
  priority: "live",
  enqueued_at: new Date().toISOString(),
};
const job = { id: "j1", data, attemptsMade: 0, opts: { attempts: 3 }, timestamp: Date.now(), processedOn: Date.now() } as unknown as Job;

function setup(client: Partial<JudgeClient>, state: { published: boolean; kept: JudgedResult | null } = { published: false, kept: null }) {
  const registry = new Registry();
  const metrics = judgeMetrics(registry);
  const sent: OutgoingRecord[] = [];
  const spent: number[] = [];
  const kept: JudgedResult[] = [];
  let calls = 0;
  const index = {
    lookup: async () => state,
    keep: async (r: JudgedResult) => void kept.push(r),
    published: async () => undefined,
  } as unknown as ResultIndex;
  const process = createProcessor(
    {
      client: {
        model: "m",
        complete: async (...args: Parameters<JudgeClient["complete"]>) => {
          calls++;
          return (client.complete as JudgeClient["complete"])(...args);
        },
      } as JudgeClient,
      producer: { send: async (r: OutgoingRecord) => void sent.push(r) } as unknown as BatchingProducer,
      metrics,
      logger: createLogger({ service: "test", level: "silent" }),
      pricing: { m: { input: 1, output: 1 } },
      outputTopic: "out",
      deadLetterTopic: "dlq",
      index,
      budget: { blockedForMs: async () => 0, record: async (usd: number) => void spent.push(usd) } as unknown as CostBudget,
    },
    () => 10,
  );
  return { process, registry, sent, spent, kept, calls: () => calls };
}

describe("judge job processor", () => {
  it("counts a malformed answer's tokens and cost, since the provider billed it", async () => {
    const t = setup({
      complete: async () => {
        throw new InvalidOutputError("model output is not JSON", "Sure!", { usage, latencyMs: 50, headers: new Headers() });
      },
    });
    await expect(t.process(job, "token")).rejects.toThrow(/invalid_model_output/);
    const tokens = await t.registry.getSingleMetric("tracesift_judge_tokens_total")?.get();
    expect(tokens?.values.find((v) => v.labels.kind === "prompt")?.value).toBe(1000);
    expect(t.spent[0]).toBeCloseTo(1020 / 1e6, 9);
  });

  it("keeps a verdict before publishing it", async () => {
    const t = setup({ complete: async () => ({ verdict: { perceived_error: true, reason: "r" }, usage, latencyMs: 5, raw: "", headers: new Headers() }) });
    await t.process(job, "token");
    expect(t.kept).toHaveLength(1);
    expect(t.sent.map((r) => r.topic)).toEqual(["out"]);
  });

  it("publishes a kept verdict without calling the model, and does nothing for a published one", async () => {
    const kept = { result_id: "x", conversation_id: "c1" } as JudgedResult;
    const again = setup({ complete: async () => Promise.reject(new Error("must not be called")) }, { published: false, kept });
    await again.process(job, "token");
    expect(again.calls()).toBe(0);
    expect(again.sent).toHaveLength(1);
    const done = setup({ complete: async () => Promise.reject(new Error("must not be called")) }, { published: true, kept: null });
    await done.process(job, "token");
    expect(done.calls()).toBe(0);
    expect(done.sent).toHaveLength(0);
  });
});
