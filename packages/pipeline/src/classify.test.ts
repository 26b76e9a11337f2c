import type { KafkaMessage } from "@tracesift/kafka";
import { PROVENANCE_HEADER } from "@tracesift/schemas";
import { describe, expect, it } from "vitest";
import { classifyMessage, type Selection, sampleBucket } from "./classify.ts";

const all: Selection = { sampleRate: 1, includeApps: [], excludeApps: [], requireMetadata: {} };
const message = (value: unknown, headers: KafkaMessage["headers"] = {}): KafkaMessage =>
  ({ key: null, value: Buffer.from(typeof value === "string" ? value : JSON.stringify(value)), offset: "7", timestamp: "1764320000000", headers, attributes: 0 }) as KafkaMessage;
const event = (id: string, app = "shop", environment = "prod") => ({
  id,
  metadata: { app, environment },
  messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "hello" }, { role: "user", content: "wrong" }],
});
const classify = (m: KafkaMessage, selection: Partial<Selection> = {}) =>
  classifyMessage(m, "traces", 0, { maxEventBytes: 10_000, selection: { ...all, ...selection } });

describe("classifyMessage", () => {
  it("buffers a readable event's fragments", () => {
    const [o] = classify(message(event("c1")));
    expect(o).toMatchObject({ kind: "fragments", format: "openai", source: { topic: "traces", partition: 0, offset: "7" } });
  });

  it("dead-letters what it cannot read, keeping the original bytes", () => {
    const [o] = classify(message("{oops"));
    expect(o?.kind === "dead" && Buffer.from(o.letter.original_base64 ?? "", "base64").toString()).toBe("{oops");
    expect(classify(message("x".repeat(20_000)))[0]).toMatchObject({ kind: "dead", letter: { reason_code: "oversized" } });
  });

  it("skips the fleet's own traffic", () => {
    expect(classify(message(event("c1"), { [PROVENANCE_HEADER]: "judge-worker" }))[0]).toMatchObject({ kind: "skipped", reason: "own_judge_call" });
    const traced = { ...event("c2"), metadata: { app: "tracesift-judge-worker" } };
    expect(classify(message(traced))[0]).toMatchObject({ kind: "skipped", reason: "own_judge_call" });
  });

  it("filters by app and metadata", () => {
    expect(classify(message(event("c1", "shop")), { includeApps: ["support"] })[0]).toMatchObject({ kind: "skipped", reason: "filtered" });
    expect(classify(message(event("c1", "shop")), { excludeApps: ["shop"] })[0]).toMatchObject({ kind: "skipped", reason: "filtered" });
    expect(classify(message(event("c1", "shop", "staging")), { requireMetadata: { environment: "prod" } })[0]).toMatchObject({ reason: "filtered" });
    expect(classify(message(event("c1", "shop", "prod")), { requireMetadata: { environment: "prod" } })[0]?.kind).toBe("fragments");
  });

  it("samples deterministically by conversation key, close to the configured rate", () => {
    const ids = [...Array(2000)].map((_, i) => `conv-${i}`);
    const kept = ids.filter((id) => classify(message(event(id)), { sampleRate: 0.25 })[0]?.kind === "fragments");
    expect(kept.length / ids.length).toBeGreaterThan(0.22);
    expect(kept.length / ids.length).toBeLessThan(0.28);
    // The same conversation is decided the same way every time (live, replay, another replica).
    const again = ids.filter((id) => classify(message(event(id)), { sampleRate: 0.25 })[0]?.kind === "fragments");
    expect(again).toEqual(kept);
    expect(sampleBucket("conv-1")).toBe(sampleBucket("conv-1"));
  });
});
