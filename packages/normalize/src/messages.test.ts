import { describe, expect, it } from "vitest";
import { toMessages } from "./index.ts";
import { rt } from "./test-helpers.ts";

const msgs = (payload: unknown, defaultRole?: "user" | "assistant" | "system") => rt(toMessages(payload, defaultRole ? { defaultRole } : {}));

describe("OpenAI chat messages", () => {
  it("string and multi-part content, developer as system, tool traffic dropped", () => {
    expect(
      msgs([
        { role: "developer", content: "Be brief." },
        { role: "user", content: [{ type: "text", text: "What is on" }, { type: "image_url", image_url: { url: "data:..." } }, { type: "text", text: "this picture?" }] },
        { role: "assistant", content: null, tool_calls: [{ id: "1", type: "function", function: { name: "vision", arguments: "{}" } }] },
        { role: "tool", tool_call_id: "1", content: "a cat" },
        { role: "function", name: "legacy", content: "x" },
        { role: "assistant", content: "A cat." },
        { role: "user", content: [{ type: "input_audio", input_audio: { data: "...", format: "wav" } }, { type: "file", file: { filename: "cat.pdf", file_data: "..." } }] },
        { role: "assistant", content: null, refusal: "I can't help with that." },
      ]),
    ).toEqual([
      ["system", "Be brief."],
      ["user", "What is on\n[image]\nthis picture?"],
      ["assistant", "A cat."],
      ["user", "[audio]\n[file: cat.pdf]"],
      ["assistant", "I can't help with that."],
    ]);
  });

  it("ChatCompletion responses: the first choice", () => {
    const completion = {
      object: "chat.completion",
      choices: [
        { index: 0, message: { role: "assistant", content: "First." }, finish_reason: "stop" },
        { index: 1, message: { role: "assistant", content: "Second." }, finish_reason: "stop" },
      ],
    };
    expect(msgs(completion, "assistant")).toEqual([["assistant", "First."]]);
    expect(msgs({ choices: [{ index: 0, text: "legacy completion" }] })).toEqual([["assistant", "legacy completion"]]);
  });

  it("a request object: messages plus its separate system field", () => {
    expect(msgs({ model: "x", system: "Sys.", messages: [{ role: "user", content: "Hi" }] })).toEqual([
      ["system", "Sys."],
      ["user", "Hi"],
    ]);
  });
});

describe("OpenAI Responses API items", () => {
  it("message items with input_text/output_text; calls, outputs and reasoning dropped", () => {
    expect(
      msgs({
        instructions: "Be kind.",
        input: [
          { type: "message", role: "user", content: [{ type: "input_text", text: "Weather?" }] },
          { type: "reasoning", summary: [{ type: "summary_text", text: "think" }] },
          { type: "function_call", call_id: "c", name: "w", arguments: "{}" },
          { type: "function_call_output", call_id: "c", output: "sunny" },
          { type: "message", role: "assistant", content: [{ type: "output_text", text: "Sunny." }] },
          { role: "user", content: "Thanks" },
        ],
      }),
    ).toEqual([
      ["system", "Be kind."],
      ["user", "Weather?"],
      ["assistant", "Sunny."],
      ["user", "Thanks"],
    ]);
  });

  it("a response object: its output items, not its echoed instructions", () => {
    expect(
      msgs(
        {
          object: "response",
          instructions: "Be kind.",
          output: [
            { type: "reasoning", summary: [] },
            { type: "message", role: "assistant", content: [{ type: "output_text", text: "Done." }, { type: "refusal", refusal: "Not that." }] },
          ],
        },
        "assistant",
      ),
    ).toEqual([["assistant", "Done.\nNot that."]]);
  });
});

describe("Anthropic content blocks", () => {
  it("text kept, tool_use/tool_result/thinking dropped, tool_result-only user is no user turn", () => {
    expect(
      msgs({
        system: [{ type: "text", text: "Sys." }],
        messages: [
          { role: "user", content: [{ type: "text", text: "Look" }, { type: "image", source: { type: "base64", media_type: "image/png", data: "" } }, { type: "document", title: "spec.pdf", source: {} }] },
          { role: "assistant", content: [{ type: "thinking", thinking: "..." }, { type: "text", text: "Checking." }, { type: "tool_use", id: "t", name: "x", input: {} }] },
          { role: "user", content: [{ type: "tool_result", tool_use_id: "t", content: "done" }] },
          { role: "assistant", content: [{ type: "redacted_thinking", data: "x" }, { type: "server_tool_use", id: "s", name: "web_search", input: {} }, { type: "web_search_tool_result", content: [] }] },
          { role: "user", content: [{ type: "tool_result", tool_use_id: "t2", content: "ok" }, { type: "text", text: "Also, hurry." }] },
        ],
      }),
    ).toEqual([
      ["system", "Sys."],
      ["user", "Look\n[image]\n[file: spec.pdf]"],
      ["assistant", "Checking."],
      ["user", "Also, hurry."],
    ]);
  });

  it("a Messages API response", () => {
    expect(msgs({ id: "msg", type: "message", role: "assistant", content: [{ type: "text", text: "Hi " }, { type: "text", text: "there." }] }, "assistant")).toEqual([
      ["assistant", "Hi there."],
    ]);
  });
});

describe("Gemini contents/parts", () => {
  it("model is the assistant; function calls and responses dropped; functionResponse-only user is no user turn", () => {
    expect(
      msgs({
        systemInstruction: { parts: [{ text: "Sys." }] },
        contents: [
          { role: "user", parts: [{ text: "Draw" }, { inlineData: { mimeType: "image/jpeg", data: "" } }] },
          { role: "model", parts: [{ text: "plan", thought: true }, { functionCall: { name: "draw", args: {} } }] },
          { role: "user", parts: [{ functionResponse: { name: "draw", response: { ok: 1 } } }] },
          { role: "model", parts: [{ text: "Here." }, { fileData: { mimeType: "video/mp4", fileUri: "gs://x" } }] },
          { role: "function", parts: [{ text: "legacy function role" }] },
        ],
      }),
    ).toEqual([
      ["system", "Sys."],
      ["user", "Draw\n[image]"],
      ["assistant", "Here.\n[video]"],
    ]);
  });

  it("contents as a bare string or list of strings; responses via candidates", () => {
    expect(msgs({ model: "gemini", contents: "Hi" })).toEqual([["user", "Hi"]]);
    expect(msgs({ contents: ["Hi", "there"] })).toEqual([["user", "Hi\nthere"]]);
    expect(msgs({ candidates: [{ content: { role: "model", parts: [{ text: "Yes." }] } }, { content: { role: "model", parts: [{ text: "No." }] } }] }, "assistant")).toEqual([
      ["assistant", "Yes."],
    ]);
    expect(msgs({ content: { parts: [{ function_call: { name: "f", args: {} } }], role: "model" }, finish_reason: "STOP" }, "assistant")).toEqual([]);
  });
});

describe("LangChain messages", () => {
  it("dicts by type or role, lc:1 serialized classes, generations", () => {
    const lc = (cls: string, kwargs: Record<string, unknown>) => ({ lc: 1, type: "constructor", id: ["langchain_core", "messages", cls], kwargs });
    expect(
      msgs([
        lc("SystemMessage", { content: "Sys." }),
        { type: "human", content: "Hi", additional_kwargs: {} },
        { type: "ai", content: "", tool_calls: [{ name: "f", args: {}, id: "1" }] },
        { type: "tool", content: "r", tool_call_id: "1" },
        lc("AIMessageChunk", { content: [{ type: "text", text: "Hello" }] }),
        lc("ToolMessage", { content: "r2", tool_call_id: "2" }),
        { type: "chat", role: "user", content: "Chat role" },
        lc("HumanMessage", { content: "Bye" }),
        { type: "AIMessageChunk", content: "Ciao" },
      ]),
    ).toEqual([
      ["system", "Sys."],
      ["user", "Hi"],
      ["assistant", "Hello"],
      ["user", "Chat role"],
      ["user", "Bye"],
      ["assistant", "Ciao"],
    ]);
    expect(msgs({ generations: [[{ text: "Gen text", message: lc("AIMessage", { content: "Gen msg" }) }]] })).toEqual([["assistant", "Gen msg"]]);
    expect(msgs({ messages: [[{ role: "user", content: "batched" }]] })).toEqual([["user", "batched"]]);
  });
});

describe("OTel GenAI parts and Vercel AI SDK content", () => {
  it("OTel parts: text kept, tool calls/responses and reasoning dropped, media as placeholders", () => {
    expect(
      msgs([
        { role: "user", parts: [{ type: "text", content: "Q" }, { type: "uri", modality: "image", uri: "https://x/y.png" }, { type: "file", file_id: "f1", name: "a.csv" }] },
        { role: "assistant", parts: [{ type: "reasoning", content: "hmm" }, { type: "tool_call", id: "1", name: "f", arguments: {} }] },
        { role: "tool", parts: [{ type: "tool_call_response", id: "1", response: "r" }] },
        { role: "assistant", parts: [{ type: "text", content: "A" }, { type: "blob", modality: "audio", mime_type: "audio/wav", content: "" }] },
      ]),
    ).toEqual([
      ["user", "Q\n[image]\n[file: a.csv]"],
      ["assistant", "A\n[audio]"],
    ]);
  });

  it("Vercel: text/image/file parts, tool-call and tool-result dropped", () => {
    expect(
      msgs({
        system: "Sys.",
        messages: [
          { role: "user", content: [{ type: "text", text: "See" }, { type: "image", image: "https://x" }, { type: "file", mediaType: "application/pdf", filename: "r.pdf", data: "" }] },
          { role: "assistant", content: [{ type: "reasoning", text: "..." }, { type: "tool-call", toolCallId: "1", toolName: "f", input: {} }] },
          { role: "tool", content: [{ type: "tool-result", toolCallId: "1", toolName: "f", output: {} }] },
          { role: "assistant", content: [{ type: "text", text: "Seen." }] },
        ],
      }),
    ).toEqual([
      ["system", "Sys."],
      ["user", "See\n[image]\n[file: r.pdf]"],
      ["assistant", "Seen."],
    ]);
  });

  it("an unknown part type becomes a placeholder, never silently nothing", () => {
    expect(msgs([{ role: "user", content: [{ type: "hologram", id: "h" }] }])).toEqual([["user", "[hologram]"]]);
  });
});

describe("pydantic-ai", () => {
  it("ModelRequest/ModelResponse parts; retry prompts and tool returns are not the user", () => {
    expect(
      msgs([
        { kind: "request", parts: [{ part_kind: "system-prompt", content: "Sys." }, { part_kind: "user-prompt", content: ["Look", { kind: "image-url", url: "https://x" }] }] },
        { kind: "response", parts: [{ part_kind: "tool-call", tool_name: "f", args: {} }] },
        { kind: "request", parts: [{ part_kind: "tool-return", tool_name: "f", content: "r" }, { part_kind: "retry-prompt", content: "fix your JSON" }] },
        { kind: "response", parts: [{ part_kind: "thinking", content: "..." }, { part_kind: "text", content: "Done." }] },
      ]),
    ).toEqual([
      ["system", "Sys."],
      ["user", "Look\n[image]"],
      ["assistant", "Done."],
    ]);
  });

  it("legacy gen_ai event bodies", () => {
    expect(
      msgs([
        { content: "Sys.", role: "system", "event.name": "gen_ai.system.message" },
        { content: "Q", "event.name": "gen_ai.user.message" },
        { index: 0, message: { role: "assistant", content: "A" }, "event.name": "gen_ai.choice" },
      ]),
    ).toEqual([
      ["system", "Sys."],
      ["user", "Q"],
      ["assistant", "A"],
    ]);
  });
});

describe("pseudo turns and empty messages", () => {
  it("a ReAct 'Observation:' after an 'Action:' is the tool, not the user", () => {
    expect(
      msgs([
        { role: "user", content: "What year is it?" },
        { role: "assistant", content: "Thought: check.\nAction: clock\nAction Input: {}" },
        { role: "user", content: "Observation: 2025" },
        { role: "assistant", content: "Answer: 2025" },
        { role: "user", content: "Observation: that is wrong, it's 2026" },
      ]),
    ).toEqual([
      ["user", "What year is it?"],
      ["assistant", "Thought: check.\nAction: clock\nAction Input: {}"],
      ["assistant", "Answer: 2025"],
      ["user", "Observation: that is wrong, it's 2026"],
    ]);
  });

  it("tool-call JSON in content (Koog, any-agent) and Python None are no assistant text", () => {
    expect(
      msgs([
        { role: "user", content: "Hi" },
        { role: "assistant", content: '[{"function":{"name":"f","arguments":"{}"},"id":"c","type":"function"}]' },
        { role: "assistant", content: '[{"tool.name": "get_time", "tool.args": {}}]' },
        { role: "assistant", content: "None" },
        { role: "assistant", content: "   " },
        { role: "critic", content: "unknown roles are not the human" },
      ]),
    ).toEqual([["user", "Hi"]]);
  });

  it("an assistant turn without text that the user replies to stays, as [no text]", () => {
    const call = { id: "c1", type: "function", function: { name: "delete_draft", arguments: '{"id":7}' } };
    expect(
      msgs([
        { role: "user", content: "Archive draft 7" },
        { role: "assistant", content: null, tool_calls: [call] },
        { role: "tool", tool_call_id: "c1", content: "deleted" },
        { role: "user", content: "No! I said archive, not delete." },
        { role: "assistant", content: [{ type: "tool_use", id: "t", name: "restore", input: {} }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "t", content: "ok" }] },
        { role: "user", content: "Thanks." },
      ]),
    ).toEqual([
      ["user", "Archive draft 7"],
      ["assistant", "[no text]"],
      ["user", "No! I said archive, not delete."],
      ["assistant", "[no text]"],
      ["user", "Thanks."],
    ]);
  });

  it("a silent step before the assistant's answer, or a call nobody replied to, adds no turn", () => {
    const call = { id: "c1", type: "function", function: { name: "weather", arguments: "{}" } };
    expect(
      msgs([
        { role: "user", content: "Weather?" },
        { role: "assistant", content: null, tool_calls: [call] },
        { role: "tool", tool_call_id: "c1", content: "sunny" },
        { role: "assistant", content: "Sunny." },
        { role: "assistant", content: null, tool_calls: [call] },
        { role: "user", content: "And tomorrow?" },
        { role: "assistant", content: null, tool_calls: [call] },
      ]),
    ).toEqual([
      ["user", "Weather?"],
      ["assistant", "Sunny."],
      ["user", "And tomorrow?"],
    ]);
    expect(msgs([{ type: "function_call", call_id: "c", name: "f", arguments: "{}" }], "assistant")).toEqual([]);
    expect(
      msgs([
        { role: "user", content: "Send it" },
        { type: "function_call", call_id: "c", name: "send", arguments: "{}" },
        { type: "function_call_output", call_id: "c", output: "sent" },
        { role: "user", content: "Wait, not yet!" },
      ]),
    ).toEqual([
      ["user", "Send it"],
      ["assistant", "[no text]"],
      ["user", "Wait, not yet!"],
    ]);
  });

  it("a flattened 'role: text' transcript", () => {
    expect(msgs("system: Be nice.\nuser: Hi\nthere\nassistant: None\ntool: {}\nassistant: Hello")).toEqual([
      ["system", "Be nice."],
      ["user", "Hi\nthere"],
      ["assistant", "Hello"],
    ]);
  });
});

describe("leniency", () => {
  it("bare strings take the default role; unrecognized JSON is only an answer on the output side", () => {
    expect(msgs("hello")).toEqual([["user", "hello"]]);
    expect(msgs("hello", "assistant")).toEqual([["assistant", "hello"]]);
    expect(msgs('{"answer": 2}', "assistant")).toEqual([["assistant", '{"answer": 2}']]);
    expect(msgs('{"runner": {"state": 1}}')).toEqual([]);
    expect(msgs('[{"role": "user", "content": "trunc')).toEqual([]);
    expect(msgs("[urgent] {fix} this")).toEqual([["user", "[urgent] {fix} this"]]);
    expect(msgs({ text: "out", finish_reason: "stop" })).toEqual([["assistant", "out"]]);
    expect(msgs(42)).toEqual([]);
    expect(msgs(null)).toEqual([]);
  });

  it("timestamps: the payload's own, else the default", () => {
    expect(toMessages([{ role: "user", content: "a", timestamp: "2025-01-01T00:00:00+02:00" }, { role: "assistant", content: "b" }], { timestamp: "2025-01-02T00:00:00.000Z" })).toEqual([
      { role: "user", content: "a", timestamp: "2024-12-31T22:00:00.000Z" },
      { role: "assistant", content: "b", timestamp: "2025-01-02T00:00:00.000Z" },
    ]);
  });

  it("deeply nested JSON strings do not recurse forever", () => {
    let v: unknown = [{ role: "user", content: "deep" }];
    for (let i = 0; i < 14; i++) v = JSON.stringify(v);
    expect(() => toMessages(v)).not.toThrow();
  });
});
