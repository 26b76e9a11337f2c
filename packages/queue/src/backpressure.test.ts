import { describe, expect, it } from "vitest";
import { BackpressureEnv, isRedisFullError, nextState } from "./backpressure.ts";

const marks = { memoryHigh: 0.75, memoryLow: 0.6, queueHigh: 1000, queueLow: 800 };
const at = (memoryRatio: number | null, backlog = 0) => ({ memoryRatio, usedMemory: 0, backlog });

describe("backpressure marks", () => {
  it("pauses at the high mark and resumes only below the low mark", () => {
    expect(nextState(false, at(0.7), marks).paused).toBe(false);
    expect(nextState(false, at(0.75), marks)).toEqual({ paused: true, reason: expect.stringContaining("75.0% of maxmemory") });
    // Between the marks a paused producer stays paused, a running one keeps running.
    expect(nextState(true, at(0.65), marks).paused).toBe(true);
    expect(nextState(false, at(0.65), marks).paused).toBe(false);
    expect(nextState(true, at(0.59), marks)).toEqual({ paused: false, reason: null });
  });

  it("applies the same hysteresis to the queue's backlog, and ignores memory without maxmemory", () => {
    expect(nextState(false, at(null, 999), marks).paused).toBe(false);
    expect(nextState(false, at(null, 1000), marks).reason).toBe("1000 jobs waiting (pause at 1000)");
    expect(nextState(true, at(null, 900), marks).paused).toBe(true);
    expect(nextState(true, at(null, 799), marks).paused).toBe(false);
    expect(nextState(false, at(null, 10_000_000), { ...marks, queueHigh: 0 }).paused).toBe(false);
  });

  it("rejects marks whose low is not below their high", () => {
    expect(BackpressureEnv.safeParse({}).success).toBe(true);
    expect(BackpressureEnv.safeParse({ BACKPRESSURE_MEMORY_HIGH: "0.5", BACKPRESSURE_MEMORY_LOW: "0.6" }).success).toBe(false);
    expect(BackpressureEnv.safeParse({ BACKPRESSURE_QUEUE_HIGH: "10", BACKPRESSURE_QUEUE_LOW: "10" }).success).toBe(false);
    expect(BackpressureEnv.safeParse({ BACKPRESSURE_MEMORY_HIGH: "1.5" }).success).toBe(false);
  });

  it("recognises Redis's out-of-memory refusal", () => {
    expect(isRedisFullError(new Error("OOM command not allowed when used memory > 'maxmemory'."))).toBe(true);
    expect(isRedisFullError(new Error("Connection is closed."))).toBe(false);
  });
});
