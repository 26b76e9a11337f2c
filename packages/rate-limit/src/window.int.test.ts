import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { RequestTooLargeError } from "./types.ts";
import { type Admission, type Charge, connect, deleteKeys, fleet, maxInAnyWindow, promptOnly, saturate, uniquePrefix } from "./test-support.ts";

// Real Redis. The window is shortened to 2 s (windowMs) so saturation runs take seconds.
const WINDOW = 2000;
const SAFETY = 0.97;
const model = "accounts/fireworks/models/test";
let redis: Redis;
let prefix: string;

beforeAll(() => {
  redis = connect();
});
afterAll(async () => {
  await redis.quit();
});
beforeEach(() => {
  prefix = uniquePrefix();
});
afterEach(async () => {
  await deleteKeys(redis, prefix);
});

// Limits generous enough never to bind, so each test isolates one meter.
const roomy = { rpm: 1_000_000, promptTpm: 1_000_000_000, uncachedPromptTpm: 1_000_000_000, generatedTpm: 1_000_000_000 };
const rand = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

describe("sliding window across replicas: each meter binding in turn", () => {
  const cases: [string, Partial<typeof roomy>, () => Charge, (a: Admission) => number, number?][] = [
    ["requests", { rpm: 40 }, () => ({ prompt: 10, cached: 0, completion: 1 }), () => 1],
    ["prompt tokens", { promptTpm: 2000 }, () => ({ prompt: rand(20, 80), cached: 0, completion: 1 }), (a) => a.prompt],
    [
      "uncached prompt tokens",
      { uncachedPromptTpm: 1000 },
      () => {
        const prompt = rand(40, 120);
        return { prompt, cached: Math.floor(prompt * 0.7), completion: 1 };
      },
      (a) => a.prompt - a.cached,
    ],
    // Reserved from max_tokens (64) at first, then from the running mean of what was generated.
    ["generated tokens", { generatedTpm: 300 }, () => ({ prompt: 10, cached: 0, completion: rand(3, 9) }), (a) => a.completion, 64],
  ];

  it.each(cases)("keeps %s per window under safety × its limit and uses at least nine tenths of it", async (_name, limit, charge, pick, maxCompletion) => {
    const replica = fleet(redis, prefix, { model, windowMs: WINDOW, limits: { ...roomy, ...limit } });
    const admitted = await saturate([replica(), replica(), replica()], {
      loops: 4,
      durationMs: 2.5 * WINDOW,
      charge,
      ...(maxCompletion ? { maxCompletion } : {}),
    });
    const target = Object.values(limit)[0]! * SAFETY;
    const peak = maxInAnyWindow(admitted, WINDOW, pick);
    expect(peak).toBeLessThanOrEqual(target);
    expect(peak).toBeGreaterThanOrEqual(0.9 * target);
    // Sustained: two full windows after the first admission hold ~2 × target.
    const t0 = admitted[0]!.at;
    const sustained = admitted.filter((a) => a.at < t0 + 2 * WINDOW).reduce((sum, a) => sum + pick(a), 0);
    expect(sustained).toBeGreaterThanOrEqual(0.9 * 2 * target);
  });

  it("limits a cold start's burst to burstFactor × the even share of one sixth of the window", async () => {
    // rpm 60 over 6 s: a 1 s burst window may hold 1.5 × 60 × 0.97 / 6 = 14.55 requests.
    const limiter = fleet(redis, prefix, { model, windowMs: 6000, limits: { ...roomy, rpm: 60 } })();
    for (let i = 0; i < 14; i++) await limiter.acquire({ tokens: 1, priority: "live" });
    await expect(limiter.acquire({ tokens: 1, priority: "live", signal: AbortSignal.timeout(300) })).rejects.toThrow();
    expect((await limiter.snapshot()).used.requests).toBe(14);
  });

  it("applies the burst cap to each token meter too", async () => {
    // generated 600 over 6 s: a 1 s burst window may hold 1.5 × 600 × 0.97 / 6 = 145.5 tokens.
    const limiter = fleet(redis, prefix, { model, windowMs: 6000, limits: { ...roomy, generatedTpm: 600 } })();
    for (let i = 0; i < 14; i++) await limiter.acquire({ tokens: 1, completionTokens: 10, priority: "live" });
    await expect(limiter.acquire({ tokens: 1, completionTokens: 10, priority: "live", signal: AbortSignal.timeout(300) })).rejects.toThrow();
    expect((await limiter.snapshot()).used.generated).toBe(140);
  });

  it("rejects a request larger than its priority's whole budget", async () => {
    const limiter = fleet(redis, prefix, { model, limits: { ...roomy, promptTpm: 1000 } })();
    await expect(limiter.acquire({ tokens: 1001, priority: "live" })).rejects.toThrow(RequestTooLargeError);
    await expect(limiter.acquire({ tokens: 900, priority: "backfill" })).rejects.toThrow(RequestTooLargeError);
    // Above the safety target but within the limit: admitted alone in an empty window.
    await expect(limiter.acquire({ tokens: 990, priority: "live" })).resolves.toMatchObject({ reserved: { prompt: 990 } });
  });
});

describe("settle", () => {
  it("corrects every meter's reservation to the usage, up and down, in place", async () => {
    const limiter = fleet(redis, prefix, { model, limits: roomy })();
    const a = await limiter.acquire({ tokens: 100, completionTokens: 64, priority: "live" });
    // Nothing known yet: the whole prompt is reserved as uncached, and max_tokens as generated.
    expect(await limiter.snapshot()).toMatchObject({ used: { requests: 1, prompt: 100, uncachedPrompt: 100, generated: 64 }, inFlight: 1 });
    await a.settle({ prompt_tokens: 150, cached_prompt_tokens: 100, completion_tokens: 30 });
    expect(await limiter.snapshot()).toMatchObject({ used: { requests: 1, prompt: 150, uncachedPrompt: 50, generated: 30 }, inFlight: 0 });
    // Later reservations size the completion from what was generated (mean + 2 deviations; one
    // call has none); the prompt is still reserved as wholly uncached.
    const b = await limiter.acquire({ tokens: 100, completionTokens: 64, priority: "live" });
    expect(b.reserved).toEqual({ requests: 1, prompt: 100, uncachedPrompt: 100, generated: 30 });
    await b.settle(promptOnly(40));
    expect(await limiter.snapshot()).toMatchObject({ used: { requests: 2, prompt: 190, uncachedPrompt: 90, generated: 30 } });
    await b.settle(promptOnly(1000)); // a second settle is a no-op
    expect((await limiter.snapshot()).used.prompt).toBe(190);
  });

  it("counts an excess at settle time once the reservation has left the window", async () => {
    const limiter = fleet(redis, prefix, { model, windowMs: 300, limits: roomy })();
    const lease = await limiter.acquire({ tokens: 100, completionTokens: 10, priority: "live" });
    await expect.poll(async () => (await limiter.snapshot()).used.prompt).toBe(0);
    await lease.settle({ prompt_tokens: 160, cached_prompt_tokens: 0, completion_tokens: 5 });
    expect(await limiter.snapshot()).toMatchObject({ used: { requests: 0, prompt: 60, uncachedPrompt: 60, generated: 0 }, inFlight: 0 });
  });

  it("charges max_tokens on the generated meter when the provider does", async () => {
    const limiter = fleet(redis, prefix, { model, limits: roomy, completionCharge: "max_tokens" })();
    const lease = await limiter.acquire({ tokens: 10, completionTokens: 64, priority: "live" });
    await lease.settle({ prompt_tokens: 10, cached_prompt_tokens: 0, completion_tokens: 5 });
    expect((await limiter.snapshot()).used.generated).toBe(64);
  });

  it("release() frees the slot and keeps the reservation", async () => {
    const limiter = fleet(redis, prefix, { model, limits: { ...roomy, maxInFlight: 1 } })();
    const lease = await limiter.acquire({ tokens: 100, priority: "live" });
    await lease.release();
    expect(await limiter.snapshot()).toMatchObject({ used: { prompt: 100 }, inFlight: 0 });
    await limiter.acquire({ tokens: 1, priority: "live", signal: AbortSignal.timeout(1000) });
  });
});

describe("live reserve", () => {
  it("keeps backfill out of the live share of rpm while live gets in at once", async () => {
    const replica = fleet(redis, prefix, { model, safety: 1, burstFactor: 0, limits: { ...roomy, rpm: 10 } });
    const backfill = replica();
    const live = replica();
    for (let i = 0; i < 8; i++) await backfill.acquire({ tokens: 1, priority: "backfill" });
    // A saturating backfill caller keeps waiting ...
    const stuck = new AbortController();
    const waiting = backfill.acquire({ tokens: 1, priority: "backfill", signal: stuck.signal });
    // ... while live traffic still gets the reserved 20% without waiting.
    for (let i = 0; i < 2; i++) {
      const lease = await live.acquire({ tokens: 1, priority: "live" });
      expect(lease.waitedMs).toBeLessThan(200);
    }
    await expect(live.acquire({ tokens: 1, priority: "live", signal: AbortSignal.timeout(200) })).rejects.toThrow();
    stuck.abort();
    await expect(waiting).rejects.toThrow();
    expect((await live.snapshot()).used.requests).toBe(10);
  });

  it("keeps backfill out of the live share of each token meter", async () => {
    const replica = fleet(redis, prefix, { model, safety: 1, burstFactor: 0, limits: { ...roomy, uncachedPromptTpm: 1000 } });
    const backfill = replica();
    const live = replica();
    await backfill.acquire({ tokens: 790, priority: "backfill" });
    await expect(backfill.acquire({ tokens: 20, priority: "backfill", signal: AbortSignal.timeout(200) })).rejects.toThrow();
    const lease = await live.acquire({ tokens: 200, priority: "live" });
    expect(lease.waitedMs).toBeLessThan(200);
    expect((await live.snapshot()).used.uncachedPrompt).toBe(990);
  });

  it("keeps backfill out of the live share of in-flight slots", async () => {
    const replica = fleet(redis, prefix, { model, limits: { ...roomy, maxInFlight: 5 } });
    const backfill = replica();
    const live = replica();
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await backfill.acquire({ tokens: 1, priority: "backfill" }));
    const waiting = backfill.acquire({ tokens: 1, priority: "backfill", signal: AbortSignal.timeout(5000) });
    const liveLease = await live.acquire({ tokens: 1, priority: "live" });
    expect(liveLease.waitedMs).toBeLessThan(200);
    expect((await live.snapshot()).inFlight).toBe(5);
    await held[0]!.settle(promptOnly(1));
    await liveLease.settle(promptOnly(1));
    await expect(waiting).resolves.toMatchObject({ priority: "backfill" });
  });
});
