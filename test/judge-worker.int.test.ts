import { priceFor, tokenCostUsd } from "@tracesift/judge";
import type { RequestEvent } from "@tracesift/fireworks-sim";
import { createJudgeQueue, createRedis } from "@tracesift/queue";
import { afterEach, describe, expect, it, vi } from "vitest";
import { openaiEvent, startTestFleet, type TestFleet } from "./helpers/fleet.ts";

const WAIT = { timeout: 90_000, interval: 200 };
const conversations = (prefix: string, n: number) =>
  [...Array(n)].map((_, i) => openaiEvent(`${prefix}-${i}`, [["user", "Plan my week."], ["assistant", "Here is a plan."], ["user", i % 3 ? "Thanks." : "That's wrong."]]));

let fleet: TestFleet | undefined;
afterEach(async () => {
  await fleet?.stop();
  fleet = undefined;
});

describe("judge workers at the provider's limit", () => {
  it("a 429 burst pauses every replica for the retry-after, and no attempt is spent on it", async () => {
    const requests: { at: number; event: RequestEvent }[] = [];
    fleet = await startTestFleet({ workers: 3, sim: { latencyMs: 30, onRequest: (event) => requests.push({ at: Date.now(), event }) } });
    // Warm up so all three replicas are connected and busy when the burst hits.
    const warm = conversations("warm", 6);
    await fleet.produce(warm);
    await vi.waitFor(() => expect(fleet!.records.length).toBe(warm.length), WAIT);

    fleet.sim.injectNext([{ kind: "429", retryAfterSeconds: 2 }, { kind: "429", retryAfterSeconds: 2 }, { kind: "429", retryAfterSeconds: 2 }]);
    const events = conversations("burst", 30);
    await fleet.produce(events);
    await vi.waitFor(() => expect(fleet!.records.length).toBe(warm.length + events.length), WAIT);

    const firstLimited = requests.find((r) => r.event.status === 429);
    expect(firstLimited).toBeDefined();
    const lastLimited = requests.filter((r) => r.event.status === 429).at(-1)!;
    // Calls already in flight may still land, but nobody sends a new call during the pause.
    const during = requests.filter((r) => r.at > lastLimited.at + 300 && r.at < firstLimited!.at + 1_800);
    expect(during).toEqual([]);
    expect(requests.filter((r) => r.event.status === 429).length).toBeLessThanOrEqual(3);
    for (const r of fleet.records) {
      if (r.topic !== "output" || r.result.status !== "judged") throw new Error(`unexpected record ${JSON.stringify(r)}`);
      expect(r.result.attempts).toBe(1);
    }
  });

  it("stops calling an unknown model (404) instead of dead-lettering every job", async () => {
    fleet = await startTestFleet({
      workers: 2,
      sim: { models: ["accounts/fireworks/models/qwen3p5-35b-a3b"] },
      workerEnv: { JUDGE_MODEL: "accounts/me/models/typo" },
    });
    const events = conversations("unknown-model", 10);
    await fleet.produce(events);
    await vi.waitFor(() => expect(fleet!.sim.stats().byStatus["404"]).toBeGreaterThan(0), WAIT);
    // Give the fleet time to (wrongly) keep calling or dead-letter jobs.
    await new Promise((r) => setTimeout(r, 3_000));
    // At most the calls that were already in flight when the first 404 came back.
    expect(fleet.sim.stats().byStatus["404"]).toBeLessThanOrEqual(2 * 8);
    const before = fleet.sim.stats().requests;
    await new Promise((r) => setTimeout(r, 2_000));
    expect(fleet.sim.stats().requests).toBe(before);
    expect(fleet.records).toEqual([]);
    // The jobs wait, delayed, for the model to be fixed: none failed, none lost.
    const redis = createRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", "producer");
    const queue = createJudgeQueue(redis, { QUEUE_PREFIX: fleet.queuePrefix, JUDGE_QUEUE: "judge" });
    const counts = await queue.getJobCounts("delayed", "failed", "waiting", "active", "prioritized");
    await queue.close();
    await redis.quit();
    expect(counts.failed).toBe(0);
    expect((counts.delayed ?? 0) + (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.active ?? 0)).toBe(events.length);
  });

  it("prices every result with the configured pricing table", async () => {
    const price = { input: 0.2, cached_input: 0.05, output: 0.8 };
    fleet = await startTestFleet({
      workers: 1,
      workerEnv: { JUDGE_PRICING: JSON.stringify({ "accounts/fireworks/models/qwen3p5-35b-a3b": price }) },
    });
    const events = conversations("priced", 8);
    await fleet.produce(events);
    await vi.waitFor(() => expect(fleet!.records.length).toBe(events.length), WAIT);
    let cached = 0;
    for (const r of fleet.records) {
      if (r.topic !== "output" || r.result.status !== "judged") throw new Error("expected judged results");
      expect(r.result.cost_usd).toBeCloseTo(tokenCostUsd(r.result.usage, price), 9);
      cached += r.result.usage.cached_prompt_tokens;
    }
    // The static instructions come first, so the provider caches them after the first call.
    expect(cached).toBeGreaterThan(0);
    expect(priceFor({}, "unknown")).toBeDefined();
  });
});
