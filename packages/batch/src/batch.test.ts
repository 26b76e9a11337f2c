import { createJudgeClient, DEFAULT_PRICES, type TokenPrice } from "@tracesift/judge";
import { conversationVersion, type JudgeJob } from "@tracesift/schemas";
import { describe, expect, it } from "vitest";
import { requestBody, requestLine, splitRequests } from "./requests.ts";
import { batchCostUsd, batchPrice, readOutputFiles } from "./results.ts";

const conversation = {
  id: "c1",
  source: "openai",
  metadata: {},
  messages: [
    { role: "user" as const, content: "Book Tuesday" },
    { role: "assistant" as const, content: "Booked Wednesday" },
    { role: "user" as const, content: "No, Tuesday" },
  ],
};

describe("request files", () => {
  it("carry exactly the body a live worker sends, minus the model the job names", async () => {
    let sent: Record<string, unknown> = {};
    const capture = (async (_url: string | URL | Request, init?: RequestInit) => {
      sent = JSON.parse(String(init?.body));
      return new Response(JSON.stringify({ choices: [{ message: { content: '{"perceived_error": true, "reason": "x"}' } }] }), {
        headers: { "content-type": "application/json" },
      });
    }) as typeof fetch;
    const live = createJudgeClient({ baseURL: "http://x/v1", apiKey: "k", model: "m", timeoutMs: 1000, maxTokens: 256, responseFormat: "json_schema", fetch: capture });
    await live.judge(conversation);
    const { model, ...body } = sent;
    expect(model).toBe("m");
    expect(requestBody(conversation, { maxTokens: 256, responseFormat: "json_schema" })).toEqual(body);
  });

  it("use the result id as custom_id", () => {
    const job: JudgeJob = { conversation, version: conversationVersion(conversation), source: { topic: "t", partition: 0, offset: "1" }, priority: "backfill", enqueued_at: new Date().toISOString() };
    const { customId, line } = requestLine(job, { model: "m", prompt_version: "p" }, { maxTokens: 256, responseFormat: "json_object" });
    expect(customId).toBe(`c1:3:${job.version.content_hash}:m:p`);
    expect(JSON.parse(line).custom_id).toBe(customId);
  });

  it("split under both the line and the byte limit, in order", () => {
    const lines = [...Array(10)].map((_, i) => ({ customId: `r${i}`, line: "x".repeat(99) }));
    expect(splitRequests(lines, { maxBytes: 10_000, maxLines: 4 }).map((f) => f.length)).toEqual([4, 4, 2]);
    expect(splitRequests(lines, { maxBytes: 350, maxLines: 100 }).map((f) => f.length)).toEqual([3, 3, 3, 1]);
    expect(splitRequests(lines, { maxBytes: 350, maxLines: 100 }).flat().map((l) => l.customId)).toEqual(lines.map((l) => l.customId));
    expect(() => splitRequests(lines, { maxBytes: 50, maxLines: 100 })).toThrow(/over the file limit/);
  });
});

describe("output files", () => {
  const answer = (content: string) => ({
    choices: [{ message: { content } }],
    usage: { prompt_tokens: 100, completion_tokens: 10, prompt_tokens_details: { cached_tokens: 60 } },
  });

  it("read verdicts, invalid answers and errors by custom_id, in either response shape", () => {
    const results = [
      JSON.stringify({ custom_id: "a", response: answer('{"perceived_error": false, "reason": "fine"}') }),
      JSON.stringify({ custom_id: "b", response: { status_code: 200, body: answer("Sure! Looks fine.") } }),
      "not json",
    ].join("\n");
    const errors = JSON.stringify({ custom_id: "c", error: { code: 500, message: "boom" } });
    const out = readOutputFiles({ "BIJOutputSet.jsonl": results, "error-data.jsonl": errors });
    expect(out.get("a")).toMatchObject({ kind: "verdict", verdict: { perceived_error: false }, usage: { prompt_tokens: 100, cached_prompt_tokens: 60, total_tokens: 110 } });
    expect(out.get("b")).toMatchObject({ kind: "invalid", raw: "Sure! Looks fine." });
    expect(out.get("c")).toMatchObject({ kind: "error" });
    expect(out.size).toBe(3);
  });
});

describe("batch prices", () => {
  it("halve the serverless price, and cached prompt tokens cost half of that again", () => {
    const live = DEFAULT_PRICES["accounts/fireworks/models/qwen3p5-35b-a3b"] as TokenPrice;
    const price = batchPrice(live, live);
    expect(price).toEqual({ input: live.input / 2, cached_input: (live.cached_input ?? 0) / 2, output: live.output / 2 });
    const usage = { prompt_tokens: 1_000_000, cached_prompt_tokens: 500_000, completion_tokens: 100_000, total_tokens: 1_100_000 };
    // 500k × 0.25 + 500k × 0.125 + 100k × 0.25, per 1M
    expect(batchCostUsd(usage, price)).toBeCloseTo(0.125 + 0.0625 + 0.025, 9);
  });

  it("fall back to the serverless list price when live is billed per GPU-hour", () => {
    expect(batchPrice({ usd_per_gpu_hour: 8, gpus: 1, parallelism: 16 }, { input: 0.2, output: 0.4 })).toEqual({ input: 0.1, cached_input: 0.05, output: 0.2 });
  });
});
