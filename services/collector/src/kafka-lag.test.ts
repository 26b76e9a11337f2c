import { kafkaLagMetrics } from "@tracesift/metrics";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { exportLag, type OffsetsAdmin, partitionLag, readGroupLag } from "./kafka-lag.ts";

describe("lag from the broker", () => {
  it("counts from the committed offset, the log start when nothing is committed or it was deleted", () => {
    expect(partitionLag({ topic: "t", partition: 0, committed: 40, low: 0, high: 100 }).lag).toBe(60);
    expect(partitionLag({ topic: "t", partition: 0, committed: -1, low: 10, high: 100 }).lag).toBe(90);
    expect(partitionLag({ topic: "t", partition: 0, committed: 5, low: 10, high: 100 })).toMatchObject({ lag: 90, position: 10 });
    expect(partitionLag({ topic: "t", partition: 0, committed: 100, low: 0, high: 100 }).lag).toBe(0);
  });

  it("reads every partition of every topic, committed or not, and exports them", async () => {
    const admin: OffsetsAdmin = {
      fetchOffsets: async () => [{ topic: "traces", partitions: [{ partition: 0, offset: "7" }, { partition: 1, offset: "-1" }] }],
      fetchTopicOffsets: async () => [
        { partition: 0, low: "0", high: "10" },
        { partition: 1, low: "0", high: "4" },
        { partition: 2, low: "0", high: "0" },
      ],
    };
    const lags = await readGroupLag(admin, "g", ["traces"]);
    expect(lags.map((l) => [l.partition, l.lag])).toEqual([
      [0, 3],
      [1, 4],
      [2, 0],
    ]);
    const registry = new Registry();
    exportLag(kafkaLagMetrics(registry), "g", lags);
    const text = await registry.metrics();
    expect(text).toContain('tracesift_kafka_consumer_lag_messages{group="g",topic="traces",partition="1"} 4');
    expect(text).toContain('tracesift_kafka_committed_offset{group="g",topic="traces",partition="0"} 7');
  });

  it("skips a topic that does not exist yet and fails on other errors", async () => {
    const missing = Object.assign(new Error("This server does not host this topic-partition"), { type: "UNKNOWN_TOPIC_OR_PARTITION" });
    const admin = (err: Error): OffsetsAdmin => ({
      fetchOffsets: async () => [],
      fetchTopicOffsets: async (topic) => {
        if (topic === "later") throw err;
        return [{ partition: 0, low: "0", high: "2" }];
      },
    });
    expect((await readGroupLag(admin(missing), "g", ["later", "traces"])).map((l) => `${l.topic}:${l.lag}`)).toEqual(["traces:2"]);
    await expect(readGroupLag(admin(new Error("broker down")), "g", ["later"])).rejects.toThrow("broker down");
  });
});
