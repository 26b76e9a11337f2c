import { randomUUID } from "node:crypto";
import type { JudgeJob } from "@tracesift/schemas";
import { afterAll, describe, expect, it, vi } from "vitest";
import { createJudgeQueue, createRedis, enqueueJudgeJobs, watchBackpressure } from "./index.ts";

const redis = createRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", "producer");
const prefix = `test-bp-${randomUUID().slice(0, 8)}`;
const queue = createJudgeQueue(redis, { QUEUE_PREFIX: prefix, JUDGE_QUEUE: "judge" });

afterAll(async () => {
  await queue.obliterate({ force: true });
  await queue.close();
  await redis.quit();
});

const job = (i: number): JudgeJob => ({
  conversation: { id: `c${i}`, source: "openai", metadata: {}, messages: [{ role: "user", content: `hello ${i}` }] },
  version: { message_count: 1, content_hash: `h${i}` },
  source: { topic: "t", partition: 0, offset: String(i) },
  priority: "backfill",
  enqueued_at: new Date().toISOString(),
});

describe("watchBackpressure against Redis", () => {
  it("pauses when the backlog reaches the high mark and resumes when it drains below the low mark", async () => {
    const changes: boolean[] = [];
    const watch = watchBackpressure({ redis, queue, marks: { memoryHigh: 1, memoryLow: 0.99, queueHigh: 20, queueLow: 10 }, intervalMs: 50, onChange: (s) => changes.push(s.paused) });
    try {
      await enqueueJudgeJobs(queue, Array.from({ length: 25 }, (_, i) => job(i)));
      await vi.waitFor(() => expect(watch.state().paused).toBe(true), { timeout: 5_000 });
      expect(watch.state().backlog).toBe(25);
      let cleared = false;
      const clear = watch.whenClear().then(() => {
        cleared = true;
      });
      // Down to 12: between the marks, still paused.
      const jobs = await queue.getJobs(["prioritized", "wait"], 0, -1);
      await Promise.all(jobs.slice(0, 13).map((j) => j.remove()));
      await watch.check();
      expect(watch.state().paused).toBe(true);
      expect(cleared).toBe(false);
      await Promise.all(jobs.slice(13, 16).map((j) => j.remove()));
      await clear;
      expect(watch.state()).toMatchObject({ paused: false, backlog: 9 });
      expect(changes).toEqual([true, false]);
    } finally {
      watch.stop();
    }
  });
});
