/**
 * The golden corpus: for each fixture with a hand-written `fixtures/expected/<fixture>` (roles and
 * texts of the human's and assistant's turns, read off the payload as a person would), the
 * conversations Tracesift assembles must be exactly those: no extra turn, none missing.
 * Fixtures are read as raw text, as ingest receives them, so JSON-number ids keep their digits.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { explainEvent, mergeFragments, normalizeEvent, type TraceFragment } from "./index.ts";
import { FIXTURES_DIR, listFixtures } from "./test-helpers.ts";

const EVENT_DIRS = ["langfuse", "langfuse-seeder", "langsmith", "openinference", "any-agent"];
const events = EVENT_DIRS.flatMap((d) => listFixtures(d, (f) => f.endsWith(".json") && !f.endsWith(".chatml.json")));
const expectedPath = (rel: string) => `${FIXTURES_DIR}expected/${rel}`;

function assemble(text: string): Record<string, [string, string][]> {
  const byKey = new Map<string, TraceFragment[]>();
  for (const f of normalizeEvent(text)) byKey.set(f.conversation_key, [...(byKey.get(f.conversation_key) ?? []), f]);
  const out: Record<string, [string, string][]> = {};
  for (const [k, fs] of byKey) out[k] = mergeFragments(fs).messages.map((m) => [m.role, m.content.trim()]);
  return out;
}

/**
 * Fixtures whose expected conversation (what a person reads) Tracesift does not produce yet, each
 * with why. `it.fails` keeps the gap honest: the day the code reads them right, the test says so.
 */
const KNOWN_GAPS = new Map([
  [
    "langfuse/beeai-2025-08-01.trace.json",
    "BeeAI's ReAct loop: the final answer is in a non-generation span (agent.react.success), and each model call's output embeds the tool's output in the assistant's text (README, Known limits)",
  ],
]);

describe("golden corpus", () => {
  const withExpected = events.filter((rel) => existsSync(expectedPath(rel)));
  const check = (rel: string) => {
    const expected = JSON.parse(readFileSync(expectedPath(rel), "utf8")) as Record<string, [string, string][]>;
    const trimmed = Object.fromEntries(Object.entries(expected).map(([k, ms]) => [k, ms.map(([r, t]) => [r, t.trim()])]));
    expect(assemble(readFileSync(`${FIXTURES_DIR}${rel}`, "utf8"))).toEqual(trimmed);
  };

  it.each(withExpected.filter((rel) => !KNOWN_GAPS.has(rel)))("%s", check);
  for (const rel of withExpected.filter((r) => KNOWN_GAPS.has(r))) it.fails(`${rel} (known gap: ${KNOWN_GAPS.get(rel)})`, () => check(rel));

  it("every expected file belongs to a fixture", () => {
    const files = EVENT_DIRS.flatMap((d) => (existsSync(expectedPath(d)) ? readdirSync(expectedPath(d)).map((f) => `${d}/${f}`) : []));
    for (const f of files) expect(events).toContain(f);
    expect(files.length).toBeGreaterThanOrEqual(50);
  });

  // Not yet written by hand: listed so the gap stays visible.
  for (const rel of events.filter((r) => !existsSync(expectedPath(r)))) it.todo(rel);
});

describe("the issue's cases, span by span", () => {
  const text = (rel: string) => readFileSync(`${FIXTURES_DIR}${rel}`, "utf8");

  it("any-agent: a trace id written as a JSON number keeps every digit", () => {
    const keys = new Set(normalizeEvent(text("any-agent/LANGCHAIN_trace.json")).map((f) => f.conversation_key));
    expect([...keys]).toEqual(["115825058289444712299650141807529952578"]);
  });

  it("Claude Agent SDK: the {content: 'role'} inputs add no user turn", () => {
    const { spans } = explainEvent(text("langfuse/claude-agent-2025-12-22.trace.json"));
    const dropped = spans.filter((s) => !s.kept).map((s) => s.reason);
    expect(dropped).toContain("not a model call (Langfuse TOOL observation)");
    expect(dropped).toContain("not a model call (Langfuse SPAN observation)");
  });

  it("pydantic-ai: the evaluator agent is skipped as a sub-agent, or judged on its own when asked", () => {
    const rel = "langfuse/pydantic-ai-tools-2025-12-04.trace.json";
    const { spans } = explainEvent(text(rel));
    expect(spans.find((s) => s.id === "eb0cc14cf7943ad5")).toMatchObject({ kept: false, reason: expect.stringMatching(/^sub-agent/) });
    const separate = new Map<string, TraceFragment[]>();
    for (const f of normalizeEvent(text(rel), { subAgents: "separate" })) separate.set(f.conversation_key, [...(separate.get(f.conversation_key) ?? []), f]);
    expect(separate.size).toBe(2);
    const sub = [...separate.entries()].find(([k]) => k.includes("/sub-agent:"));
    expect(sub && mergeFragments(sub[1]).messages[0]?.content).toBe("You are a joke critic. Evaluate if the joke is funny and well-crafted.");
  });
});
