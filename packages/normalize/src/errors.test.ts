/** Malformed events: a typed NormalizeError naming the problem, never a raw TypeError. */
import { describe, expect, it } from "vitest";
import { detectFormat, FORMAT_NAMES, mergeFragments, NormalizeError, normalizeEvent, toMessages } from "./index.ts";
import { listFixtures, readFixture } from "./test-helpers.ts";

function errorOf(fn: () => unknown): NormalizeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(NormalizeError);
    return err as NormalizeError;
  }
  throw new Error("expected a NormalizeError");
}

const kv = (key: string, value: unknown) => ({ key, value });
const otlp = (spans: unknown[]) => ({ resourceSpans: [{ scopeSpans: [{ spans }] }] });

describe("malformed events", () => {
  it.each<[string, unknown, string, RegExp]>([
    [
      "gen_ai.input.messages that is not JSON",
      otlp([{ traceId: "t", spanId: "3f2a9c0d1e2b4a5f", attributes: [kv("gen_ai.input.messages", { stringValue: "[{role: user" })] }]),
      "invalid_shape",
      /^otel-genai: span 3f2a9c0d… attribute gen_ai\.input\.messages is not valid JSON$/,
    ],
    [
      "gen_ai.output.messages that is JSON but no messages",
      otlp([{ traceId: "t", spanId: "s1", attributes: [kv("gen_ai.output.messages", { stringValue: "42" })] }]),
      "invalid_shape",
      /otel-genai: span s1 attribute gen_ai\.output\.messages is not a list of messages/,
    ],
    ["resourceSpans that is not a list", { resourceSpans: "nope" }, "invalid_shape", /^otel-genai: resourceSpans: .*expected array/],
    [
      "span attributes that are not a list",
      otlp([{ traceId: "t", spanId: "s", attributes: { "gen_ai.input.messages": "[]" } }]),
      "invalid_shape",
      /^otel-genai: resourceSpans\.0\.scopeSpans\.0\.spans\.0\.attributes: .*expected array/,
    ],
    [
      "an attribute entry without a key",
      otlp([{ traceId: "t", spanId: "s", attributes: [{ value: { stringValue: "x" } }] }]),
      "invalid_shape",
      /^otel-genai: resourceSpans\.0\.scopeSpans\.0\.spans\.0: attributes\[0\] is not a \{key, value\} pair/,
    ],
    [
      "OpenInference span events that are not a list",
      { name: "llm", context: { span_id: "s" }, attributes: { "openinference.span.kind": "LLM" }, events: "x" },
      "invalid_shape",
      /^openinference: span\.events: .*expected array/,
    ],
    ["LangSmith batch with post not a list", { post: "x", patch: [] }, "invalid_shape", /^langsmith: post: .*expected array/],
    [
      "LangSmith run without id or dotted_order",
      { post: [{ run_type: "llm", inputs: { messages: [] }, trace_id: "t" }] },
      "invalid_shape",
      /^langsmith: run 0 has neither id nor dotted_order$/,
    ],
    [
      "Langfuse observation without id",
      { trace: { id: "t" }, observations: [{ type: "GENERATION", input: "hi" }] },
      "invalid_shape",
      /^langfuse: observations\.0\.id: .*expected string/,
    ],
    ["Langfuse trace without id", { trace: { name: "x" }, observations: [] }, "invalid_shape", /^langfuse: trace\.id: /],
    ["openai messages that are not chat messages", { id: "c", messages: ["just", "strings"] }, "invalid_shape", /^openai: messages is not a list of chat messages$/],
    ["openai with a non-string id", { id: { nested: true }, messages: [] }, "invalid_shape", /^openai: id: /],
    ["an event of no known format", { foo: 1, bar: [2] }, "unknown_format", /^unknown event format: object with keys foo, bar$/],
    ["a number", 42, "unknown_format", /^unknown event format: number$/],
    ["null", null, "unknown_format", /^unknown event format: null$/],
    ["raw text that is not JSON", "{not json", "invalid_json", /^event is not valid JSON$/],
    ["raw bytes that are not JSON", new TextEncoder().encode("\u0000\u0001"), "invalid_json", /^event is not valid JSON$/],
  ])("%s", (_name, event, code, message) => {
    const err = errorOf(() => normalizeEvent(event));
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
  });

  it("forced format on the wrong shape names the expected shape", () => {
    const err = errorOf(() => normalizeEvent({ hello: "world" }, { format: "otel-genai" }));
    expect(err).toMatchObject({ code: "invalid_shape", format: "otel-genai" });
    expect(err.message).toMatch(/^otel-genai: expected OTLP JSON/);
  });

  it("an event over maxMessages is oversized, not cut", () => {
    const messages = Array.from({ length: 30 }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: `m${i}` }));
    const err = errorOf(() => normalizeEvent({ id: "c", messages }, { maxMessages: 10 }));
    expect(err.code).toBe("oversized");
    expect(err.message).toBe("openai: event holds 30 messages, more than the limit of 10");
    expect(normalizeEvent({ id: "c", messages }, { maxMessages: 30 })[0]?.messages).toHaveLength(30);
  });

  it("accepts raw JSON text and bytes", () => {
    const text = JSON.stringify({ id: "c", messages: [{ role: "user", content: "hi" }] });
    expect(normalizeEvent(text)[0]?.messages).toEqual([{ role: "user", content: "hi" }]);
    expect(normalizeEvent(new TextEncoder().encode(text))[0]?.messages).toEqual([{ role: "user", content: "hi" }]);
  });

  it("mergeFragments refuses nothing and mixed conversations", () => {
    expect(errorOf(() => mergeFragments([])).message).toMatch(/no fragments/);
    const a = normalizeEvent({ id: "a", messages: [] });
    const b = normalizeEvent({ id: "b", messages: [] });
    expect(errorOf(() => mergeFragments([...a, ...b])).message).toMatch(/different conversations \(a, b\)/);
  });
});

// ------------------------------------------------------------------ fuzz

/** Deterministic PRNG so a failure reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = [
  "id", "messages", "role", "content", "parts", "type", "text", "resourceSpans", "scopeSpans", "spans", "attributes", "key", "value",
  "stringValue", "intValue", "arrayValue", "kvlistValue", "values", "events", "name", "post", "patch", "inputs", "outputs", "run_type",
  "trace", "observations", "input", "output", "metadata", "choices", "message", "candidates", "generations", "lc", "kwargs",
  "gen_ai.input.messages", "gen_ai.output.messages", "llm.input_messages", "llm.input_messages.0.message.role", "contents",
  "dotted_order", "trace_id", "traceId", "spanId", "startTimeUnixNano", "start_time", "batch", "body", "conversation_id",
];
const STRINGS = ["", "user", "assistant", "model", "tool", "GENERATION", "llm", "text", "tool_use", "[", "{}", "[]", '[{"role":"user","content":"x"}]', "Observation: x", "2025-01-01T00:00:00Z", "1740823200000000000", "None", "user: hi\nassistant: yo"];

function randomValue(r: () => number, depth: number): unknown {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const k = r();
  if (depth > 4 || k < 0.25) {
    const leaf = r();
    if (leaf < 0.2) return null;
    if (leaf < 0.35) return r() < 0.5;
    if (leaf < 0.55) return pick([0, 1, -1, 1e20, 1.5, Number.MAX_SAFE_INTEGER, 1740823200]);
    return pick(STRINGS);
  }
  if (k < 0.55) return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(r() * 5); i > 0; i--) o[pick(KEYS)] = randomValue(r, depth + 1);
  return o;
}

/** Replace one random subtree of a real event with a random value. */
function mutate(v: unknown, r: () => number, depth = 0): unknown {
  if (depth > 0 && r() < 0.15) return randomValue(r, 3);
  if (Array.isArray(v)) return v.map((x) => (r() < 0.3 ? mutate(x, r, depth + 1) : x));
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = r() < 0.3 ? mutate(x, r, depth + 1) : x;
    return out;
  }
  return v;
}

function onlyNormalizeErrors(event: unknown, format?: (typeof FORMAT_NAMES)[number]): void {
  try {
    const fragments = normalizeEvent(event, format ? { format } : {});
    expect(Array.isArray(fragments)).toBe(true);
    const keys = new Set(fragments.map((f) => f.conversation_key));
    for (const key of keys) mergeFragments(fragments.filter((f) => f.conversation_key === key));
  } catch (err) {
    if (!(err instanceof NormalizeError)) throw new Error(`non-NormalizeError for ${JSON.stringify(event).slice(0, 300)}: ${String(err)}`);
  }
}

describe("fuzz", () => {
  it("random JSON values: only NormalizeError, with and without a forced format", () => {
    const r = rng(1234);
    for (let i = 0; i < 3000; i++) {
      const event = randomValue(r, 0);
      expect(() => detectFormat(event)).not.toThrow();
      expect(() => toMessages(event)).not.toThrow();
      onlyNormalizeErrors(event);
      onlyNormalizeErrors(event, FORMAT_NAMES[i % FORMAT_NAMES.length]);
    }
  });

  it("randomly damaged real fixtures: only NormalizeError", () => {
    const r = rng(99);
    const fixtures = [
      ...listFixtures("langfuse", (f) => f.endsWith(".trace.json")),
      ...listFixtures("langsmith"),
      ...listFixtures("openinference"),
      ...listFixtures("any-agent"),
    ].map(readFixture);
    for (let i = 0; i < 400; i++) {
      const base = fixtures[i % fixtures.length];
      onlyNormalizeErrors(mutate(base, r));
    }
  });
});
