import { describe, expect, it } from "vitest";
import { capLogFields } from "./index.ts";

describe("kafkajs log fields", () => {
  it("cuts long strings (an error quoting a conversation) and keeps their length", () => {
    const conversation = `{"messages":[{"role":"user","content":"my address is ${"x".repeat(8000)}"}]}`;
    const capped = capLogFields({ error: `OOM command not allowed ${conversation}`, partition: 2, topic: "traces" });
    expect(String(capped.error).length).toBeLessThan(400);
    expect(capped.error).toMatch(/\[\d+ chars, cut\]$/);
    expect(capped).toMatchObject({ partition: 2, topic: "traces" });
  });
});
