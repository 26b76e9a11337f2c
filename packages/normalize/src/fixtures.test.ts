/**
 * The real payloads under packages/normalize/fixtures (see its README): every one must normalize,
 * and where Langfuse's own ChatML conversion exists we must agree with it after the documented
 * transformation (tool parts dropped, `model` → `assistant`).
 */
import { readFileSync } from "node:fs";
import { Conversation } from "@tracesift/schemas";
import { describe, expect, it } from "vitest";
import { detectFormat, type FormatName, isJudgeable, mergeFragments, normalizeEvent, type TraceFragment, toMessages } from "./index.ts";
import { fixturePath, listFixtures, readFixture, rt } from "./test-helpers.ts";
import { isRecord, maybeJson, type Rec } from "./util.ts";

const EVENT_FIXTURES: [string, FormatName][] = [
  ...listFixtures("langfuse", (f) => f.endsWith(".trace.json")).map((f): [string, FormatName] => [f, "langfuse"]),
  ...listFixtures("langfuse-seeder").map((f): [string, FormatName] => [f, "langfuse"]),
  ...listFixtures("langsmith").map((f): [string, FormatName] => [f, "langsmith"]),
  ["openinference/genai-openinference_client_span_input_output_only.json", "openinference"],
  ["openinference/genai-openinference_client_span_tool_calls.json", "openinference"],
  ["openinference/genai-otel_genai_client_span_tool_calls.json", "otel-genai"],
  ["openinference/genai-otel_genai_deprecated_client_span_tool_calls.json", "otel-genai"],
  ["openinference/spec-llm_spans-example1-chatcompletion-toolcall.json", "openinference"],
  ["openinference/spec-llm_spans-example2-synthesis-after-tool.json", "openinference"],
  ["openinference/vercel-v6-ai-generateObject-doGenerate.json", "otel-genai"],
  ["openinference/vercel-v6-ai-generateText.json", "otel-genai"],
  ["openinference/vercel-v6-ai-streamText-doStream.json", "otel-genai"],
  ["openinference/vercel-v6-ai-streamText.json", "otel-genai"],
  ["openinference/vercel-v6-ai-generateText-doGenerate.json", "otel-genai"],
  ["openinference/vercel-v6-ai-generateObject.json", "otel-genai"],
  ["openinference/mastra-weatherAgentSpans.json", "otel-genai"],
  ["any-agent/LANGCHAIN_trace.json", "otel-genai"],
  ["any-agent/OPENAI_trace.json", "otel-genai"],
  ["any-agent/OPENAI_trace.openinference-2025-05-20.json", "openinference"],
  ["any-agent/LLAMA_INDEX_trace.openinference-2025-05-20.json", "openinference"],
];

function conversations(fragments: TraceFragment[]): Map<string, Conversation> {
  const byKey = new Map<string, TraceFragment[]>();
  for (const f of fragments) byKey.set(f.conversation_key, [...(byKey.get(f.conversation_key) ?? []), f]);
  return new Map([...byKey].map(([k, fs]) => [k, mergeFragments(fs)]));
}

function onlyConversation(rel: string): Conversation {
  const convs = [...conversations(normalizeEvent(readFixture(rel))).values()];
  expect(convs).toHaveLength(1);
  return convs[0] as Conversation;
}

describe("every fixture", () => {
  it("covers all event fixtures in the folder", () => {
    const all = [
      ...listFixtures("langfuse", (f) => f.endsWith(".trace.json")),
      ...listFixtures("langfuse-seeder"),
      ...listFixtures("langsmith"),
      // A lone tool-execution span holds no conversation (its golden file says so).
      ...listFixtures("openinference", (f) => f !== "genai-otel_genai_tool_execution_span.json"),
      ...listFixtures("any-agent"),
    ];
    expect(new Set(EVENT_FIXTURES.map(([f]) => f))).toEqual(new Set(all));
  });

  it.each(EVENT_FIXTURES)("%s is detected as %s and normalizes to valid conversations", (rel, format) => {
    const event = readFixture(rel);
    expect(detectFormat(event)).toBe(format);
    const fragments = normalizeEvent(event);
    expect(fragments.length).toBeGreaterThan(0);
    for (const f of fragments) expect(f.source).toBe(format);
    for (const conv of conversations(fragments).values()) {
      expect(Conversation.safeParse(conv).success).toBe(true);
      expect(conv.source).toBe(format);
      expect(conv.messages.some((m) => m.role === "user")).toBe(true);
      // Calls whose only output is a tool call: the spec's first example, Vercel's generateText.
      if (!/example1-chatcompletion-toolcall|vercel-aisdk-2025-11-17/.test(rel)) expect(conv.messages.some((m) => m.role === "assistant")).toBe(true);
      expect(conv.messages.every((m) => m.content.trim().length > 0)).toBe(true);
    }
  });

  const SEMCONV: Record<string, [string, string][]> = {
    "built-in-tools.input_messages.json": [
      ["system", "You are a helpful bot"],
      ["user", "Write Python code that generates a random number, executes it, and returns the result."],
    ],
    "built-in-tools.output_messages.json": [["assistant", "The generated random number is **89**, and the result of squaring it is **7921**"]],
    "choices.input_messages.json": [
      ["system", "You are a helpful bot"],
      ["user", "Tell me a joke about OpenTelemetry"],
    ],
    // Two choices for one prompt: the conversation continues with the first.
    "choices.output_messages.json": [["assistant", "Why did the developer bring OpenTelemetry to the party? Because it always knows how to trace the fun!"]],
    "instructions.input_messages.json": [
      ["system", "You are a helpful bot"],
      ["user", "Tell me a joke about OpenTelemetry"],
    ],
    "instructions.output_messages.json": [["assistant", "I'm sorry, but I can't assist with that"]],
    "instructions.system_instructions.json": [["system", "You must never tell jokes"]],
    "multimodal.input_messages.jsonc": [["user", "What is in the attached data?\n[image]\n[video]\n[file]\n[image]\n[image]\n[audio]"]],
    "multimodal.output_messages.jsonc": [["assistant", "[image]"]],
    "reasoning.input_messages.json": [
      ["system", "You are a helpful bot"],
      ["user", "Tell me a joke about OpenTelemetry"],
    ],
    // The reasoning part is not content.
    "reasoning.output_messages.json": [["assistant", "Why did the developer bring OpenTelemetry to the party? Because it always knows how to trace the fun!"]],
    "simple.input_messages.json": [
      ["system", "You are a helpful bot"],
      ["user", "Tell me a joke about OpenTelemetry"],
    ],
    "simple.output_messages.json": [["assistant", "Why did the developer bring OpenTelemetry to the party? Because it always knows how to trace the fun!"]],
    "tool-call-span-1.input_messages.json": [["user", "Weather in Paris?"]],
    "tool-call-span-1.output_messages.json": [],
    "tool-call-span-2.input_messages.json": [["user", "Weather in Paris?"]],
    "tool-call-span-2.output_messages.json": [["assistant", "The weather in Paris is currently rainy with a temperature of 57°F."]],
  };

  it.each(listFixtures("otel-semconv", (f) => /messages|instructions/.test(f)))("%s reads as the expected messages", (rel) => {
    const name = rel.replace("otel-semconv/examples-llm-calls.", "");
    const role = name.includes("output") ? "assistant" : name.includes("instructions") ? "system" : "user";
    expect(SEMCONV[name]).toBeDefined();
    expect(rt(toMessages(readFixture(rel), { defaultRole: role }))).toEqual(SEMCONV[name]);
  });
});

describe("gen-ai-events.md examples (deprecated per-message span events)", () => {
  /** The markdown's spans, each with its events and the content-enabled event bodies. */
  function spansFromMarkdown(md: string): { name: string; body: Rec | undefined }[][] {
    const spans: { name: string; body: Rec | undefined }[][] = [];
    for (const line of md.split("\n")) {
      if (/^\*\*GenAI Client [Ss]pan/.test(line)) spans.push([]);
      const ev = /^\s*\d+\. `(gen_ai\.[a-z_.]+)`/.exec(line);
      if (ev?.[1] !== undefined) spans.at(-1)?.push({ name: ev[1], body: undefined });
      const body = /\| Event body( \((with )?content( enabled)?\))?\s*\| `(.*)` \|/.exec(line);
      const last = spans.at(-1)?.at(-1);
      // The spec's span-1 choice body is missing its closing brace; it is a tool call either way.
      if (body?.[4] !== undefined && last !== undefined) {
        const parsed = maybeJson(body[4]);
        last.body = isRecord(parsed) ? parsed : {};
      }
    }
    // "the same as in the Chat Completion example": reuse that example's body.
    const first = spans[0] ?? [];
    for (const span of spans) for (const e of span) e.body ??= first.find((f) => f.name === e.name)?.body;
    return spans;
  }

  it("each documented span reads as its conversation", () => {
    const md = readFileSync(fixturePath("otel-semconv/gen-ai-events.v1.36.0.examples-section.md"), "utf8");
    const spans = spansFromMarkdown(md);
    expect(spans.map((s) => s.length)).toEqual([3, 2, 4, 4]);
    const read = spans.map((events, i) =>
      rt(
        normalizeEvent({
          name: "chat gpt-4",
          context: { trace_id: `t${i}`, span_id: `s${i}` },
          attributes: { "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4" },
          events: events.map((e) => ({ name: e.name, attributes: { "gen_ai.system": "openai", body: e.body } })),
        }).flatMap((f) => f.messages),
      ),
    );
    const joke = "Why did the developer bring OpenTelemetry to the party? Because it always knows how to trace the fun!";
    expect(read).toEqual([
      [
        ["system", "You're a helpful bot"],
        ["user", "Tell me a joke about OpenTelemetry"],
        ["assistant", joke],
      ],
      [["user", "What's the weather in Paris?"]],
      [
        ["user", "What's the weather in Paris?"],
        ["assistant", "The weather in Paris is rainy and overcast, with temperatures around 57°F"],
      ],
      [
        ["system", "You're a helpful bot"],
        ["user", "Tell me a joke about OpenTelemetry"],
        ["assistant", joke],
      ],
    ]);
  });
});

// ------------------------------------------------------------------ Langfuse ChatML expectations

type Side = "input" | "output";

/**
 * Langfuse's ChatML still has tool messages, tool-call-only assistant messages, role `model`, and
 * content parts sometimes as a JSON string. The documented transformation: drop role `tool`, drop
 * messages left without text, map `model` → `assistant`, read text parts out of the content.
 */
function expectedFromChatml(data: unknown[]): [string, string][] | "unrepresentable" {
  const out: [string, string][] = [];
  for (const m of data) {
    if (!isRecord(m) || typeof m.role !== "string") continue; // {tools}/{json} entries: not messages
    if (m.content === undefined && m.tool_calls === undefined) return "unrepresentable";
    if (m.role === "tool") continue;
    const role = m.role === "model" ? "assistant" : m.role;
    const text = chatmlText(m.content).trim();
    if (text.length === 0) continue;
    out.push([role, text]);
  }
  return out;
}

function chatmlText(content: unknown): string {
  const parsed = maybeJson(content);
  if (typeof parsed === "string") return parsed;
  if (Array.isArray(parsed)) {
    return parsed.map((p) => (isRecord(p) && typeof p.text === "string" ? p.text : typeof p === "string" ? p : "")).join("\n");
  }
  return content === null || content === undefined ? "" : String(content);
}

/**
 * Where we knowingly differ from Langfuse's ChatML, and why. Everything else must match.
 */
const CHATML_DEVIATIONS: Record<string, string> = {
  "google-adk-2025-08-28/bded677884f031ce/input":
    "ChatML shows the Gemini function_response (role user) as a user message; it is a tool result, a pseudo turn",
  "langgraph-js-2025-10-30/0856a1825ccee968/input": "ChatML keeps the tool result whose role is the tool's name (get_weather); it is not a turn",
};

const CHATML_CASES = listFixtures("langfuse", (f) => f.endsWith(".chatml.json")).flatMap((chatmlRel) => {
  const base = chatmlRel.replace(/^langfuse\//, "").replace(/\.chatml\.json$/, "");
  const chatml = readFixture(chatmlRel) as Record<string, Record<Side, { success: boolean; data?: unknown[] } | undefined>>;
  const trace = readFixture(`langfuse/${base}.trace.json`) as { observations: Rec[] };
  return Object.entries(chatml).flatMap(([obsId, sides]) =>
    (["input", "output"] as const).map((side) => ({ base, obsId, side, conv: sides[side], obs: trace.observations.find((o) => o.id === obsId) })),
  );
});

describe("Langfuse ChatML expectations", () => {
  const compared: string[] = [];

  it.each(CHATML_CASES.map((c) => [`${c.base}/${c.obsId}/${c.side}`, c] as const))("%s", (name, c) => {
    expect(c.obs).toBeDefined();
    if (c.conv === undefined || !c.conv.success || c.conv.data === undefined) return; // Langfuse could not read it either
    const expected = expectedFromChatml(c.conv.data);
    if (expected === "unrepresentable") return;
    if (expected.length === 0 && !c.conv.data.some((m) => isRecord(m) && typeof m.role === "string")) return;
    const payload = c.obs?.[c.side];
    const actual = rt(toMessages(payload, { defaultRole: c.side === "input" ? "user" : "assistant" }));
    if (CHATML_DEVIATIONS[name] !== undefined) {
      expect(actual).not.toEqual(expected);
      return;
    }
    expect(actual).toEqual(expected);
    compared.push(name);
  });

  it("compared a meaningful number of observations", () => {
    expect(compared.length).toBeGreaterThanOrEqual(25);
  });
});

// ------------------------------------------------------------------ other expectations

describe("OpenInference converter pairs (README: expected output)", () => {
  it.each([
    ["openinference/genai-otel_genai_client_span_tool_calls.json", "openinference/genai-openinference_client_span_tool_calls.json"],
    ["openinference/genai-otel_genai_deprecated_client_span_tool_calls.json", "openinference/genai-openinference_client_span_input_output_only.json"],
  ])("%s reads like %s", (otelRel, oiRel) => {
    const otel = normalizeEvent(readFixture(otelRel));
    const oi = normalizeEvent(readFixture(oiRel));
    expect(rt(otel.flatMap((f) => f.messages))).toEqual(rt(oi.flatMap((f) => f.messages)));
    expect(rt(oi.flatMap((f) => f.messages))).toEqual([
      ["user", "Weather in Paris?"],
      ["assistant", "Absolutely! Let me check the weather for you."],
      ["assistant", "The weather in Paris is currently rainy with a temperature of 57°F."],
    ]);
  });
});

describe("multi-turn and pseudo multi-turn", () => {
  it("google-adk: a function_response sent as role user is not a user turn", () => {
    const conv = onlyConversation("langfuse/google-adk-2025-08-28.trace.json");
    expect(isJudgeable(conv)).toBe(false);
    expect(rt(conv.messages)).toEqual([
      ["system", 'Always greet using the say_hello tool.\n\nYou are an agent. Your internal name is "hello_agent".'],
      ["user", "hi"],
      ["assistant", "Hello Langfuse 👋!"],
    ]);
  });

  it("llama_index ReAct: 'Observation:' sent as role user is not a user turn", () => {
    const conv = onlyConversation("any-agent/LLAMA_INDEX_trace.openinference-2025-05-20.json");
    expect(isJudgeable(conv)).toBe(false);
    expect(conv.messages.map((m) => m.role)).toEqual(["system", "user", "assistant", "assistant", "assistant"]);
    expect(conv.messages.some((m) => m.role !== "system" && m.content.includes("Observation:"))).toBe(false);
    expect(conv.messages.at(-1)?.content).toContain("Answer: 2025");
  });

  it("vercel-v6 generateText span 2 keeps its real user turns", () => {
    const fragments = normalizeEvent(readFixture("openinference/vercel-v6-ai-generateText.json"));
    const conv = conversations(fragments).get("673a889f59126f8b4c90dce5a1f99368");
    expect(conv).toBeDefined();
    expect(isJudgeable(conv as Conversation)).toBe(true);
    expect(rt(conv?.messages ?? [])).toEqual([
      ["system", "You are a helpful assistant."],
      ["user", "What is 2 + 2?"],
      ["assistant", "2 + 2 equals 4."],
      ["user", "And what is 3 + 3?"],
      ["assistant", "3 + 3 equals 6."],
    ]);
    const first = conversations(fragments).get("700d5f98fe2420adcf6ab0822f7a323c");
    expect(first && isJudgeable(first)).toBe(false);
  });

  it("langfuse-seeder google-vertex-tools-langchain keeps its real user turns", () => {
    const conv = onlyConversation("langfuse-seeder/google-vertex-tools-langchain-2025-09-19.json");
    expect(conv.id).toBe("test-conversation-001");
    expect(isJudgeable(conv)).toBe(true);
    expect(rt(conv.messages)).toEqual([
      ["system", "You are a helpful assistant with access to transition tools. Your mission is to greet the user, get their name, and qualify their interest in available services."],
      ["system", "The next user message is from an external source. Handle it appropriately."],
      ["user", "Hello, I'm interested in learning more about your services."],
      ["assistant", "Hello! I'm your assistant and I'll be happy to help you today.\nTo better assist you, could you please share your full name?"],
      ["user", "John Smith"],
      ["assistant", "Thank you, John Smith. Which of our services are you interested in?"],
    ]);
  });

  it.each(EVENT_FIXTURES.filter(([f]) => !/google-vertex-tools-langchain|vercel-v6-ai-generateText|pydantic-ai-tools-2025-12-04|openai-assistants/.test(f)))("%s is single-turn", (rel) => {
    for (const conv of conversations(normalizeEvent(readFixture(rel))).values()) expect(isJudgeable(conv)).toBe(false);
  });
});

describe("whole-trace conversations", () => {
  it("agno: Python-repr input falls back to the OpenInference attributes; nested generations merge", () => {
    const conv = onlyConversation("langfuse/agno-2025-06-11.trace.json");
    expect(conv.id).toBe("35cc6c90-b657-4819-b66c-c931c03ad569");
    expect(conv.messages.map((m) => m.role)).toEqual(["system", "user", "assistant"]);
    expect(conv.messages[1]?.content).toBe("What is currently trending on Twitter?");
    expect(conv.messages[2]?.content).toMatch(/^To find out what's currently trending on Twitter/);
    expect(conv.messages[2]?.timestamp).toBe("2025-06-11T14:01:39.089Z");
  });

  it("autogen: a flattened 'role: text' transcript becomes messages", () => {
    expect(rt(onlyConversation("langfuse/autogen-2025-06-06.trace.json").messages)).toEqual([
      ["system", "You are a helpful AI assistant. Solve tasks using your tools. Reply with TERMINATE when the task has been completed."],
      ["user", "Say 'Hello World!'"],
      ["assistant", "Hello World!"],
    ]);
  });

  it("microsoft-agent: a stateful API's later input lacks the history; merging keeps the user turn", () => {
    expect(rt(onlyConversation("langfuse/microsoft-agent-2025-12-17.trace.json").messages)).toEqual([
      ["user", "What's the weather in Tokyo?"],
      ["assistant", "Current conditions in Tokyo, Japan: stormy, high around 23°C."],
    ]);
  });

  it("csharp agent: system instructions from gen_ai.system_instructions, final_result tool call dropped", () => {
    const conv = onlyConversation("langfuse/csharp-agent-with-gemini-2026-03-09.trace.json");
    expect(conv.messages.map((m) => m.role)).toEqual(["system", "user", "assistant"]);
    expect(conv.messages[0]?.content).toMatch(/^You are an expert on statistical analysis/);
    expect(conv.metadata).toMatchObject({ app: "agentic-clientinsights", environment: "preprod", user_id: "g.aprozeanu" });
    expect(conv.id).toBe("9714061f-20c0-4d98-9220-1dc7df15c3c2");
  });

  it("koog: tool-call JSON in assistant content and role-tool messages are dropped", () => {
    expect(onlyConversation("langfuse/koog-2025-08-26.trace.json").messages.map((m) => [m.role, m.content.slice(0, 20)])).toEqual([
      ["system", "You are a nice and p"],
      ["user", "Greet and say goodby"],
      ["assistant", "Hello my darling Bob"],
    ]);
  });

  it("langgraph: thread_id in observation metadata links the conversation", () => {
    expect(onlyConversation("langfuse/langgraph-python-2025-08-22.trace.json").id).toBe("demo-thread-1");
  });

  it("llamaindex completion: llm.prompts when the input is {args}", () => {
    expect(onlyConversation("langfuse/llamaindex-2025-06-05.trace.json").messages[0]).toEqual({ role: "user", content: "What is Langfuse?" });
  });

  it("langsmith: post and patch of one run fold together (JS patch has no id)", () => {
    for (const rel of listFixtures("langsmith")) {
      const fragments = normalizeEvent(readFixture(rel));
      expect(fragments).toHaveLength(1);
      const f = fragments[0] as TraceFragment;
      expect(f.fragment_id).toBe(f.trace_id);
      expect(f.metadata.project).toBe("default");
      expect(f.messages.map((m) => m.role)).toEqual(["user", "assistant"]);
      expect(f.started_at).toBeDefined();
      expect(f.messages[1]?.timestamp).toBe(f.ended_at);
    }
  });

  it("any-agent: execute_tool spans' gen_ai.output is not the assistant", () => {
    const conv = onlyConversation("any-agent/OPENAI_trace.json");
    expect(conv.messages.map((m) => m.role)).toEqual(["system", "user", "assistant"]);
    expect(conv.messages.some((m) => m.content.includes("is_dst"))).toBe(false);
  });
});
