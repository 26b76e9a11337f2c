/**
 * A full Redis is a pause, not a failure. The fleet runs on a redis-server of its own (so its
 * `maxmemory` is ours to change); while model calls are in flight, `maxmemory` drops below use, so
 * Redis refuses every write that would grow it: the verdicts of those calls cannot be kept or
 * indexed, and no job can be completed. Then memory frees (the limit is lifted) and the fleet must
 * go on by itself, having paid each conversation exactly once, written one record each and failed
 * no job.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createJudgeQueue, createRedis } from "@tracesift/queue";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { freePort, openaiEvent, startTestFleet, type TestFleet } from "./helpers/fleet.ts";

let server: ChildProcess | undefined;
let redis: Redis;
let url: string;
let fleet: TestFleet | undefined;

beforeAll(async () => {
  const port = await freePort();
  url = `redis://127.0.0.1:${port}`;
  server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction", "--dir", mkdtempSync(join(tmpdir(), "ts-redis-full-"))], { stdio: "ignore" });
  redis = createRedis(url, "worker");
  redis.on("error", () => undefined);
  await vi.waitFor(async () => expect(await redis.ping()).toBe("PONG"), { timeout: 10_000, interval: 100 });
});

afterAll(async () => {
  await fleet?.stop();
  redis?.disconnect();
  server?.kill("SIGKILL");
});

const metric = async (port: number, name: string) => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
};

describe("Redis at maxmemory", () => {
  it("holds paid verdicts and new calls while full, then finishes by itself: each conversation paid and recorded once, no job failed", async () => {
    fleet = await startTestFleet({
      workers: 2,
      sim: { latencyMs: 1_500 },
      workerEnv: { REDIS_URL: url, JUDGE_CONCURRENCY: "6" },
      ingestEnv: { REDIS_URL: url },
    });
    const n = 40;
    await fleet.produce(
      [...Array(n)].map((_, i) => openaiEvent(`full-${i}`, [["user", "Book the 9:40 train."], ["assistant", "Booked the 10:40."], ["user", i % 2 ? "Thanks." : "No, I said 9:40."]])),
    );
    // Calls in flight (each takes 1.5 s), none answered yet: now Redis fills up.
    await vi.waitFor(() => expect(fleet!.sim.stats().requests).toBeGreaterThanOrEqual(6), { timeout: 30_000, interval: 50 });
    const used = Number(/^used_memory:(\d+)/m.exec(await redis.info("memory"))?.[1]);
    await redis.config("SET", "maxmemory", String(Math.floor(used / 2)));
    await expect(redis.set("probe", "x")).rejects.toThrow(/OOM/);

    // The calls in flight come back, their verdicts cannot be written, and no new call starts.
    await new Promise((r) => setTimeout(r, 3_000));
    const paidWhileFull = fleet.sim.stats().requests;
    const port = fleet.metricsPorts.workers[0]!;
    await vi.waitFor(async () => expect(await metric(port, "tracesift_backpressure_paused")).toBe(1), { timeout: 5_000, interval: 200 });
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(503);
    await new Promise((r) => setTimeout(r, 4_000));
    expect(fleet.sim.stats().requests).toBe(paidWhileFull);
    expect(paidWhileFull).toBeLessThan(n);

    // Memory frees: nobody intervenes in the fleet.
    await redis.config("SET", "maxmemory", "0");
    await vi.waitFor(() => expect(fleet!.records.length).toBeGreaterThanOrEqual(n), { timeout: 90_000, interval: 200 });
    await new Promise((r) => setTimeout(r, 2_000));

    expect(fleet.sim.stats().requests).toBe(n);
    expect(fleet.records.length).toBe(n);
    expect(new Set(fleet.records.map((r) => r.key)).size).toBe(n);
    for (const r of fleet.records) expect(r.topic === "output" && r.result.status === "judged").toBe(true);
    const queue = createJudgeQueue(redis, { QUEUE_PREFIX: fleet.queuePrefix, JUDGE_QUEUE: "judge" });
    const counts = await queue.getJobCounts("failed", "active", "wait", "prioritized", "delayed");
    await queue.close();
    expect(counts).toEqual({ failed: 0, active: 0, wait: 0, prioritized: 0, delayed: 0 });
    expect(await metric(port, "tracesift_backpressure_paused")).toBe(0);
  });
});
