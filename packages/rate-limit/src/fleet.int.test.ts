import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { connect, deleteKeys, type Fleet, fleet, promptOnly, uniquePrefix } from "./test-support.ts";

// Real Redis; several FleetRateLimiter instances on one prefix stand in for replicas.
const model = "accounts/fireworks/models/test";
const roomy = { rpm: 1_000_000, promptTpm: 1_000_000_000, uncachedPromptTpm: 1_000_000_000, generatedTpm: 1_000_000_000 };
let redis: Redis;
let prefix: string;
let replica: Fleet;

beforeAll(() => {
  redis = connect();
});
afterAll(async () => {
  await redis.quit();
});
beforeEach(() => {
  prefix = uniquePrefix();
  replica = fleet(redis, prefix, { model, limits: roomy });
});
afterEach(async () => {
  await deleteKeys(redis, prefix);
});

const notPaused = async (l: ReturnType<Fleet>) => vi.waitFor(async () => expect(await l.pausedUntil()).toBe(0));

describe("onRateLimited", () => {
  it("pauses every replica until retry-after", async () => {
    const a = replica();
    const b = replica();
    expect(await a.onRateLimited({ status: 429, retryAfterMs: 500 })).toBe(500);
    const until = await b.pausedUntil();
    expect(until).toBeGreaterThan(0);
    const lease = await b.acquire({ tokens: 10, priority: "live" });
    expect(lease.admittedAt).toBeGreaterThanOrEqual(until);
    expect(lease.waitedMs).toBeGreaterThan(300);
  });

  it("backs off exponentially on the fleet-wide count without retry-after, capped, reset by success", async () => {
    // random() = 1 picks the top of the full-jitter range: pause = min(maxMs, baseMs × 2^(n-1)).
    const a = replica({ backoff: { baseMs: 40, maxMs: 200 }, random: () => 1 });
    const b = replica({ backoff: { baseMs: 40, maxMs: 200 }, random: () => 1 });
    const pauses: number[] = [];
    for (const l of [a, b, a, b, a]) {
      await notPaused(l);
      pauses.push(await l.onRateLimited({ status: 429 }));
    }
    expect(pauses).toEqual([40, 80, 160, 200, 200]);
    expect((await b.snapshot()).consecutiveRateLimited).toBe(5);
    await notPaused(a);
    await b.onSuccess();
    expect(await a.onRateLimited({ status: 503 })).toBe(40);
  });

  it("treats 429s arriving during a pause as the same event", async () => {
    const a = replica({ limits: { maxInFlight: 16 }, backoff: { baseMs: 1000, maxMs: 1000 }, random: () => 1 });
    expect(await a.onRateLimited({ status: 429 })).toBe(1000);
    const again = await replica().onRateLimited({ status: 429 });
    expect(again).toBeLessThanOrEqual(1000);
    expect(await a.snapshot()).toMatchObject({ consecutiveRateLimited: 1, adaptiveConcurrency: 2 });
    // retry-after may still extend the pause.
    expect(await a.onRateLimited({ status: 429, retryAfterMs: 3000 })).toBe(3000);
  });
});

describe("adaptive concurrency (AIMD) while limits are unknown", () => {
  it("starts at 4, halves on a rate limit, grows by 1/ac per success up to maxInFlight", async () => {
    const a = replica({ limits: { maxInFlight: 10 } });
    const b = replica({ limits: { maxInFlight: 10 } });
    expect(await a.snapshot()).toMatchObject({ adaptiveEnforced: true, adaptiveConcurrency: 4 });
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await a.acquire({ tokens: 1, priority: "live" }));
    await expect(b.acquire({ tokens: 1, priority: "live", signal: AbortSignal.timeout(200) })).rejects.toThrow();
    await Promise.all(held.map((l) => l.settle(promptOnly(1))));

    await b.onRateLimited({ status: 429, retryAfterMs: 0 });
    expect((await a.snapshot()).adaptiveConcurrency).toBe(2);
    await a.onSuccess();
    await b.onSuccess();
    expect((await a.snapshot()).adaptiveConcurrency).toBeCloseTo(2 + 1 / 2 + 1 / 2.5);
    for (let i = 0; i < 100; i++) await a.onSuccess();
    expect((await b.snapshot()).adaptiveConcurrency).toBe(10);
  });

  it("is not enforced once a token meter's limit is known (requests alone do not end it)", async () => {
    expect((await replica({ limits: { rpm: 1000 } }).snapshot()).adaptiveEnforced).toBe(true);
    const l = replica({ limits: { rpm: 1000, uncachedPromptTpm: 100_000 } });
    expect((await l.snapshot()).adaptiveEnforced).toBe(false);
    for (let i = 0; i < 6; i++) await l.acquire({ tokens: 1, priority: "live", signal: AbortSignal.timeout(500) });
    expect((await l.snapshot()).inFlight).toBe(6);
  });
});

describe("stop / resume", () => {
  it("stops the model fleet-wide until resume", async () => {
    const a = replica();
    const b = replica();
    await a.stop("401 invalid api key");
    expect(await b.isStopped()).toBe("401 invalid api key");
    expect((await b.snapshot()).stopped).toBe("401 invalid api key");
    await expect(b.acquire({ tokens: 1, priority: "live", signal: AbortSignal.timeout(300) })).rejects.toThrow();
    const waiting = b.acquire({ tokens: 1, priority: "live" });
    await a.resume();
    await expect(waiting).resolves.toMatchObject({ priority: "live" });
    expect(await b.isStopped()).toBeNull();
  });
});

describe("in-flight leases", () => {
  it("reclaims the slot of a holder that died, after leaseTtlMs", async () => {
    const dead = replica({ limits: { ...roomy, maxInFlight: 1 }, leaseTtlMs: 300 });
    const alive = replica({ limits: { ...roomy, maxInFlight: 1 }, leaseTtlMs: 300 });
    const leaked = await dead.acquire({ tokens: 1, priority: "live" }); // never settled
    const lease = await alive.acquire({ tokens: 1, priority: "live", signal: AbortSignal.timeout(5000) });
    expect(lease.admittedAt).toBeGreaterThanOrEqual(leaked.admittedAt + 300);
    expect((await alive.snapshot()).inFlight).toBe(1);
  });
});

describe("learnFromHeaders", () => {
  it("stores each meter's per-minute limit fleet-wide; configured limits take precedence", async () => {
    const learner = replica({ limits: {} });
    const configured = replica({ limits: { generatedTpm: 5000 } });
    await learner.learnFromHeaders(
      new Headers({
        "x-ratelimit-limit-requests": "6000",
        "x-ratelimit-limit-tokens-prompt": "60000",
        "x-ratelimit-limit-tokens-cache-adjusted-prompt": "15000",
        "x-ratelimit-limit-tokens-generated": "600",
      }),
    );
    const learned = { rpm: 6000, promptTpm: 3_600_000, uncachedPromptTpm: 900_000, generatedTpm: 36_000 };
    expect(await learner.snapshot()).toMatchObject({ limits: learned, learned, adaptiveEnforced: false });
    expect((await configured.snapshot()).limits).toEqual({ ...learned, generatedTpm: 5000 });
  });

  it("enforces learned limits, each meter on its own", async () => {
    const l = replica({ limits: {}, burstFactor: 0 });
    await l.learnFromHeaders({ "X-RateLimit-Limit-Requests": "100", "X-RateLimit-Limit-Tokens-Cache-Adjusted-Prompt": "5" });
    // 0.97 × 300 = 291 uncached tokens a window; the prompt meter is unknown and does not bind.
    const a = await l.acquire({ tokens: 200, priority: "live" });
    await a.settle({ prompt_tokens: 1000, cached_prompt_tokens: 800, completion_tokens: 1 });
    await l.acquire({ tokens: 80, priority: "live" });
    await expect(l.acquire({ tokens: 20, priority: "live", signal: AbortSignal.timeout(300) })).rejects.toThrow();
  });
});
