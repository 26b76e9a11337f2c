import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { CachedRegistry, inShadowSample, JudgeRegistry, RegistryError, shadowAgreement } from "./index.ts";

const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const prefix = `test-registry-${randomUUID().slice(0, 8)}`;
const base = { model: "accounts/fireworks/models/base", prompt_version: "pe-1" };
const tuned = { model: "accounts/me/models/tuned", prompt_version: "pe-1" };

afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

describe("judge registry", () => {
  it("promotes a candidate, rolls back to the judge before it, and records both", async () => {
    const registry = new JudgeRegistry(redis, prefix);
    await expect(registry.promote({ fallback: base, by: "ana", forced: false, gate: [] })).rejects.toThrow(RegistryError);
    await registry.setCandidate(tuned, 0.5, "ana");
    const promoted = await registry.promote({ fallback: base, by: "ana", forced: true, gate: ["shadow kappa below 0.8"] });
    expect(promoted).toMatchObject({ action: "promote", from: base, to: tuned, by: "ana", forced: true });
    expect((await registry.state()).live).toEqual(tuned);
    expect((await registry.state()).candidate).toBeNull();
    const back = await registry.rollback({ fallback: base, by: "bo" });
    expect(back).toMatchObject({ action: "rollback", from: tuned, to: base, by: "bo" });
    expect((await registry.state()).live).toEqual(base);
    await expect(registry.rollback({ fallback: base, by: "bo" })).rejects.toThrow(/nothing to roll back/);
    expect((await registry.history()).map((h) => h.action)).toEqual(["promote", "rollback"]);
  });

  it("counts shadow agreement and keeps the disagreements", async () => {
    const registry = new JudgeRegistry(redis, `${prefix}-shadow`);
    await registry.setCandidate(tuned, 1, "ana");
    const v = (pe: boolean) => ({ perceived_error: pe, reason: pe ? "corrected" : "fine" });
    const pairs: [boolean, boolean][] = [[true, true], [true, true], [false, false], [false, false], [false, true]];
    for (const [i, [live, cand]] of pairs.entries()) {
      await registry.recordShadow(tuned, { conversationId: `c${i}`, live: v(live), candidate: v(cand), liveCostUsd: 0.001, candidateCostUsd: 0.0005, liveLatencyMs: 100, candidateLatencyMs: 50 });
    }
    const stats = await registry.shadowStats(tuned);
    expect(stats).toMatchObject({ tp: 2, tn: 2, fp: 1, fn: 0 });
    const a = shadowAgreement(stats);
    expect(a.agreement).toBeCloseTo(0.8);
    // po 0.8, pe = (3*2 + 2*3)/25 = 0.48 → (0.8-0.48)/0.52
    expect(a.kappa).toBeCloseTo(0.32 / 0.52);
    expect(a.positive_rate_diff).toBeCloseTo(0.2);
    expect(a.candidate_cost_per_1k_usd).toBeCloseTo(0.5);
    expect((await registry.disagreements(tuned)).map((d) => d.conversation_id)).toEqual(["c4"]);
  });

  it("reaches a cached reader within its TTL", async () => {
    const registry = new JudgeRegistry(redis, `${prefix}-cache`);
    const cached = new CachedRegistry(registry, 200);
    expect((await cached.get()).live).toBeNull();
    await registry.setCandidate(tuned, 0, "ana");
    await registry.promote({ fallback: base, by: "ana", forced: false, gate: [] });
    expect((await cached.get()).live).toBeNull();
    await new Promise((r) => setTimeout(r, 250));
    expect((await cached.get()).live).toEqual(tuned);
  });
});

describe("shadow sample", () => {
  it("is deterministic and close to the rate", () => {
    const ids = [...Array(4000)].map((_, i) => `conv-${i}`);
    const picked = ids.filter((id) => inShadowSample(id, 0.25));
    expect(picked.length / ids.length).toBeGreaterThan(0.22);
    expect(picked.length / ids.length).toBeLessThan(0.28);
    expect(ids.filter((id) => inShadowSample(id, 0.25))).toEqual(picked);
    expect(inShadowSample("x", 0)).toBe(false);
    expect(inShadowSample("x", 1)).toBe(true);
  });
});
