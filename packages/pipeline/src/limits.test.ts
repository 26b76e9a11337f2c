import type { Conversation } from "@tracesift/schemas";
import { describe, expect, it } from "vitest";
import { applyLimits } from "./limits.ts";

const conversation = (n: number): Conversation => ({
  id: "c",
  source: "openai",
  metadata: {},
  messages: [
    { role: "system", content: "sys" },
    ...[...Array(n)].map((_, i) => ({ role: i % 2 ? ("assistant" as const) : ("user" as const), content: `m${i}` })),
  ],
});

describe("applyLimits", () => {
  it("passes a conversation within the limits untouched", () => {
    const c = conversation(4);
    expect(applyLimits(c, { maxMessages: 10, maxChars: 1000, trim: "none" })).toEqual({ kind: "ok", conversation: c, trimmed: 0 });
  });

  it("dead-letters an oversized conversation by default", () => {
    const r = applyLimits(conversation(12), { maxMessages: 10, maxChars: 1000, trim: "none" });
    expect(r).toMatchObject({ kind: "oversized", reason: expect.stringContaining("13 messages") });
  });

  it("trims the oldest turns, keeping system messages and the latest turns", () => {
    const r = applyLimits(conversation(12), { maxMessages: 5, maxChars: 1000, trim: "oldest-turns" });
    if (r.kind !== "ok") throw new Error("expected ok");
    expect(r.trimmed).toBe(8);
    expect(r.conversation.messages.map((m) => m.content)).toEqual(["sys", "m8", "m9", "m10", "m11"]);
  });

  it("refuses to trim below the last assistant turn and its reply", () => {
    const r = applyLimits(conversation(4), { maxMessages: 2, maxChars: 1000, trim: "oldest-turns" });
    expect(r.kind).toBe("oversized");
  });
});
