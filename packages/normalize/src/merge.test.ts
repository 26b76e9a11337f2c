import type { Message } from "@tracesift/schemas";
import { describe, expect, it } from "vitest";
import { isJudgeable, mergeFragments, type TraceFragment } from "./index.ts";
import { rt } from "./test-helpers.ts";

const u = (content: string, timestamp?: string): Message => (timestamp ? { role: "user", content, timestamp } : { role: "user", content });
const a = (content: string, timestamp?: string): Message => (timestamp ? { role: "assistant", content, timestamp } : { role: "assistant", content });
const s = (content: string): Message => ({ role: "system", content });

let n = 0;
function frag(messages: Message[], extra: Partial<TraceFragment> = {}): TraceFragment {
  n++;
  return { source: "otel-genai", conversation_key: "c", fragment_id: `f${n}`, messages, metadata: {}, end: false, ...extra };
}
const T = (sec: number) => new Date(Date.UTC(2025, 2, 1, 10, 0, sec)).toISOString();

describe("mergeFragments", () => {
  it("a later call's input repeats the history: each message appears once", () => {
    const conv = mergeFragments([
      frag([s("S"), u("Q1"), a("A1")], { started_at: T(0), ended_at: T(1) }),
      frag([s("S"), u("Q1"), a("A1"), u("Q2"), a("A2")], { started_at: T(5), ended_at: T(6) }),
      frag([s("S"), u("Q1"), a("A1"), u("Q2"), a("A2"), u("Q3")], { started_at: T(9) }),
    ]);
    expect(rt(conv.messages)).toEqual(rt([s("S"), u("Q1"), a("A1"), u("Q2"), a("A2"), u("Q3")]));
    expect(conv).toMatchObject({ id: "c", source: "otel-genai", started_at: T(0), updated_at: T(9) });
  });

  it("orders fragments by time, not arrival", () => {
    const conv = mergeFragments([
      frag([u("Q2"), a("A2")], { started_at: T(5) }),
      frag([u("Q1"), a("A1")], { started_at: T(0) }),
    ]);
    expect(rt(conv.messages)).toEqual(rt([u("Q1"), a("A1"), u("Q2"), a("A2")]));
  });

  it("keeps history a later fragment dropped (sliding window, stateful APIs)", () => {
    const conv = mergeFragments([
      frag([s("S"), u("Q1"), a("A1"), u("Q2")], { started_at: T(0) }),
      frag([s("S"), u("Q2"), a("A2")], { started_at: T(5) }),
    ]);
    expect(rt(conv.messages)).toEqual(rt([s("S"), u("Q1"), a("A1"), u("Q2"), a("A2")]));
  });

  it("interleaves messages only one side has by their timestamps when all are dated", () => {
    const conv = mergeFragments([
      frag([u("Q1", T(0)), a("A1", T(1)), a("late", T(9))], { started_at: T(0) }),
      frag([u("Q1"), a("A1"), u("Q2", T(4)), a("A2", T(5))], { started_at: T(3) }),
    ]);
    expect(rt(conv.messages)).toEqual(rt([u("Q1"), a("A1"), u("Q2"), a("A2"), a("late")]));
    expect(conv.messages[0]?.timestamp).toBe(T(0));
  });

  it("keeps a message's first wording and earliest time; matches across re-serialization", () => {
    const conv = mergeFragments([
      frag([u("hi"), a('Action Input: {"tz": "NY"}', T(2))], { started_at: T(0) }),
      frag([u("hi"), a("Action Input: {'tz': 'NY'}"), u("ok")], { started_at: T(3) }),
    ]);
    expect(conv.messages).toEqual([u("hi"), a('Action Input: {"tz": "NY"}', T(2)), u("ok")]);
  });

  it("repeated identical turns stay repeated", () => {
    const conv = mergeFragments([frag([u("yes"), a("ok")], { started_at: T(0) }), frag([u("yes"), a("ok"), u("yes"), a("done")], { started_at: T(5) })]);
    expect(rt(conv.messages)).toEqual(rt([u("yes"), a("ok"), u("yes"), a("done")]));
  });

  it("dedups by fragment id: a redelivery replaces the copy unless the copy knew more", () => {
    const first = frag([u("Q1")], { fragment_id: "span-1", started_at: T(0) });
    const patched = frag([u("Q1"), a("A1")], { fragment_id: "span-1", started_at: T(0) });
    expect(rt(mergeFragments([first, patched]).messages)).toEqual(rt([u("Q1"), a("A1")]));
    expect(rt(mergeFragments([patched, first]).messages)).toEqual(rt([u("Q1"), a("A1")]));
  });

  it("undated fragments keep arrival order among dated ones", () => {
    const conv = mergeFragments([frag([u("Q1")], { started_at: T(0) }), frag([a("A1")]), frag([u("Q2")], { started_at: T(5) })]);
    expect(rt(conv.messages)).toEqual(rt([u("Q1"), a("A1"), u("Q2")]));
  });

  it("metadata: later fragments fill in and override labels", () => {
    const conv = mergeFragments([
      frag([u("Q")], { started_at: T(0), metadata: { app: "bot", environment: "dev" } }),
      frag([a("A")], { started_at: T(1), metadata: { environment: "prod", model: "m" } }),
    ]);
    expect(conv.metadata).toEqual({ app: "bot", environment: "prod", model: "m" });
  });

  it("very long histories fall back to linear merging", () => {
    const long = Array.from({ length: 2100 }, (_, i) => (i % 2 ? a(`a${i}`) : u(`u${i}`)));
    const conv = mergeFragments([frag(long.slice(0, 2050), { started_at: T(0) }), frag(long, { started_at: T(1) })]);
    expect(conv.messages).toHaveLength(2100);
  });
});

describe("isJudgeable", () => {
  it.each<[string, Message[], boolean]>([
    ["empty", [], false],
    ["user only", [u("Q")], false],
    ["user then assistant", [s("S"), u("Q"), a("A")], false],
    ["user after assistant", [u("Q"), a("A"), u("No!")], true],
    ["assistant greets first", [a("Hi, how can I help?"), u("Book a flight")], true],
    ["consecutive users, then assistant", [u("Q"), u("more"), a("A")], false],
  ])("%s → %s", (_name, messages, expected) => {
    expect(isJudgeable({ messages })).toBe(expected);
  });
});
