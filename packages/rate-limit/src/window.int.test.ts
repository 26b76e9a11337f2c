import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { RequestTooLargeError } from "./types.ts";
import { connect, deleteKeys, fleet, maxInAnyWindow, saturate, uniquePrefix } from "./test-support.ts";

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

describe("sliding window across replicas", () => {
  it("keeps requests per window under safety × rpm and uses at least 90% of it", async () => {
    const replica = fleet(redis, prefix, { model, windowMs: WINDOW, limits: { rpm: 40, tpm: 10_000_000 } });
    const admitted = await saturate([replica(), replica(), replica()], { loops: 4, durationMs: 2.5 * WINDOW, tokens: () => 10 });
    const target = 40 * SAFETY;
    const peak = maxInAnyWindow(admitted, WINDOW, () => 1);
    expect(peak).toBeLessThanOrEqual(target);
    expect(peak).toBeGreaterThanOrEqual(0.9 * target);
    // Sustained: two full windows after the first admission hold ~2 × target.
    const t0 = admitted[0]!.at;
    const sustained = admitted.filter((a) => a.at < t0 + 2 * WINDOW).length;
    expect(sustained).toBeGreaterThanOrEqual(0.9 * 2 * target);
  });

  it("keeps tokens per window under safety × tpm and uses at least 90% of it", async () => {
    const replica = fleet(redis, prefix, { model, windowMs: WINDOW, limits: { rpm: 1_000_000, tpm: 2000 } });
    const admitted = await saturate([replica(), replica(), replica()], {
      loops: 4,
      durationMs: 2.5 * WINDOW,
      tokens: () => 20 + Math.floor(Math.random() * 60),
    });
    const target = 2000 * SAFETY;
    const peak = maxInAnyWindow(admitted, WINDOW, (a) => a.tokens);
    expect(peak).toBeLessThanOrEqual(target);
    expect(peak).toBeGreaterThanOrEqual(0.9 * target);
    const t0 = admitted[0]!.at;
    const sustained = admitted.filter((a) => a.at < t0 + 2 * WINDOW).reduce((s, a) => s + a.tokens, 0);
    expect(sustained).toBeGreaterThanOrEqual(0.9 * 2 * target);
  });

  it("limits a cold start's burst to burstFactor × the even share of one sixth of the window", async () => {
    // rpm 60 over 6 s: a 1 s burst window may hold 1.5 × 60 × 0.97 / 6 = 14.55 requests.
    const limiter = fleet(redis, prefix, { model, windowMs: 6000, limits: { rpm: 60, tpm: 1_000_000 } })();
    for (let i = 0; i < 14; i++) await limiter.acquire({ tokens: 1, priority: "live" });
    await expect(limiter.acquire({ tokens: 1, priority: "live", signal: AbortSignal.timeout(300) })).rejects.toThrow();
    expect((await limiter.snapshot()).usedRpm).toBe(14);
  });

  it("rejects a request larger than its priority's whole budget", async () => {
    const limiter = fleet(redis, prefix, { model, limits: { rpm: 100, tpm: 1000 } })();
    await expect(limiter.acquire({ tokens: 1001, priority: "live" })).rejects.toThrow(RequestTooLargeError);
    await expect(limiter.acquire({ tokens: 900, priority: "backfill" })).rejects.toThrow(RequestTooLargeError);
    // Above the safety target but within the limit: admitted alone in an empty window.
    await expect(limiter.acquire({ tokens: 990, priority: "live" })).resolves.toMatchObject({ tokens: 990 });
  });
});

describe("settle", () => {
  it("corrects the reserved tokens up and down in place", async () => {
    const limiter = fleet(redis, prefix, { model, limits: { rpm: 1000, tpm: 10_000 } })();
    const a = await limiter.acquire({ tokens: 100, priority: "live" });
    expect(await limiter.snapshot()).toMatchObject({ usedTpm: 100, usedRpm: 1, inFlight: 1 });
    await a.settle({ actualTokens: 150 });
    expect(await limiter.snapshot()).toMatchObject({ usedTpm: 150, inFlight: 0 });
    const b = await limiter.acquire({ tokens: 100, priority: "live" });
    await b.settle({ actualTokens: 40 });
    expect(await limiter.snapshot()).toMatchObject({ usedTpm: 190, usedRpm: 2, inFlight: 0 });
    await b.settle({ actualTokens: 1000 }); // a second settle is a no-op
    expect((await limiter.snapshot()).usedTpm).toBe(190);
  });

  it("counts an excess at settle time once the reservation has left the window", async () => {
    const limiter = fleet(redis, prefix, { model, windowMs: 300, limits: { rpm: 1000, tpm: 10_000 } })();
    const lease = await limiter.acquire({ tokens: 100, priority: "live" });
    await expect.poll(async () => (await limiter.snapshot()).usedTpm).toBe(0);
    await lease.settle({ actualTokens: 160 });
    expect(await limiter.snapshot()).toMatchObject({ usedTpm: 60, usedRpm: 0, inFlight: 0 });
  });

  it("release() frees the slot and keeps the reservation", async () => {
    const limiter = fleet(redis, prefix, { model, limits: { rpm: 1000, tpm: 10_000, maxInFlight: 1 } })();
    const lease = await limiter.acquire({ tokens: 100, priority: "live" });
    await lease.release();
    expect(await limiter.snapshot()).toMatchObject({ usedTpm: 100, inFlight: 0 });
    await limiter.acquire({ tokens: 1, priority: "live", signal: AbortSignal.timeout(1000) });
  });
});

describe("live reserve", () => {
  it("keeps backfill out of the live share of rpm while live gets in at once", async () => {
    const replica = fleet(redis, prefix, { model, safety: 1, burstFactor: 0, limits: { rpm: 10, tpm: 1_000_000 } });
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
    expect((await live.snapshot()).usedRpm).toBe(10);
  });

  it("keeps backfill out of the live share of in-flight slots", async () => {
    const replica = fleet(redis, prefix, { model, limits: { rpm: 1_000_000, tpm: 1_000_000_000, maxInFlight: 5 } });
    const backfill = replica();
    const live = replica();
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await backfill.acquire({ tokens: 1, priority: "backfill" }));
    const waiting = backfill.acquire({ tokens: 1, priority: "backfill", signal: AbortSignal.timeout(5000) });
    const liveLease = await live.acquire({ tokens: 1, priority: "live" });
    expect(liveLease.waitedMs).toBeLessThan(200);
    expect((await live.snapshot()).inFlight).toBe(5);
    await held[0]!.settle({ actualTokens: 1 });
    await liveLease.settle({ actualTokens: 1 });
    await expect(waiting).resolves.toMatchObject({ priority: "backfill" });
  });
});
