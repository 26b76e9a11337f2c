import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSimulator } from "@tracesift/fireworks-sim";
import { createJudgeClient } from "@tracesift/judge";
import type { Conversation, JudgedResult } from "@tracesift/schemas";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readJsonl } from "./jsonl.ts";
import { QueueLine } from "./labeling.ts";
import { createSecondOpinion, SecondOpinionEnv } from "./second-opinion.ts";

const sim = createSimulator({});
let url = "";
let dir = "";
beforeAll(async () => {
  ({ url } = await sim.listen(0));
  dir = mkdtempSync(join(tmpdir(), "tracesift-second-opinion-"));
});
afterAll(async () => {
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

const conversation: Conversation = {
  id: "conv-7",
  source: "openai",
  metadata: { app: "cal" },
  messages: [
    { role: "user", content: "Book Dana on Tuesday" },
    { role: "assistant", content: "Booked Wednesday 3pm" },
    { role: "user", content: "No, I said Tuesday" },
  ],
};

function result(confidence: number | undefined, perceived_error = false): JudgedResult {
  return {
    schema_version: 1,
    result_id: "conv-7:3:h:m:p",
    status: "judged",
    conversation_id: conversation.id,
    conversation_version: { message_count: 3, content_hash: "h" },
    metadata: conversation.metadata,
    source: { topic: "traces", partition: 0, offset: "4" },
    priority: "live",
    verdict: { perceived_error, reason: "Looks fine.", ...(confidence === undefined ? {} : { confidence }) },
    judge: { model: "judge-model", prompt_version: "p" },
    usage: { prompt_tokens: 1, cached_prompt_tokens: 0, completion_tokens: 1, total_tokens: 2 },
    cost_usd: 0,
    latency_ms: 1,
    attempts: 1,
    judged_at: "2026-11-28T10:00:00.000Z",
  };
}

const band = { low: 0.35, high: 0.65 };
const arbiter = () =>
  createJudgeClient({ baseURL: url, apiKey: "k", model: "arbiter-model", timeoutMs: 5_000, maxTokens: 256, responseFormat: "json_object", logprobs: true });

describe("second opinion in the uncertain band", () => {
  it("asks the arbiter and keeps both verdicts", async () => {
    const out = await createSecondOpinion(band, { kind: "arbiter", client: arbiter() })(conversation, result(0.5));
    expect(out.verdict).toMatchObject({ perceived_error: false, reason: "Looks fine.", confidence: 0.5 });
    expect(out.verdict.second_opinion).toMatchObject({ perceived_error: true, judge: "arbiter-model" });
    expect(out.verdict.second_opinion?.confidence).toBeGreaterThanOrEqual(0.5);
  });

  it("leaves sure verdicts, and verdicts without a confidence, alone", async () => {
    const opinion = createSecondOpinion(band, { kind: "arbiter", client: arbiter() });
    expect(await opinion(conversation, result(0.9))).toEqual(result(0.9));
    expect(await opinion(conversation, result(undefined))).toEqual(result(undefined));
  });

  it("keeps the first verdict when the arbiter cannot answer", async () => {
    const broken = createJudgeClient({ baseURL: "http://127.0.0.1:9/v1", apiKey: "k", model: "gone", timeoutMs: 500, maxTokens: 64, responseFormat: "json_object" });
    const errors: unknown[] = [];
    const out = await createSecondOpinion(band, { kind: "arbiter", client: broken }, (e) => errors.push(e))(conversation, result(0.4));
    expect(out).toEqual(result(0.4));
    expect(errors).toHaveLength(1);
  });

  it("writes uncertain verdicts to a review file that tracesift review reads", async () => {
    const path = join(dir, "review.jsonl");
    const out = await createSecondOpinion(band, { kind: "review", path })(conversation, result(0.6));
    expect(out.verdict.review).toBe("pending");
    const { records } = readJsonl(path, QueueLine);
    expect(records).toHaveLength(1);
    expect(records[0]!.event.id).toBe("conv-7");
    expect(records[0]!.panel[0]).toMatchObject({ perceived_error: false, reason: "Looks fine." });
    expect(readFileSync(path, "utf8").endsWith("\n")).toBe(true);
  });

  it("is configured from the environment", () => {
    expect(SecondOpinionEnv.parse({ UNCERTAIN_BAND: "0.4-0.6", UNCERTAIN_ACTION: "review" })).toMatchObject({ UNCERTAIN_BAND: { low: 0.4, high: 0.6 }, UNCERTAIN_ACTION: "review" });
    expect(SecondOpinionEnv.parse({}).UNCERTAIN_BAND).toBeUndefined();
    expect(SecondOpinionEnv.safeParse({ UNCERTAIN_BAND: "0.9-0.1" }).success).toBe(false);
  });
});
