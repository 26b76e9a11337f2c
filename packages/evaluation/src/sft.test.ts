import { buildChatMessages } from "@tracesift/judge";
import { describe, expect, it } from "vitest";
import { isHoldout, SftRecord, splitBucket, toSftRecord } from "./sft.ts";

describe("toSftRecord", () => {
  it("is exactly the judge's request plus the verdict as its answer", () => {
    const conversation = {
      messages: [
        { role: "system" as const, content: "app prompt" },
        { role: "user" as const, content: "2+2?" },
        { role: "assistant" as const, content: "5" },
        { role: "user" as const, content: "That's wrong" },
      ],
    };
    const record = toSftRecord(conversation, { perceived_error: true, reason: "The user corrects the sum." });
    expect(SftRecord.parse(record)).toEqual(record);
    expect(record.messages.slice(0, 2)).toEqual(buildChatMessages(conversation));
    expect(record.messages[2]).toEqual({ role: "assistant", content: '{"perceived_error":true,"reason":"The user corrects the sum."}' });
  });
});

describe("split", () => {
  const ids = Array.from({ length: 2000 }, (_, i) => `conv-${i}`);

  it("depends on the id and salt only", () => {
    expect(splitBucket("conv-1")).toBe(splitBucket("conv-1"));
    expect(splitBucket("conv-1", "other")).not.toBe(splitBucket("conv-1"));
    const a = ids.filter((id) => isHoldout(id, 0.2));
    const b = [...ids].reverse().filter((id) => isHoldout(id, 0.2));
    expect(new Set(a)).toEqual(new Set(b));
  });

  it("holds out about the requested share, nested as the share grows", () => {
    const share = ids.filter((id) => isHoldout(id, 0.2)).length / ids.length;
    expect(share).toBeGreaterThan(0.17);
    expect(share).toBeLessThan(0.23);
    expect(ids.filter((id) => isHoldout(id, 0.1)).every((id) => isHoldout(id, 0.2))).toBe(true);
    expect(ids.some((id) => isHoldout(id, 0))).toBe(false);
    expect(ids.every((id) => isHoldout(id, 1))).toBe(true);
  });
});
