import { describe, expect, it } from "vitest";
import { mergeFragments, normalizeEvent, type TraceFragment } from "./index.ts";

const one = (event: unknown): TraceFragment => {
  const [f] = normalizeEvent(event);
  if (!f) throw new Error("no fragment");
  return f;
};

describe("openai fragment ids (states of an id-only conversation)", () => {
  const turns = [
    { role: "user", content: "Book Tuesday." },
    { role: "assistant", content: "Booked Wednesday." },
  ];

  it("are the same for the same state, so a redelivery replaces itself", () => {
    expect(one({ id: "c", messages: turns }).fragment_id).toBe(one({ id: "c", messages: structuredClone(turns) }).fragment_id);
    expect(one({ id: "c", messages: turns }).fragment_id).toMatch(/^c:[0-9a-f]{16}$/);
  });

  it("differ when what the judge reads differs: messages, roles, message times, event time", () => {
    const ids = new Set(
      [
        { id: "c", messages: turns },
        { id: "c", messages: [...turns, { role: "user", content: "No, Tuesday." }] },
        { id: "c", messages: [turns[0], { role: "user", content: "Booked Wednesday." }] },
        { id: "c", messages: [turns[0], { ...turns[1], timestamp: "2025-03-01T10:00:00Z" }] },
        { id: "c", messages: turns, timestamp: 1740823200 },
        { id: "c", messages: turns, timestamp: "2025-03-01T10:00:00Z" },
        // Field boundaries cannot shift: the same characters split differently are another state.
        { id: "c", messages: [{ role: "user", content: "ab" }, { role: "user", content: "c" }] },
        { id: "c", messages: [{ role: "user", content: "a" }, { role: "user", content: "bc" }] },
      ].map((e) => one(e).fragment_id),
    );
    expect(ids.size).toBe(8);
  });

  it("identify the state as read: tool traffic the judge never sees makes no new state", () => {
    const withTool = [turns[0], { role: "assistant", content: null, tool_calls: [{ id: "t1", type: "function", function: { name: "book", arguments: "{}" } }] }, { role: "tool", tool_call_id: "t1", content: "ok" }, turns[1]];
    expect(one({ id: "c", messages: withTool }).fragment_id).toBe(one({ id: "c", messages: turns }).fragment_id);
  });
});

describe("mergeFragments of one normalized fragment", () => {
  it("equals merging an unvalidated copy (which is parsed), metadata keys in schema order", () => {
    const f = one({
      id: "c",
      timestamp: "2025-03-01T10:00:00Z",
      metadata: { tenant: "t1", app: "shop", environment: "prod", nested: { dropped: true } },
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Book Tuesday.", timestamp: "2025-03-01T09:59:00Z" },
        { role: "assistant", content: "Booked Wednesday." },
        { role: "user", content: "No, Tuesday." },
      ],
    });
    const fast = mergeFragments([f]);
    const parsed = mergeFragments([structuredClone(f)]);
    expect(fast).toEqual(parsed);
    expect(JSON.stringify(fast)).toBe(JSON.stringify(parsed));
    expect(Object.keys(fast.metadata)).toEqual(["app", "environment", "tenant"]);
    expect(fast).toMatchObject({ id: "c", source: "openai", started_at: "2025-03-01T09:59:00.000Z", updated_at: "2025-03-01T10:00:00.000Z" });
    expect(fast.messages).not.toBe(f.messages);
  });

  it("still validates fragments that did not come from normalizeEvent", () => {
    const bad = { ...one({ id: "c", messages: [{ role: "user", content: "hi" }] }), started_at: "yesterday" };
    expect(() => mergeFragments([bad])).toThrow();
  });
});
