import { describe, expect, it } from "vitest";
import { conversationToEvent, parseDataset, parseDatasetLine } from "./dataset.ts";

const msgs = [
  { role: "user", content: "Book Dana on Tuesday" },
  { role: "assistant", content: "Booked Wednesday 3pm" },
  { role: "user", content: "No, I said Tuesday" },
];

describe("labelled lines", () => {
  it("reads the wrapper form", () => {
    const item = parseDatasetLine(JSON.stringify({ event: { id: "c1", messages: msgs }, label: { perceived_error: true, reason: "corrects the day" } }), 1);
    expect(item.conversation.id).toBe("c1");
    expect(item.label).toEqual({ perceived_error: true, reason: "corrects the day" });
    expect(item.judgeable).toBe(true);
  });

  it("reads a label inline next to the event, and keeps it out of the conversation", () => {
    const item = parseDatasetLine(JSON.stringify({ id: "c2", messages: msgs, metadata: { app: "cal" }, label: { perceived_error: false } }), 3);
    expect(item.label).toEqual({ perceived_error: false });
    expect(item.conversation.metadata).toEqual({ app: "cal" });
    expect(item.line).toBe(3);
  });

  it("accepts unlabelled lines and extra label fields", () => {
    expect(parseDatasetLine(JSON.stringify({ id: "c3", messages: msgs }), 1).label).toBeUndefined();
    const item = parseDatasetLine(JSON.stringify({ event: { id: "c4", messages: msgs }, label: { perceived_error: true, reason: "x", provenance: "human", panel: [] } }), 1);
    expect(item.label?.provenance).toBe("human");
  });

  it("reads non-OpenAI formats (a LangSmith run)", () => {
    const run = {
      id: "22222222-2222-4222-8222-222222222222",
      trace_id: "22222222-2222-4222-8222-222222222222",
      run_type: "llm",
      start_time: "2025-03-01T10:00:00Z",
      extra: { metadata: { session_id: "ls-1" } },
      inputs: { messages: msgs },
      outputs: { generations: [[{ text: "Moved it to Tuesday." }]] },
    };
    const item = parseDatasetLine(JSON.stringify({ event: run, label: { perceived_error: true } }), 1);
    expect(item.conversation.id).toBe("ls-1");
    expect(item.conversation.source).toBe("langsmith");
    expect(item.conversation.messages.map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant"]);
  });

  it("marks conversations without a user reply as not judgeable", () => {
    expect(parseDatasetLine(JSON.stringify({ id: "c5", messages: msgs.slice(0, 2) }), 1).judgeable).toBe(false);
  });

  it("round-trips through conversationToEvent with the same version", () => {
    const item = parseDatasetLine(JSON.stringify({ id: "c6", messages: [{ role: "system", content: "be nice" }, ...msgs] }), 1);
    const again = parseDatasetLine(JSON.stringify(conversationToEvent(item.conversation)), 1);
    expect(again.version).toEqual(item.version);
  });
});

describe("parseDataset", () => {
  it("reports each bad line with its number and keeps the good ones", () => {
    const text = [
      JSON.stringify({ id: "a", messages: msgs, label: { perceived_error: true } }),
      "",
      "not json",
      JSON.stringify({ id: "b", messages: msgs, label: { perceived_error: "yes" } }),
      JSON.stringify({ id: "a", messages: msgs }),
      JSON.stringify({ what: 1 }),
    ].join("\n");
    const ds = parseDataset("d", text);
    expect(ds.items.map((i) => i.conversation.id)).toEqual(["a"]);
    expect(ds.problems.map((p) => p.line)).toEqual([3, 4, 5, 6]);
    expect(ds.problems[2]!.message).toContain("already used on line 1");
    expect(ds.problems[3]!.message).toContain("unknown_format");
  });
});
