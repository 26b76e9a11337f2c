import { describe, expect, it } from "vitest";
import { flips, judgedMessages } from "./flip-proxy.ts";

describe("flip rule", () => {
  const conversations = Array.from({ length: 1000 }, (_, i) => [{ role: "user", content: `question ${i}` }]);

  it("flips a stable share of conversations, per salt", () => {
    const rule = { share: 0.2, salt: "b" };
    const flipped = conversations.filter((m) => flips(rule, m));
    expect(flipped.length / conversations.length).toBeGreaterThan(0.17);
    expect(flipped.length / conversations.length).toBeLessThan(0.23);
    expect(conversations.filter((m) => flips(rule, m))).toEqual(flipped);
    expect(conversations.filter((m) => flips({ share: 0.2, salt: "c" }, m))).not.toEqual(flipped);
  });

  it("reads the judged conversation out of a request body", () => {
    const body = { messages: [{ role: "system", content: "x" }, { role: "user", content: `header\n${JSON.stringify({ messages: [{ role: "user", content: "hi" }] })}` }] };
    expect(judgedMessages(body)).toEqual([{ role: "user", content: "hi" }]);
    expect(judgedMessages({ messages: [{ role: "user", content: "plain" }] })).toBeNull();
  });
});
