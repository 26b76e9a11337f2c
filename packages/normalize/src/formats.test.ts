/**
 * One conversation written by hand in every supported format: a user asks, the assistant gets it
 * wrong (after a tool call), the user corrects it, the assistant apologizes. Each must normalize to
 * the same messages, with the tool traffic gone.
 */
import { describe, expect, it } from "vitest";
import { detectFormat, explainEvent, type FormatName, isJudgeable, mergeFragments, normalizeEvent, parseJsonExact, type TraceFragment, toMessages } from "./index.ts";
import { rt } from "./test-helpers.ts";

const SYSTEM = "You are a travel assistant.";
const ASK = "Book me a flight to Paris on May 3.";
const WRONG = "Done: you are booked to Paris on March 5.";
const CORRECTION = "No, I said May 3, not March 5!";
const APOLOGY = "Sorry about that. I rebooked you for May 3.";

const EXPECTED: [string, string][] = [
  ["system", SYSTEM],
  ["user", ASK],
  ["assistant", WRONG],
  ["user", CORRECTION],
  ["assistant", APOLOGY],
];

const TOOL_ARGS = JSON.stringify({ to: "PAR", date: "03-05" });
const TOOL_RESULT = JSON.stringify({ ok: true, booking: "X1" });

const openaiHistory = [
  { role: "system", content: SYSTEM },
  { role: "user", content: ASK },
  { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "book", arguments: TOOL_ARGS } }] },
  { role: "tool", tool_call_id: "c1", content: TOOL_RESULT },
  { role: "assistant", content: WRONG },
  { role: "user", content: [{ type: "text", text: CORRECTION }] },
];

const str = (stringValue: string) => ({ stringValue });
const kv = (key: string, value: unknown) => ({ key, value });

const otelInput = [
  { role: "user", parts: [{ type: "text", content: ASK }] },
  { role: "assistant", parts: [{ type: "tool_call", id: "c1", name: "book", arguments: { to: "PAR" } }] },
  { role: "tool", parts: [{ type: "tool_call_response", id: "c1", response: TOOL_RESULT }] },
  { role: "assistant", parts: [{ type: "text", content: WRONG }] },
  { role: "user", parts: [{ type: "text", content: CORRECTION }] },
];

const lc = (cls: string, kwargs: Record<string, unknown>) => ({ lc: 1, type: "constructor", id: ["langchain", "schema", "messages", cls], kwargs });

const EVENTS: [string, FormatName, unknown][] = [
  ["openai", "openai", { id: "conv-1", messages: [...openaiHistory, { role: "assistant", content: APOLOGY }] }],
  [
    "langsmith run batch",
    "langsmith",
    {
      post: [
        {
          id: "11111111-1111-4111-8111-111111111111",
          trace_id: "11111111-1111-4111-8111-111111111111",
          dotted_order: "20250301T100000000000Z11111111-1111-4111-8111-111111111111",
          run_type: "llm",
          name: "ChatOpenAI",
          session_name: "travel",
          start_time: "2025-03-01T10:00:00.000000",
          inputs: { messages: openaiHistory, model: "gpt-4o" },
          extra: { metadata: { thread_id: "conv-1", ls_provider: "openai" } },
        },
      ],
      patch: [
        {
          id: "11111111-1111-4111-8111-111111111111",
          trace_id: "11111111-1111-4111-8111-111111111111",
          dotted_order: "20250301T100000000000Z11111111-1111-4111-8111-111111111111",
          end_time: "2025-03-01T10:00:02.000000",
          outputs: { choices: [{ index: 0, message: { role: "assistant", content: APOLOGY }, finish_reason: "stop" }] },
        },
      ],
    },
  ],
  [
    "OTLP JSON, current semconv",
    "otel-genai",
    {
      resourceSpans: [
        {
          resource: { attributes: [kv("service.name", str("travel-bot")), kv("deployment.environment.name", str("prod"))] },
          scopeSpans: [
            {
              scope: { name: "openai-instrumentation" },
              spans: [
                {
                  traceId: "5b8efff798038103d269b633813fc60c",
                  spanId: "eee19b7ec3c1b174",
                  name: "chat gpt-4o",
                  startTimeUnixNano: "1740823200000000000",
                  endTimeUnixNano: "1740823202000000000",
                  attributes: [
                    kv("gen_ai.operation.name", str("chat")),
                    kv("gen_ai.conversation.id", str("conv-1")),
                    kv("gen_ai.usage.input_tokens", { intValue: "120" }),
                    kv("gen_ai.system_instructions", str(JSON.stringify([{ type: "text", content: SYSTEM }]))),
                    kv("gen_ai.input.messages", str(JSON.stringify(otelInput))),
                    kv("gen_ai.output.messages", str(JSON.stringify([{ role: "assistant", parts: [{ type: "text", content: APOLOGY }], finish_reason: "stop" }]))),
                  ],
                },
              ],
            },
          ],
        },
      ],
    },
  ],
  [
    "OTLP JSON, indexed gen_ai.prompt.N attributes",
    "otel-genai",
    {
      resourceSpans: [
        {
          resource: { attributes: [kv("service.name", str("travel-bot"))] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId: "5b8efff798038103d269b633813fc60d",
                  spanId: "eee19b7ec3c1b175",
                  startTimeUnixNano: "1740823200000000000",
                  endTimeUnixNano: "1740823202000000000",
                  attributes: [
                    kv("gen_ai.prompt.0.role", str("system")),
                    kv("gen_ai.prompt.0.content", str(SYSTEM)),
                    kv("gen_ai.prompt.1.role", str("user")),
                    kv("gen_ai.prompt.1.content", str(ASK)),
                    kv("gen_ai.prompt.2.role", str("assistant")),
                    kv("gen_ai.prompt.2.tool_calls.0.name", str("book")),
                    kv("gen_ai.prompt.3.role", str("tool")),
                    kv("gen_ai.prompt.3.content", str(TOOL_RESULT)),
                    kv("gen_ai.prompt.4.role", str("assistant")),
                    kv("gen_ai.prompt.4.content", str(WRONG)),
                    kv("gen_ai.prompt.5.role", str("user")),
                    kv("gen_ai.prompt.5.content", str(CORRECTION)),
                    kv("gen_ai.completion.0.role", str("assistant")),
                    kv("gen_ai.completion.0.content", str(APOLOGY)),
                    kv("session.id", str("conv-1")),
                  ],
                },
              ],
            },
          ],
        },
      ],
    },
  ],
  [
    "OTLP JSON, gen_ai.*.message span events",
    "otel-genai",
    {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  traceId: "5b8efff798038103d269b633813fc60e",
                  spanId: "eee19b7ec3c1b176",
                  startTimeUnixNano: "1740823200000000000",
                  endTimeUnixNano: "1740823202000000000",
                  attributes: [kv("gen_ai.system", str("openai")), kv("gen_ai.conversation.id", str("conv-1"))],
                  events: [
                    { name: "gen_ai.system.message", timeUnixNano: "1740823200000000000", attributes: [kv("content", str(SYSTEM))] },
                    { name: "gen_ai.user.message", timeUnixNano: "1740823200000000000", attributes: [kv("content", str(ASK))] },
                    {
                      name: "gen_ai.assistant.message",
                      attributes: [kv("tool_calls", str(JSON.stringify([{ id: "c1", type: "function", function: { name: "book" } }])))],
                    },
                    { name: "gen_ai.tool.message", attributes: [kv("content", str(TOOL_RESULT)), kv("id", str("c1"))] },
                    { name: "gen_ai.assistant.message", attributes: [kv("content", str(WRONG))] },
                    { name: "gen_ai.user.message", attributes: [kv("content", str(CORRECTION))] },
                    {
                      name: "gen_ai.choice",
                      timeUnixNano: "1740823202000000000",
                      attributes: [kv("index", { intValue: "0" }), kv("finish_reason", str("stop")), kv("message", { kvlistValue: { values: [kv("content", str(APOLOGY))] } })],
                    },
                  ],
                },
              ],
            },
          ],
        },
      ],
    },
  ],
  [
    "OTLP JSON logs, gen_ai.* events as log records",
    "otel-genai",
    {
      resourceLogs: [
        {
          resource: { attributes: [kv("service.name", str("travel-bot"))] },
          scopeLogs: [
            {
              logRecords: [
                { eventName: "gen_ai.system.message", timeUnixNano: "1740823200000000000", traceId: "aa", spanId: "bb", attributes: [kv("gen_ai.conversation.id", str("conv-1"))], body: { kvlistValue: { values: [kv("content", str(SYSTEM))] } } },
                { eventName: "gen_ai.user.message", timeUnixNano: "1740823200000000000", traceId: "aa", spanId: "bb", body: { kvlistValue: { values: [kv("content", str(ASK))] } } },
                { timeUnixNano: "1740823200000000000", traceId: "aa", spanId: "bb", attributes: [kv("event.name", str("gen_ai.assistant.message"))], body: { kvlistValue: { values: [kv("tool_calls", { arrayValue: { values: [{ kvlistValue: { values: [kv("id", str("c1"))] } }] } })] } } },
                { eventName: "gen_ai.tool.message", traceId: "aa", spanId: "bb", body: { kvlistValue: { values: [kv("content", str(TOOL_RESULT)), kv("id", str("c1"))] } } },
                { eventName: "gen_ai.assistant.message", traceId: "aa", spanId: "bb", body: { kvlistValue: { values: [kv("content", str(WRONG))] } } },
                { eventName: "gen_ai.user.message", traceId: "aa", spanId: "bb", body: { kvlistValue: { values: [kv("content", str(CORRECTION))] } } },
                {
                  eventName: "gen_ai.choice",
                  timeUnixNano: "1740823202000000000",
                  traceId: "aa",
                  spanId: "bb",
                  body: { kvlistValue: { values: [kv("index", { intValue: "0" }), kv("finish_reason", str("stop")), kv("message", { kvlistValue: { values: [kv("role", str("assistant")), kv("content", str(APOLOGY))] } })] } },
                },
                { eventName: "http.request", traceId: "aa", spanId: "cc", body: { stringValue: "GET /" } },
              ],
            },
          ],
        },
      ],
    },
  ],
  [
    "OpenInference flattened attributes",
    "openinference",
    {
      name: "ChatCompletion",
      context: { trace_id: "trace-oi-1", span_id: "span-oi-1" },
      start_time: "2025-03-01T10:00:00Z",
      end_time: "2025-03-01T10:00:02Z",
      attributes: {
        "openinference.span.kind": "LLM",
        "session.id": "conv-1",
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": SYSTEM,
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": ASK,
        "llm.input_messages.2.message.role": "assistant",
        "llm.input_messages.2.message.tool_calls.0.tool_call.function.name": "book",
        "llm.input_messages.2.message.tool_calls.0.tool_call.function.arguments": TOOL_ARGS,
        "llm.input_messages.3.message.role": "tool",
        "llm.input_messages.3.message.content": TOOL_RESULT,
        "llm.input_messages.4.message.role": "assistant",
        "llm.input_messages.4.message.content": WRONG,
        "llm.input_messages.5.message.role": "user",
        "llm.input_messages.5.message.content": CORRECTION,
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": APOLOGY,
      },
    },
  ],
  [
    "Langfuse export",
    "langfuse",
    {
      trace: { id: "lf-trace-1", sessionId: "conv-1", environment: "production", projectId: "proj-1", name: "travel" },
      observations: [
        {
          id: "lf-gen-1",
          traceId: "lf-trace-1",
          type: "GENERATION",
          startTime: "2025-03-01T10:00:00.000Z",
          endTime: "2025-03-01T10:00:02.000Z",
          input: JSON.stringify(openaiHistory),
          output: JSON.stringify({ role: "assistant", content: APOLOGY }),
          metadata: JSON.stringify({ resourceAttributes: { "service.name": "travel-bot" } }),
        },
        { id: "lf-tool-1", traceId: "lf-trace-1", type: "TOOL", startTime: "2025-03-01T09:59:59.000Z", input: TOOL_ARGS, output: TOOL_RESULT },
      ],
    },
  ],
  [
    "Anthropic blocks inside openai-style",
    "openai",
    {
      conversation_id: "conv-1",
      id: "evt-anthropic",
      messages: [
        { role: "system", content: SYSTEM },
        { role: "user", content: [{ type: "text", text: ASK }] },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "The user wants Paris.", signature: "sig" },
            { type: "tool_use", id: "tu1", name: "book", input: { to: "PAR" } },
          ],
        },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "tu1", content: TOOL_RESULT }] },
        { role: "assistant", content: [{ type: "text", text: WRONG }] },
        { role: "user", content: [{ type: "text", text: CORRECTION }] },
        { id: "msg_1", type: "message", role: "assistant", content: [{ type: "text", text: APOLOGY }], stop_reason: "end_turn" },
      ],
    },
  ],
  [
    "Langfuse ingestion batch",
    "langfuse",
    {
      batch: [
        { id: "e1", type: "trace-create", timestamp: "2025-03-01T10:00:00.000Z", body: { id: "lf-trace-3", sessionId: "conv-1", environment: "production" } },
        {
          id: "e2",
          type: "generation-create",
          timestamp: "2025-03-01T10:00:00.000Z",
          body: { id: "lf-gen-3", traceId: "lf-trace-3", startTime: "2025-03-01T10:00:00.000Z", input: { messages: openaiHistory } },
        },
        { id: "e3", type: "span-create", body: { id: "lf-span-3", traceId: "lf-trace-3", input: { messages: [{ role: "user", content: "not a generation" }] } } },
        {
          id: "e4",
          type: "generation-update",
          timestamp: "2025-03-01T10:00:02.000Z",
          body: { id: "lf-gen-3", traceId: "lf-trace-3", endTime: "2025-03-01T10:00:02.000Z", output: { role: "assistant", content: APOLOGY } },
        },
      ],
    },
  ],
  [
    "Gemini contents (Langfuse generation of a google-genai call)",
    "langfuse",
    {
      trace: { id: "lf-trace-2", sessionId: "conv-1" },
      observations: [
        {
          id: "lf-gen-2",
          type: "GENERATION",
          startTime: "2025-03-01T10:00:00.000Z",
          endTime: "2025-03-01T10:00:02.000Z",
          input: {
            model: "gemini-2.5-flash",
            config: { system_instruction: SYSTEM },
            contents: [
              { role: "user", parts: [{ text: ASK }] },
              { role: "model", parts: [{ functionCall: { name: "book", args: { to: "PAR" } } }] },
              { role: "user", parts: [{ functionResponse: { name: "book", response: { ok: true } } }] },
              { role: "model", parts: [{ text: WRONG }] },
              { role: "user", parts: [{ text: CORRECTION }] },
            ],
          },
          output: { candidates: [{ content: { role: "model", parts: [{ text: "thinking…", thought: true }, { text: APOLOGY }] }, finishReason: "STOP" }] },
        },
      ],
    },
  ],
  [
    "LangChain lc:1 serialized messages (LangSmith run)",
    "langsmith",
    {
      id: "22222222-2222-4222-8222-222222222222",
      trace_id: "22222222-2222-4222-8222-222222222222",
      run_type: "llm",
      start_time: "2025-03-01T10:00:00Z",
      end_time: "2025-03-01T10:00:02Z",
      extra: { metadata: { session_id: "conv-1" } },
      inputs: {
        messages: [
          [
            lc("SystemMessage", { content: SYSTEM }),
            lc("HumanMessage", { content: ASK }),
            lc("AIMessage", { content: "", tool_calls: [{ name: "book", args: { to: "PAR" }, id: "c1" }] }),
            lc("ToolMessage", { content: TOOL_RESULT, tool_call_id: "c1" }),
            lc("AIMessage", { content: WRONG }),
            lc("HumanMessage", { content: CORRECTION }),
          ],
        ],
      },
      outputs: { generations: [[{ text: APOLOGY, message: lc("AIMessage", { content: APOLOGY }) }]] },
    },
  ],
  [
    "Vercel AI SDK span",
    "otel-genai",
    [
      {
        name: "ai.generateText.doGenerate",
        spanContext: { traceId: "7d0d5f98fe2420adcf6ab0822f7a323c", spanId: "648be1dfd8e521b7" },
        attributes: {
          "ai.operationId": "ai.generateText.doGenerate",
          "ai.telemetry.metadata.conversationId": "conv-1",
          "ai.prompt.messages": JSON.stringify([
            { role: "system", content: SYSTEM },
            { role: "user", content: [{ type: "text", text: ASK }] },
            { role: "assistant", content: [{ type: "tool-call", toolCallId: "c1", toolName: "book", input: { to: "PAR" } }] },
            { role: "tool", content: [{ type: "tool-result", toolCallId: "c1", toolName: "book", output: { type: "json", value: { ok: true } } }] },
            { role: "assistant", content: [{ type: "text", text: WRONG }] },
            { role: "user", content: [{ type: "text", text: CORRECTION }] },
          ]),
          "ai.response.text": APOLOGY,
        },
        startTime: [1740823200, 0],
        endTime: [1740823202, 0],
        events: [],
      },
    ],
  ],
  [
    "pydantic-ai messages (OpenAI-style event)",
    "openai",
    {
      conversation_id: "conv-1",
      messages: [
        {
          kind: "request",
          parts: [
            { part_kind: "system-prompt", content: SYSTEM },
            { part_kind: "user-prompt", content: ASK },
          ],
        },
        { kind: "response", parts: [{ part_kind: "tool-call", tool_name: "book", args: { to: "PAR" } }] },
        { kind: "request", parts: [{ part_kind: "tool-return", tool_name: "book", content: TOOL_RESULT }] },
        { kind: "response", parts: [{ part_kind: "thinking", content: "hmm" }, { part_kind: "text", content: WRONG }] },
        { kind: "request", parts: [{ part_kind: "user-prompt", content: CORRECTION }] },
        { kind: "response", parts: [{ part_kind: "text", content: APOLOGY }] },
      ],
    },
  ],
];

describe("the same conversation in every format", () => {
  it.each(EVENTS)("%s", (_name, format, event) => {
    expect(detectFormat(event)).toBe(format);
    const fragments = normalizeEvent(event);
    expect(fragments.length).toBeGreaterThan(0);
    const conv = mergeFragments(fragments);
    expect(conv.id).toBe("conv-1");
    expect(conv.source).toBe(format);
    expect(rt(conv.messages)).toEqual(EXPECTED);
    expect(isJudgeable(conv)).toBe(true);
  });

  it("merges fragments of one conversation coming from several formats' events", () => {
    const all = EVENTS.flatMap(([, , e]) => normalizeEvent(e));
    const conv = mergeFragments(all);
    expect(rt(conv.messages)).toEqual(EXPECTED);
  });

  it("honours an explicit format over detection", () => {
    const event = EVENTS[0]?.[2];
    expect(normalizeEvent(event, { format: "openai" })[0]?.source).toBe("openai");
    expect(() => normalizeEvent(event, { format: "langfuse" })).toThrowError(/langfuse: /);
  });
});

describe("fragment fields", () => {
  const [otlp] = EVENTS.filter(([n]) => n === "OTLP JSON, current semconv").map(([, , e]) => normalizeEvent(e));
  it("OTLP: ids, times, resource metadata, output timestamped at span end", () => {
    const f = otlp?.[0] as TraceFragment;
    expect(f).toMatchObject({
      source: "otel-genai",
      conversation_key: "conv-1",
      fragment_id: "eee19b7ec3c1b174",
      trace_id: "5b8efff798038103d269b633813fc60c",
      started_at: "2025-03-01T10:00:00.000Z",
      ended_at: "2025-03-01T10:00:02.000Z",
      metadata: { app: "travel-bot", environment: "prod" },
      end: false,
    });
    expect(f.messages.at(-1)?.timestamp).toBe("2025-03-01T10:00:02.000Z");
    expect(f.messages[0]?.timestamp).toBeUndefined();
  });

  it("a span without a conversation id takes the one another span of its trace carries", () => {
    const event = {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                { traceId: "t1", spanId: "agent", attributes: [kv("gen_ai.operation.name", str("invoke_agent")), kv("gen_ai.conversation.id", str("thread-9"))] },
                { traceId: "t1", spanId: "llm", attributes: [kv("gen_ai.input.messages", str(JSON.stringify([{ role: "user", parts: [{ type: "text", content: "hi" }] }])))] },
                { traceId: "t2", spanId: "other", attributes: [kv("gen_ai.input.messages", str(JSON.stringify([{ role: "user", content: "yo" }])))] },
              ],
            },
          ],
        },
      ],
    };
    const fragments = normalizeEvent(event);
    expect(fragments.map((f) => [f.fragment_id, f.conversation_key])).toEqual([
      ["llm", "thread-9"],
      ["other", "t2"],
    ]);
  });

  it("an OTLP batch without LLM spans holds no fragments (and is no error)", () => {
    const event = { resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: "t", spanId: "s", name: "GET /", attributes: [kv("http.method", str("GET"))] }] }] }] };
    expect(detectFormat(event)).toBe("otel-genai");
    expect(normalizeEvent(event)).toEqual([]);
  });

  it("openai: id alone names the conversation; each state is its own fragment", () => {
    const a = normalizeEvent({ id: "c", messages: [{ role: "user", content: "hi" }] })[0];
    const b = normalizeEvent({ id: "c", messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "hello" }] })[0];
    expect(a?.conversation_key).toBe("c");
    expect(a?.fragment_id).not.toBe(b?.fragment_id);
    const withEventId = normalizeEvent({ conversation_id: "c", id: "evt-7", messages: [], timestamp: 1740823200 })[0];
    expect(withEventId).toMatchObject({ conversation_key: "c", fragment_id: "evt-7", started_at: "2025-03-01T10:00:00.000Z", messages: [] });
  });

  it("openai: metadata labels and extra scalars are kept", () => {
    const f = normalizeEvent({
      id: "c",
      messages: [],
      metadata: { app: "bot", project: "p", environment: "staging", tenant: "acme", nested: { dropped: true } },
    })[0];
    expect(f?.metadata).toEqual({ app: "bot", project: "p", environment: "staging", tenant: "acme" });
  });
});

describe("LangSmith run types", () => {
  const run = (id: string, run_type: string, inputs: unknown, outputs: unknown) => ({
    id,
    trace_id: "root",
    run_type,
    inputs,
    outputs,
    extra: { metadata: { thread_id: "th-1" } },
    start_time: 1740823200000,
  });

  it("only llm runs speak: chain (graph state), tool and retriever runs never", () => {
    const fragments = normalizeEvent({
      post: [
        run("root", "chain", { messages: [{ type: "human", content: "Hi" }] }, { messages: [{ type: "human", content: "Hi" }, { type: "ai", content: "Hello" }] }),
        run("qa", "chain", { question: "Hi" }, { answer: "Hello" }),
        run("tool", "tool", { input: "x" }, { output: "tool says" }),
        run("ret", "retriever", { query: "x" }, { documents: [] }),
        run("llm", "llm", { messages: [{ role: "user", content: "Hi" }] }, { choices: [{ message: { role: "assistant", content: "Hello" } }] }),
      ],
      patch: [],
    });
    expect(fragments.map((f) => [f.fragment_id, f.conversation_key])).toEqual([["llm", "th-1"]]);
    expect(rt(fragments[0]?.messages ?? [])).toEqual([
      ["user", "Hi"],
      ["assistant", "Hello"],
    ]);
  });
});

describe("end of conversation", () => {
  it.each<[string, unknown]>([
    ["openai metadata", { id: "c", messages: [], metadata: { conversation_end: true } }],
    ["openai top level", { id: "c", messages: [], conversation_end: true }],
    ["OTLP span attribute", { resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: "t", spanId: "s", attributes: [kv("tracesift.conversation_end", { boolValue: true })] }] }] }] }],
    ["OTLP resource attribute", { resourceSpans: [{ resource: { attributes: [kv("conversation.end", str("true"))] }, scopeSpans: [{ spans: [{ traceId: "t", spanId: "s", attributes: [kv("gen_ai.input.messages", str("[]"))] }] }] }] }],
    ["Vercel telemetry metadata", [{ name: "ai.generateText", spanContext: { traceId: "t", spanId: "s" }, attributes: { "ai.telemetry.metadata.conversation_end": true, "ai.prompt": '{"prompt":"bye"}' } }]],
    ["LangSmith run metadata", { id: "r", trace_id: "r", run_type: "llm", inputs: { messages: [{ role: "user", content: "bye" }] }, extra: { metadata: { conversation_end: true } } }],
    ["Langfuse trace metadata", { trace: { id: "t", metadata: JSON.stringify({ conversation_end: true }) }, observations: [{ id: "o", type: "GENERATION", input: "bye", output: "ciao" }] }],
  ])("%s", (_name, event) => {
    const fragments = normalizeEvent(event);
    expect(fragments.length).toBeGreaterThan(0);
    expect(fragments.every((f) => f.end)).toBe(true);
  });

  it("is false unless said", () => {
    expect(normalizeEvent({ id: "c", messages: [], metadata: { conversation_end: false } })[0]?.end).toBe(false);
  });
});

describe("only model calls speak", () => {
  it("OpenInference CHAIN/AGENT/TOOL spans never become messages, even with message-looking values", () => {
    const span = (id: string, parent: string | undefined, attributes: Record<string, unknown>) => ({ spanId: id, traceId: "t1", ...(parent ? { parentSpanId: parent } : {}), attributes });
    const { fragments, spans } = explainEvent([
      span("g", undefined, { "openinference.span.kind": "CHAIN", "input.value": '{"messages": [{"role": "user", "content": "hi"}]}', "output.value": "__end__" }),
      span("n", "g", { "openinference.span.kind": "CHAIN", "input.value": "tools", "output.value": "content='' additional_kwargs={}" }),
      span("l", "g", { "openinference.span.kind": "LLM", "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "hi", "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": "hello" }),
    ]);
    expect(fragments.map((f) => f.fragment_id)).toEqual(["l"]);
    expect(rt(fragments[0]?.messages ?? [])).toEqual([
      ["user", "hi"],
      ["assistant", "hello"],
    ]);
    expect(spans.filter((s) => !s.kept).map((s) => [s.id, s.reason])).toEqual([
      ["g", "not a model call (OpenInference span kind CHAIN)"],
      ["n", "not a model call (OpenInference span kind CHAIN)"],
    ]);
  });

  it("a model call under a tool span is a sub-agent's", () => {
    const llm = (id: string, parent: string | undefined, sys: string, user: string) => ({
      spanId: id,
      traceId: "t2",
      ...(parent ? { parentSpanId: parent } : {}),
      attributes: { "gen_ai.operation.name": "chat", "gen_ai.input.messages": JSON.stringify([{ role: "system", content: sys }, { role: "user", content: user }]) },
    });
    const { fragments, spans } = explainEvent([
      llm("top", undefined, "You are the assistant.", "Plan my trip"),
      { spanId: "tool", traceId: "t2", attributes: { "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "research" } },
      llm("nested", "tool", "You are the assistant.", "Find flights to Rome"),
    ]);
    expect(fragments.map((f) => f.fragment_id)).toEqual(["top"]);
    expect(spans.find((s) => s.id === "nested")?.reason).toBe('sub-agent: model call under tool "research"');
  });

  it("Vercel AI SDK tool-call results and framework reprs are never text", () => {
    expect(toMessages([{ toolCallId: "c1", toolName: "getWeather", input: '{"location":"SF"}' }], { defaultRole: "assistant" })).toEqual([]);
    expect(toMessages("content='' additional_kwargs={'tool_calls': []} response_metadata={}", { defaultRole: "assistant" })).toEqual([]);
    expect(toMessages("__end__", { defaultRole: "assistant" })).toEqual([]);
  });

  it("a role-less {content} input is not a user turn; a bare prompt string still is", () => {
    expect(toMessages({ content: "role" }, { defaultRole: "user" })).toEqual([]);
    expect(rt(toMessages("What is 2+2?", { defaultRole: "user" }))).toEqual([["user", "What is 2+2?"]]);
  });

  it("ids written as JSON numbers keep every digit when the event arrives as text", () => {
    const text = '{"spans": [{"name": "c", "context": {"trace_id": 115825058289444712299650141807529952578, "span_id": 15531323892744358789}, "attributes": {"gen_ai.operation.name": "chat", "gen_ai.input.messages": "[{\\"role\\": \\"user\\", \\"content\\": \\"hi 12345678901234567890\\"}]"}}]}';
    const [f] = normalizeEvent(text);
    expect(f?.conversation_key).toBe("115825058289444712299650141807529952578");
    expect(f?.fragment_id).toBe("15531323892744358789");
    expect(f?.messages[0]?.content).toBe("hi 12345678901234567890");
    expect(parseJsonExact('[1.5e300, -12345678901234567890, "9999999999999999999"]')).toEqual([1.5e300, "-12345678901234567890", "9999999999999999999"]);
  });
});

describe("an empty assistant turn is still a turn", () => {
  it("openai: {content: null} followed by the user's correction is judgeable", () => {
    const event = {
      id: "conv-null",
      messages: [
        { role: "user", content: "Cancel my 3pm meeting" },
        { role: "assistant", content: null },
        { role: "user", content: "That was the 4pm one, put it back!" },
      ],
    };
    const conversation = mergeFragments(normalizeEvent(JSON.stringify(event)));
    expect(rt(conversation.messages)).toEqual([
      ["user", "Cancel my 3pm meeting"],
      ["assistant", "[no text]"],
      ["user", "That was the 4pm one, put it back!"],
    ]);
    expect(isJudgeable(conversation)).toBe(true);
  });
});
