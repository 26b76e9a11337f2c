import type { JudgedResult } from "@tracesift/schemas";
import { describe, expect, it } from "vitest";
import { CANARY_KEY, canaryEvent, canaryMarkOf, canaryTopicFor, RollingCanaryScore } from "./canary.ts";
import { parseDatasetLine } from "./dataset.ts";

const T0 = Date.parse("2026-11-28T10:00:00.000Z");

function judged(i: number, label: boolean, predicted: boolean, over: { model?: string; at?: number; canary?: boolean } = {}): JudgedResult {
  return {
    schema_version: 1,
    result_id: `r${i}:${over.model ?? "m1"}`,
    status: "judged",
    conversation_id: `c${i}`,
    conversation_version: { message_count: 3, content_hash: "h" },
    metadata: over.canary === false ? {} : { [CANARY_KEY]: "run1", tracesift_canary_label: String(label) },
    source: { topic: "traces", partition: 0, offset: String(i) },
    priority: "live",
    verdict: { perceived_error: predicted, reason: "x" },
    judge: { model: over.model ?? "m1", prompt_version: "p1" },
    usage: { prompt_tokens: 1, cached_prompt_tokens: 0, completion_tokens: 1, total_tokens: 2 },
    cost_usd: 0,
    latency_ms: 1,
    attempts: 1,
    judged_at: new Date(over.at ?? T0).toISOString(),
  };
}

describe("canaries", () => {
  it("marks a labelled conversation with a fresh id per feeding, and reads the mark back", () => {
    const item = parseDatasetLine(JSON.stringify({ id: "c1", messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "yo" }, { role: "user", content: "wrong" }], label: { perceived_error: true } }), 1);
    const a = canaryEvent(item, "run1", 1);
    const b = canaryEvent(item, "run1", 2);
    expect(a.key).not.toBe(b.key);
    const event = JSON.parse(a.value) as { metadata: Record<string, string>; messages: unknown[] };
    expect(canaryMarkOf(event.metadata)).toEqual({ run: "run1", label: true });
    expect(event.messages).toHaveLength(3);
    expect(canaryTopicFor("traces.canary")({ conversation: { metadata: event.metadata } })).toBe("traces.canary");
    expect(canaryTopicFor("traces.canary")({ conversation: { metadata: { app: "x" } } })).toBeUndefined();
  });

  it("scores a rolling window per judge version, counting redeliveries once", () => {
    const score = new RollingCanaryScore(60_000);
    // m1: 3 right (tp, tn, tn), 1 wrong (fn). m2: all right.
    expect(score.add(judged(1, true, true))).toBe(true);
    score.add(judged(2, false, false));
    score.add(judged(3, false, false));
    score.add(judged(4, true, false));
    expect(score.add(judged(4, true, false))).toBe(false);
    expect(score.add(judged(5, true, true, { canary: false }))).toBe(false);
    score.add(judged(6, true, true, { model: "m2" }));
    score.add(judged(7, false, false, { model: "m2" }));
    const [m1, m2] = score.scores(T0 + 1_000);
    expect(m1).toMatchObject({ model: "m1", prompt_version: "p1", n: 4, accuracy: 0.75, precision: 1, recall: 0.5 });
    expect(m1!.kappa).toBeCloseTo(0.5, 9);
    expect(m2).toMatchObject({ model: "m2", n: 2, accuracy: 1, kappa: 1 });
  });

  it("forgets verdicts older than the window", () => {
    const score = new RollingCanaryScore(60_000);
    score.add(judged(1, true, false, { at: T0 }));
    score.add(judged(2, true, true, { at: T0 + 50_000 }));
    expect(score.scores(T0 + 90_000)[0]).toMatchObject({ n: 1, accuracy: 1 });
  });
});
