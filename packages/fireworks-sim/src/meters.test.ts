import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { replicaFor } from "./chat.ts";
import { createSimulator } from "./simulator.ts";
import { client, MODEL, type OpenAI, SYSTEM_PROMPT } from "./test-client.ts";
import type { TranscriptMessage } from "./verdict.ts";

// Fireworks' serverless metering: three token meters, requests, the account cap, adaptive limits,
// prompt caching by exact prefix per replica. A fake clock moves instead of sleeping.
let clock = 0;
const sim = createSimulator({ now: () => clock, seed: 7 });
let url = "";

beforeAll(async () => {
  ({ url } = await sim.listen(0));
});
afterAll(() => sim.close());
afterEach(() => {
  sim.reset();
  clock = 0;
});

/** A conversation of `turns` user/assistant pairs, distinct per `tag`, long enough to span blocks. */
function conversation(tag: string, turns: number): TranscriptMessage[] {
  const out: TranscriptMessage[] = [];
  for (let i = 0; i < turns; i++) {
    out.push({ role: "user", content: `${tag} question ${i}: ${"please move the meeting to Tuesday ".repeat(20)}` });
    out.push({ role: "assistant", content: `${tag} answer ${i}: ${"done, the meeting is on the calendar ".repeat(20)}` });
  }
  return out;
}

function call(messages: TranscriptMessage[], opts: { model?: string; session?: string } = {}) {
  return client(url)
    .chat.completions.create(
      {
        model: opts.model ?? MODEL,
        messages: [
          { role: "system", content: SYSTEM_PROMPT },
          // Append-only, as the worker renders it: a later turn extends the earlier prompt.
          { role: "user", content: `Conversation to evaluate (JSON):\n${JSON.stringify({ messages })}` },
        ],
        max_tokens: 64,
      },
      opts.session ? { headers: { "x-multi-turn-session-id": opts.session } } : undefined,
    )
    .withResponse();
}

const refusal = (p: Promise<unknown>) =>
  p.then(
    () => expect.fail("expected a 429"),
    (err: unknown) => err as InstanceType<typeof OpenAI.RateLimitError>,
  );

/** Usage of a call on a fresh simulator, to size limits around it. */
async function usageOf(messages: TranscriptMessage[]) {
  const { data } = await call(messages);
  sim.reset();
  return data.usage!;
}

describe("token meters", () => {
  it("meters total prompt tokens and reports the limit per second", async () => {
    const u = await usageOf(conversation("a", 3));
    sim.configure({ promptTokensPerSec: (2.5 * u.prompt_tokens) / 60 });
    const { response } = await call(conversation("a", 3));
    expect(response.headers.get("x-ratelimit-limit-tokens-prompt")).toBe(String(Math.floor((2.5 * u.prompt_tokens) / 60)));
    await call(conversation("b", 3));
    const err = await refusal(call(conversation("c", 3)));
    expect(err.status).toBe(429);
    expect(err.message).toMatch(/prompt tokens/);
  });

  it("meters uncached prompt tokens: a cached prefix does not count", async () => {
    const u = await usageOf(conversation("a", 3));
    sim.configure({ uncachedPromptTokensPerSec: (1.5 * u.prompt_tokens) / 60 });
    const first = await call(conversation("a", 3), { session: "s1" });
    expect(first.response.headers.get("x-ratelimit-limit-tokens-cache-adjusted-prompt")).toBe(String(Math.floor((1.5 * u.prompt_tokens) / 60)));
    // The same conversation one turn later, same session: only what changed is uncached.
    const later = await call(conversation("a", 4), { session: "s1" });
    const cached = later.data.usage!.prompt_tokens_details!.cached_tokens!;
    expect(cached).toBeGreaterThan(u.prompt_tokens - 80);
    // A fresh conversation of the same size no longer fits in the uncached meter.
    expect((await refusal(call(conversation("b", 3), { session: "s2" }))).message).toMatch(/uncached prompt tokens/);
  });

  it("meters generated tokens", async () => {
    const u = await usageOf(conversation("a", 1));
    sim.configure({ generatedTokensPerSec: (2.5 * u.completion_tokens) / 60 });
    const { response } = await call(conversation("a", 1));
    expect(response.headers.get("x-ratelimit-limit-tokens-generated")).toBe(String(Math.floor((2.5 * u.completion_tokens) / 60)));
    await call(conversation("a", 1));
    expect((await refusal(call(conversation("a", 1)))).message).toMatch(/generated tokens/);
    clock = 60_000;
    await expect(call(conversation("a", 1))).resolves.toBeDefined();
  });

  it("caps requests per minute across every model of the account", async () => {
    sim.configure({ accountRpm: 2, rpm: 100 });
    await call(conversation("a", 1), { model: "accounts/x/models/one" });
    await call(conversation("a", 1), { model: "accounts/x/models/two" });
    expect((await refusal(call(conversation("a", 1), { model: "accounts/x/models/three" }))).message).toMatch(/account requests/);
  });
});

describe("adaptive limits", () => {
  it("answers a burst from cold with 429s below the ceiling, then ramps up to it", async () => {
    sim.configure({ rpm: 10, rampStartShare: 0.5, rampMs: 30_000 });
    for (let i = 0; i < 5; i++) await call(conversation("a", 1));
    const err = await refusal(call(conversation("a", 1)));
    expect(err.headers.get("x-ratelimit-limit-requests")).toBe("5");
    clock = 30_000;
    const { response } = await call(conversation("a", 1));
    expect(response.headers.get("x-ratelimit-limit-requests")).toBe("10");
    for (let i = 0; i < 4; i++) await call(conversation("a", 1));
    await refusal(call(conversation("a", 1)));
  });
});

describe("prompt cache per replica", () => {
  it("routes a session to one replica, so a later turn reuses its prefix; other replicas do not have it", async () => {
    sim.configure({ replicas: 4 });
    const home = replicaFor("conv-1", 4);
    const elsewhere = ["a", "b", "c", "d", "e", "f", "g"].find((s) => replicaFor(s, 4) !== home)!;
    const first = await call(conversation("a", 2), { session: "conv-1" });
    expect(first.data.usage!.prompt_tokens_details!.cached_tokens).toBe(0);
    const again = await call(conversation("a", 3), { session: "conv-1" });
    const prompt1 = first.data.usage!.prompt_tokens;
    expect(again.data.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThan(prompt1 - 80);
    expect(again.data.usage!.prompt_tokens_details!.cached_tokens).toBeLessThan(prompt1);
    expect(again.response.headers.get("fireworks-cached-prompt-tokens")).toBe(String(again.data.usage!.prompt_tokens_details!.cached_tokens));
    const other = await call(conversation("a", 3), { session: elsewhere });
    expect(other.data.usage!.prompt_tokens_details!.cached_tokens).toBe(0);
  });

  it("bills cached input at its discounted price", async () => {
    sim.configure({ price: { input: 1, cachedInput: 0.25, output: 2 } });
    await call(conversation("a", 2), { session: "s" });
    const { data } = await call(conversation("a", 2), { session: "s" });
    const u = data.usage!;
    const cached = u.prompt_tokens_details!.cached_tokens!;
    expect(cached).toBeGreaterThan(0);
    const second = ((u.prompt_tokens - cached) * 1 + cached * 0.25 + u.completion_tokens * 2) / 1e6;
    const first = (u.prompt_tokens * 1 + u.completion_tokens * 2) / 1e6;
    expect(sim.stats().costUsd).toBeCloseTo(first + second, 12);
  });
});
