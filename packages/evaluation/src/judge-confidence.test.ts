import { createSimulator } from "@tracesift/fireworks-sim";
import { createJudgeClient } from "@tracesift/judge";
import type { Conversation } from "@tracesift/schemas";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The judge client and the simulator together: confidence travels from logprobs to the verdict.
const sim = createSimulator({});
let url = "";
beforeAll(async () => {
  ({ url } = await sim.listen(0));
});
afterAll(() => sim.close());

const conversation = (last: string): Pick<Conversation, "messages"> => ({
  messages: [
    { role: "user", content: "Book Dana on Tuesday" },
    { role: "assistant", content: "Booked Wednesday 3pm" },
    { role: "user", content: last },
  ],
});

function client(logprobs: boolean) {
  return createJudgeClient({
    baseURL: url,
    apiKey: "k",
    model: "accounts/fireworks/models/qwen3p5-35b-a3b",
    timeoutMs: 5_000,
    maxTokens: 256,
    responseFormat: "json_schema",
    logprobs,
  });
}

describe("confidence from the simulated provider", () => {
  it("is the probability of the chosen value when logprobs are asked for", async () => {
    const call = await client(true).judge(conversation("No, I said Tuesday [sim:confidence:0.62]"));
    expect(call.verdict.perceived_error).toBe(true);
    expect(call.verdict.confidence).toBeCloseTo(0.62, 3);
  });

  it("is plausible without a directive, and stable per conversation", async () => {
    const a = await client(true).judge(conversation("Thanks, perfect"));
    const b = await client(true).judge(conversation("Thanks, perfect"));
    expect(a.verdict.perceived_error).toBe(false);
    expect(a.verdict.confidence).toBeGreaterThanOrEqual(0.5);
    expect(a.verdict.confidence).toBeLessThanOrEqual(1);
    expect(b.verdict.confidence).toBe(a.verdict.confidence);
  });

  it("is absent when logprobs were not asked for", async () => {
    const call = await client(false).judge(conversation("No, I said Tuesday [sim:confidence:0.62]"));
    expect(call.verdict).not.toHaveProperty("confidence");
  });
});
