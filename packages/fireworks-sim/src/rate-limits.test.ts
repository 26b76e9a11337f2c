import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SlidingWindowLimiter } from "./rate-limiter.ts";
import { createSimulator } from "./simulator.ts";
import { seededRandom } from "./tokens.ts";
import { client, judgeRequest, OpenAI, thanked } from "./test-client.ts";

type RateLimitError = InstanceType<typeof OpenAI.RateLimitError>;

let clock = 0;
const sim = createSimulator({ rpm: 2, now: () => clock });
let url = "";

beforeAll(async () => {
  ({ url } = await sim.listen(0));
});
afterAll(() => sim.close());
afterEach(() => {
  sim.reset();
  clock = 0;
});

const ask = (maxTokens = 64) => client(url).chat.completions.create(judgeRequest(thanked, { max_tokens: maxTokens }));
const refused = (maxTokens?: number) => ask(maxTokens).then(
  () => expect.fail("expected a 429"),
  (err: unknown) => err as RateLimitError,
);

describe("rpm", () => {
  it("answers 429 with rate-limit headers but no retry-after by default", async () => {
    const { response } = await ask().withResponse();
    expect(response.headers.get("x-ratelimit-limit-requests")).toBe("2");
    expect(response.headers.get("x-ratelimit-remaining-requests")).toBe("1");
    await ask();
    const err = await refused();
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.headers.get("x-ratelimit-limit-requests")).toBe("2");
    expect(err.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(err.headers.get("retry-after")).toBeNull();
    expect(err.error).toMatchObject({ object: "error", type: "rate_limit_error", code: "RATE_LIMIT_EXCEEDED" });
    expect(sim.stats().byStatus).toMatchObject({ "200": 2, "429": 1 });
  });

  it("sends retry-after (seconds until a slot frees) when sendRetryAfter is on", async () => {
    sim.configure({ sendRetryAfter: true });
    await ask();
    clock = 20_500;
    await ask();
    clock = 30_000;
    const err = await refused();
    // The first request leaves the window at 60 s: 30 s from now.
    expect(err.headers.get("retry-after")).toBe("30");
  });

  it("slides: a slot frees exactly 60 s after the request that used it", async () => {
    await ask();
    clock = 10_000;
    await ask();
    clock = 59_999;
    await refused();
    clock = 60_000;
    await expect(ask()).resolves.toBeDefined();
    await refused();
    clock = 70_000;
    await expect(ask()).resolves.toBeDefined();
  });

  it("omits x-ratelimit headers on success when sendRateLimitHeaders is off", async () => {
    sim.configure({ sendRateLimitHeaders: false });
    const { response } = await ask().withResponse();
    expect(response.headers.get("x-ratelimit-limit-requests")).toBeNull();
    await ask();
    expect((await refused()).headers.get("x-ratelimit-limit-requests")).toBe("2");
  });
});

describe("tpm", () => {
  it("counts prompt plus requested max_tokens when so configured, and reports tokens per second", async () => {
    sim.configure({ rpm: null, tpm: 600, tpmCompletion: "max_tokens" });
    const { data, response } = await ask(200).withResponse();
    const charged = data.usage!.prompt_tokens + 200;
    expect(response.headers.get("x-ratelimit-limit-tokens-prompt")).toBe("10");
    expect(response.headers.get("x-ratelimit-remaining-tokens-prompt")).toBe(String(Math.floor((600 - charged) / 60)));
    expect(response.headers.get("x-ratelimit-limit-requests")).toBeNull();
    const err = await refused(600 - charged);
    expect(err.error).toMatchObject({ code: "RATE_LIMIT_EXCEEDED" });
    expect(err.message).toMatch(/600 tokens/);
    await expect(ask(1)).resolves.toBeDefined();
  });

  it("charges the actual completion when tpmCompletion is actual", async () => {
    sim.configure({ rpm: null, tpm: 600, tpmCompletion: "actual" });
    const first = await ask(10_000);
    expect(first.usage!.total_tokens).toBeLessThan(300);
    await expect(ask(10_000)).resolves.toBeDefined();
  });
});

describe("SlidingWindowLimiter", () => {
  it("computes retry-after from the entries that must expire", () => {
    let t = 0;
    const limiter = new SlidingWindowLimiter(() => t);
    expect(limiter.admit("m", 50, { tpm: 100 }).ok).toBe(true);
    t = 10_000;
    expect(limiter.admit("m", 40, { tpm: 100 }).ok).toBe(true);
    t = 20_000;
    // 90 used, 60 asked: 50 must leave, which the first entry does at 60 s.
    expect(limiter.admit("m", 60, { tpm: 100 })).toMatchObject({ ok: false, exceeded: "tokens", retryAfterMs: 40_000 });
    expect(limiter.admit("m", 200, { tpm: 100 })).toMatchObject({ ok: false, retryAfterMs: 60_000 });
    expect(limiter.admit("other-model", 60, { tpm: 100 }).ok).toBe(true);
  });
});

describe("SlidingWindowLimiter bookkeeping", () => {
  it("decides like recounting the whole window on every request, through many expiries", () => {
    // The reference keeps only the live entries and recounts them every time.
    let live: { at: number; tokens: number }[] = [];
    const reference = (t: number, tokens: number, limits: { rpm?: number; tpm?: number }) => {
      live = live.filter((e) => e.at > t - 60_000);
      const used = live.reduce((sum, e) => sum + e.tokens, 0);
      const ok = !(limits.rpm !== undefined && live.length + 1 > limits.rpm) && !(limits.tpm !== undefined && used + tokens > limits.tpm);
      if (ok) live.push({ at: t, tokens });
      return { ok, count: live.length, used: live.reduce((sum, e) => sum + e.tokens, 0) };
    };
    let t = 0;
    const limiter = new SlidingWindowLimiter(() => t);
    const random = seededRandom(1);
    let refused = 0;
    // ~1,200 live entries over 500 s of clock: thousands of expiries, so the array is compacted often.
    for (let i = 0; i < 10_000; i++) {
      t += Math.floor(random() * 100);
      const tokens = 1 + Math.floor(random() * 100);
      const limits = i % 3 === 0 ? {} : { rpm: 1_000, tpm: 50_000 };
      const expected = reference(t, tokens, limits);
      expect(limiter.admit("m", tokens, limits).ok).toBe(expected.ok);
      if (!expected.ok) refused++;
      const headers = limiter.peek("m", { rpm: 1_000_000, tpm: 60_000_000 });
      expect(headers["x-ratelimit-remaining-requests"]).toBe(String(1_000_000 - expected.count));
      expect(headers["x-ratelimit-remaining-tokens-prompt"]).toBe(String(Math.floor((60_000_000 - expected.used) / 60)));
    }
    expect(refused).toBeGreaterThan(100);
  });
});
