/**
 * The message-shape layer: turns the message payloads of every provider and framework into the
 * judge's messages. It never throws; a payload it does not recognize reads as `null` (internally)
 * so format adapters can look elsewhere, and as `[]` through the public `toMessages`.
 *
 * What the judge must see is the human/assistant exchange, so tool calls, tool results and
 * reasoning are dropped, and a message that consisted only of them disappears (a Gemini
 * functionResponse or Anthropic tool_result sent with role `user` is not the user speaking).
 */
import type { Role } from "@tracesift/schemas";
import type { NormalizedMessage } from "./types.ts";
import { isRecord, maybeJson, type Rec, str } from "./util.ts";

type RawRole = Role | "tool";

interface RawMessage {
  role: RawRole;
  text: string;
  timestamp?: string;
}

export interface ToMessagesOptions {
  /**
   * Role for payloads that carry none (a bare string, a list of content parts). `assistant` also
   * marks the payload as a model output, where several assistant messages that each carry a
   * `finish_reason` are alternative choices and only the first is kept.
   */
  defaultRole?: Role;
  /** Timestamp for messages the payload itself does not date. */
  timestamp?: string;
}

interface Ctx {
  role: Role;
  output: boolean;
  depth: number;
}

const MAX_DEPTH = 8;

/** Public, lenient entry: anything unrecognized yields no messages. */
export function toMessages(payload: unknown, opts: ToMessagesOptions = {}): NormalizedMessage[] {
  const read = readMessages(payload, opts);
  if (read !== null) return read;
  // JSON that is no message payload: from a model it is still its answer (structured output);
  // on the input side it is framework state (runner kwargs), not something a person typed.
  if (typeof payload === "string" && (opts.defaultRole === "assistant" || !looksLikeJson(payload))) {
    return finish([textMessage(opts.defaultRole ?? "user", payload)], opts.timestamp);
  }
  return [];
}

/** `null` when the payload is not a message payload at all, so callers can fall back. */
export function readMessages(payload: unknown, opts: ToMessagesOptions = {}): NormalizedMessage[] | null {
  const ctx: Ctx = { role: opts.defaultRole ?? "user", output: opts.defaultRole === "assistant", depth: 0 };
  let raw: RawMessage[] | null;
  try {
    raw = parseAny(payload, ctx, true);
  } catch {
    // Defensive: the parsers only read plain data, but a getter or proxy could still throw.
    return null;
  }
  return raw === null ? null : finish(raw, opts.timestamp);
}

/**
 * What the judge reads when the assistant's whole turn had no text (a tool-call-only message,
 * `content: null`) and the user then replied: the turn the user answers must not vanish, or the
 * reply reads as the user talking to themselves and the conversation is skipped as unjudgeable.
 * It names no tool and no argument, so tool calls still never become text.
 */
export const NO_TEXT = "[no text]";

function finish(raw: RawMessage[], timestamp: string | undefined): NormalizedMessage[] {
  const kept: (RawMessage & { role: Role })[] = [];
  let prev: RawMessage | undefined;
  for (const m of raw) {
    const isObservation = m.role === "user" && prev?.role === "assistant" && isReActObservation(prev.text, m.text);
    if (m.role !== "tool") prev = m;
    if (m.role === "tool" || isObservation || isSerializedObject(m.text)) continue;
    if (m.text.trim().length === 0 && m.role !== "assistant") continue;
    kept.push({ ...m, role: m.role });
  }
  const out: NormalizedMessage[] = [];
  for (const [i, m] of kept.entries()) {
    let text = m.text;
    if (text.trim().length === 0) {
      if (!silentTurnRepliedTo(kept, i)) continue;
      text = NO_TEXT;
    }
    const ts = m.timestamp ?? timestamp;
    out.push(ts === undefined ? { role: m.role, content: text } : { role: m.role, content: text, timestamp: ts });
  }
  return out;
}

/**
 * An empty assistant message stands for the assistant's turn only when that turn (since the last
 * user message) said nothing else and the next message is the user's: a silent step before the
 * assistant's real answer, or one nobody replied to (an output that is a tool call), is not a turn.
 */
function silentTurnRepliedTo(kept: RawMessage[], i: number): boolean {
  if (kept[i + 1]?.role !== "user") return false;
  for (let j = i - 1; j >= 0; j--) {
    const m = kept[j];
    if (m === undefined || m.role === "user") break;
    if (m.role === "assistant" && m.text.trim().length > 0) return false;
  }
  return true;
}

/**
 * Framework objects printed instead of text: Python reprs of LangChain messages
 * (`content='' additional_kwargs={…}`), `HumanMessage(content=…)`, LangGraph node markers
 * (`__end__`). Nobody typed or read them as a turn.
 */
function isSerializedObject(text: string): boolean {
  const t = text.trim();
  if (/^__\w+__$/.test(t)) return true;
  if (/^content=(['"]).*\b(additional_kwargs|response_metadata)=/s.test(t)) return true;
  return /^[A-Z]\w*(Message|MessageChunk|Request|Response|State)\((content|parts|messages)=/.test(t);
}

/**
 * ReAct agents (llama_index, LangChain's older agents) send the tool result back as a `user`
 * message "Observation: …" right after the model's "Action: …". That is the tool talking.
 */
function isReActObservation(prevAssistant: string, text: string): boolean {
  return /^\s*Observation\s*:/.test(text) && /(^|\n)\s*Action( Input)?\s*:/.test(prevAssistant);
}

// ---------------------------------------------------------------- dispatch

function parseAny(v: unknown, ctx: Ctx, top: boolean): RawMessage[] | null {
  if (ctx.depth > MAX_DEPTH) return null;
  if (typeof v === "string") return parseString(v, ctx, top);
  if (Array.isArray(v)) return parseArray(v, ctx);
  if (isRecord(v)) return parseObject(v, ctx);
  return null;
}

function deeper(ctx: Ctx, patch: Partial<Ctx> = {}): Ctx {
  return { ...ctx, ...patch, depth: ctx.depth + 1 };
}

const TRANSCRIPT_START = /^(system|developer|user|assistant|human|ai|tool|function|model):[ \t]/i;
const TRANSCRIPT_LINE = /^(system|developer|user|assistant|human|ai|tool|function|model):[ \t]?/i;

function parseString(s: string, ctx: Ctx, top: boolean): RawMessage[] | null {
  const parsed = maybeJson(s);
  if (parsed !== s) return parseAny(parsed, deeper(ctx), false);
  const t = s.trim();
  if (looksLikeJson(t)) return null; // broken (often truncated) JSON is not a message
  // Some SDKs (autogen, agno via Langfuse) flatten a chat into "role: text" lines.
  if (top && TRANSCRIPT_START.test(t)) return parseTranscript(t);
  return [textMessage(ctx.role, s)];
}

/** JSON structure, as opposed to text that happens to open with a bracket ("[urgent] …"). */
function looksLikeJson(s: string): boolean {
  return /^\s*(\{\s*("|\}|$)|\[\s*([[{"\d\]-]|true|false|null|$))/.test(s);
}

function parseTranscript(t: string): RawMessage[] {
  const out: RawMessage[] = [];
  let cur: { role: RawRole | undefined; lines: string[] } | undefined;
  const flush = () => {
    if (cur?.role !== undefined) out.push(textMessage(cur.role, cur.lines.join("\n")));
  };
  for (const line of t.split("\n")) {
    const m = TRANSCRIPT_LINE.exec(line);
    if (m?.[1] !== undefined) {
      flush();
      cur = { role: mapRole(m[1]), lines: [line.slice(m[0].length)] };
    } else cur?.lines.push(line);
  }
  flush();
  return out;
}

function parseArray(a: unknown[], ctx: Ctx): RawMessage[] | null {
  if (a.length === 0) return [];
  // LangChain batches: `messages: [[...]]`, `generations: [[...]]`; the first prompt is the conversation.
  if (a.every(Array.isArray)) return parseArray(a[0] as unknown[], deeper(ctx));
  if (a.every(isPartLike)) return [buildMessage(ctx.role, contentPieces(a, ctx))];
  const out: RawMessage[] = [];
  let recognized = 0;
  const next = deeper(ctx);
  const items = ctx.output ? firstChoiceOnly(a) : a;
  for (const el of items) {
    if (!isRecord(el)) continue;
    const r = parseObject(el, next);
    if (r === null) continue;
    recognized++;
    out.push(...r);
  }
  return recognized > 0 ? out : null;
}

/** OTel output messages list the choices; a conversation continues with the first one only. */
function firstChoiceOnly(a: unknown[]): unknown[] {
  if (a.length < 2) return a;
  const choices = a.every((m) => isRecord(m) && mapRole(m.role) === "assistant" && m.finish_reason !== undefined);
  return choices ? a.slice(0, 1) : a;
}

function parseObject(o: Rec, ctx: Ctx): RawMessage[] | null {
  return messageObject(o, ctx) ?? containerObject(o, ctx);
}

// ---------------------------------------------------------------- roles

function mapRole(r: unknown): RawRole | undefined {
  if (typeof r !== "string") return undefined;
  switch (r.trim().toLowerCase()) {
    case "user":
    case "human":
    case "humanmessage":
    case "humanmessagechunk":
      return "user";
    case "assistant":
    case "ai":
    case "model":
    case "bot":
    case "chatbot":
    case "aimessage":
    case "aimessagechunk":
      return "assistant";
    case "system":
    case "developer":
    case "systemmessage":
    case "systemmessagechunk":
      return "system";
    case "tool":
    case "function":
    case "ipython":
    case "toolmessage":
    case "toolmessagechunk":
    case "functionmessage":
    case "functionmessagechunk":
      return "tool";
    default:
      return undefined;
  }
}

const EVENT_ROLES: Record<string, RawRole> = {
  "gen_ai.system.message": "system",
  "gen_ai.user.message": "user",
  "gen_ai.assistant.message": "assistant",
  "gen_ai.tool.message": "tool",
};

/** Responses API items and other typed entries that are tool traffic, never conversation. */
const TOOL_ITEM_TYPES = new Set([
  "function_call",
  "function_call_output",
  "custom_tool_call",
  "custom_tool_call_output",
  "computer_call",
  "computer_call_output",
  "web_search_call",
  "file_search_call",
  "code_interpreter_call",
  "image_generation_call",
  "local_shell_call",
  "local_shell_call_output",
  "mcp_call",
  "mcp_list_tools",
  "mcp_approval_request",
  "mcp_approval_response",
  "tool_call",
  "tool_result",
  "tool-call",
  "tool-result",
  "item_reference",
]);

function isToolOutput(type: string, o: Rec): boolean {
  return /output|result|response|reference|list_tools/.test(type) || "result" in o || "output" in o;
}

// ---------------------------------------------------------------- single messages

function messageObject(o: Rec, ctx: Ctx): RawMessage[] | null {
  // LangChain serialized: {"lc":1,"type":"constructor","id":[..., "HumanMessage"],"kwargs":{...}}
  if (o.lc === 1 && Array.isArray(o.id) && isRecord(o.kwargs)) {
    const cls = o.id[o.id.length - 1];
    const role = mapRole(cls) ?? (cls === "ChatMessage" || cls === "ChatMessageChunk" ? mapRole(o.kwargs.role) : undefined);
    if (role === undefined) return [];
    return [buildFromFields(role, o.kwargs, ctx)];
  }
  // pydantic-ai ModelRequest / ModelResponse.
  if ((o.kind === "request" || o.kind === "response") && Array.isArray(o.parts)) return pydanticMessage(o.kind, o.parts, ctx);

  const type = typeof o.type === "string" ? o.type.toLowerCase() : undefined;
  // The model's own calls are the assistant acting without text; outputs are the tool talking.
  if (type !== undefined && TOOL_ITEM_TYPES.has(type)) return [{ role: isToolOutput(type, o) ? "tool" : "assistant", text: "" }];
  // Vercel AI SDK results: `toolCalls` / `toolResults` entries carry no `type`.
  if (typeof o.toolCallId === "string" && typeof o.toolName === "string") return [{ role: isToolOutput("", o) ? "tool" : "assistant", text: "" }];
  if (type === "reasoning") return [];

  let role = mapRole(o.role);
  if (role === undefined && type !== undefined && type !== "message") {
    role = type === "chat" || type === "generic" ? mapRole(o.role) : mapRole(type);
  }
  const eventName = str(o["event.name"]) ?? str(o.event_name);
  if (role === undefined && eventName !== undefined) role = EVENT_ROLES[eventName];
  if (role === undefined) {
    // A Responses `message` item, or a Gemini Content, with the role left out is the default speaker.
    if ((type === "message" && ("content" in o || "parts" in o)) || (type === undefined && Array.isArray(o.parts))) role = ctx.role;
    else return null;
  }
  return [buildFromFields(role, o, ctx)];
}

function buildFromFields(role: RawRole, o: Rec, ctx: Ctx): RawMessage {
  if (role === "tool") return { role, text: "" };
  let pieces: Piece[];
  if (Array.isArray(o.parts)) pieces = contentPieces(o.parts, ctx);
  else if ("content" in o && o.content !== undefined) pieces = contentPieces(o.content, ctx);
  else if (Array.isArray(o.blocks)) pieces = contentPieces(o.blocks, ctx);
  else if (Array.isArray(o.contents)) pieces = contentPieces(o.contents, ctx);
  else if (typeof o.text === "string") pieces = [{ kind: "text", text: o.text }];
  else pieces = [];
  if (role === "assistant" && !pieces.some((p) => p.kind === "text" || p.kind === "media")) {
    if (typeof o.refusal === "string") pieces.push({ kind: "text", text: o.refusal });
    const audio = isRecord(o.audio) ? o.audio : undefined;
    if (audio !== undefined) pieces.push(typeof audio.transcript === "string" ? { kind: "text", text: audio.transcript } : { kind: "media", text: "[audio]" });
  }
  const msg = buildMessage(role, pieces);
  const ts = messageTime(o);
  return ts === undefined ? msg : { ...msg, timestamp: ts };
}

function messageTime(o: Rec): string | undefined {
  const v = o.timestamp ?? o.created_at ?? o.createdAt;
  if (typeof v !== "string" || !/^\d{4}-\d{2}-\d{2}T/.test(v)) return undefined;
  const ms = Date.parse(/(Z|[+-]\d{2}:?\d{2})$/i.test(v) ? v : `${v}Z`);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

function textMessage(role: RawRole, text: string): RawMessage {
  return buildMessage(role, [{ kind: "text", text }]);
}

/** A user message made only of tool results is the tool talking; an assistant one only of calls is empty. */
function buildMessage(role: RawRole, pieces: Piece[]): RawMessage {
  if (role === "tool") return { role, text: "" };
  const hasSpeech = pieces.some((p) => p.kind === "text" || p.kind === "media");
  // An assistant message of tool calls only is still the assistant acting (see `NO_TEXT`); a user
  // message of tool results only is the tool talking.
  if (!hasSpeech && role !== "assistant" && pieces.some((p) => p.kind === "tool")) return { role: "tool", text: "" };
  let text = joinPieces(pieces);
  if (role === "assistant" && (text.trim() === "None" || isToolCallJson(text))) text = "";
  return { role, text };
}

/**
 * Some instrumentations (Koog, any-agent) serialize an assistant's tool calls into its content:
 * `[{"function":{"name":…},"id":…,"type":"function"}]` or `[{"tool.name":…,"tool.args":…}]`.
 */
function isToolCallJson(text: string): boolean {
  const t = text.trim();
  if (!t.startsWith("[{")) return false;
  const v = maybeJson(t);
  return (
    Array.isArray(v) &&
    v.length > 0 &&
    v.every(
      (c) =>
        isRecord(c) &&
        ((isRecord(c.function) && typeof c.function.name === "string") ||
          typeof c["tool.name"] === "string" ||
          (typeof c.toolCallId === "string" && typeof c.toolName === "string") ||
          (c.type === "tool_call" && typeof c.name === "string")),
    )
  );
}

function pydanticMessage(kind: "request" | "response", parts: unknown[], ctx: Ctx): RawMessage[] {
  if (kind === "response") {
    return [buildMessage("assistant", parts.map(pydanticPart))];
  }
  const out: RawMessage[] = [];
  for (const p of parts) {
    if (!isRecord(p)) continue;
    const pk = str(p.part_kind);
    // retry-prompt is pydantic-ai's validation feedback to the model, not the human speaking.
    const role: RawRole = pk === "system-prompt" ? "system" : pk === "user-prompt" ? "user" : "tool";
    const ts = messageTime(p);
    const msg = buildMessage(role, role === "tool" ? [] : contentPieces(p.content, ctx));
    out.push(ts === undefined ? msg : { ...msg, timestamp: ts });
  }
  return out;
}

function pydanticPart(p: unknown): Piece {
  if (!isRecord(p)) return { kind: "skip" };
  switch (p.part_kind) {
    case "text":
      return { kind: "text", text: typeof p.content === "string" ? p.content : "" };
    case "thinking":
      return { kind: "skip" };
    case "tool-call":
    case "builtin-tool-call":
    case "builtin-tool-return":
      return { kind: "tool" };
    default:
      return partOf(p);
  }
}

// ---------------------------------------------------------------- containers

function containerObject(o: Rec, ctx: Ctx): RawMessage[] | null {
  const next = deeper(ctx);
  const asOutput = deeper(ctx, { role: "assistant", output: true });

  // Responses: ChatCompletion / completion, Gemini, LangChain LLMResult, OpenAI Responses.
  if (Array.isArray(o.choices)) return choiceMessages(o.choices, asOutput);
  if (Array.isArray(o.candidates)) {
    const c = o.candidates[0];
    return isRecord(c) && c.content !== undefined ? (parseContentValue(c.content, asOutput) ?? []) : [];
  }
  if (Array.isArray(o.generations)) return generationMessages(o.generations, asOutput);
  if (o.object === "response" && Array.isArray(o.output)) return parseArray(o.output, asOutput) ?? [];

  // Requests: a system prompt in its own field plus the messages.
  const system = systemMessages(o, next);
  let body: RawMessage[] | null = null;
  if (o.messages !== undefined) body = parseAny(o.messages, next, false);
  else if (o.contents !== undefined) body = geminiContents(o.contents, next);
  else if (o.input !== undefined && (typeof o.input === "string" || Array.isArray(o.input))) body = parseAny(o.input, next, false);
  else if (typeof o.prompt === "string") body = [textMessage("user", o.prompt)];
  else if (Array.isArray(o.prompt) && o.prompt.every((p) => typeof p === "string")) body = o.prompt.map((p) => textMessage("user", p));
  else if (Array.isArray(o.prompts) && o.prompts.every((p) => typeof p === "string")) body = o.prompts.map((p) => textMessage("user", p));
  else if (isRecord(o.new_message) || isRecord(o.newMessage)) body = parseContentValue(o.new_message ?? o.newMessage, next); // Google ADK runner
  if (body !== null || system.length > 0) return [...system, ...(body ?? [])];

  // Single-answer wrappers: ADK LlmResponse {content:{role:"model",parts}}, choice-like
  // {index, finish_reason, message}, LangChain chain outputs {output}, OpenInference {text}.
  const choiceLike = "finish_reason" in o || "index" in o;
  const inner = choiceLike ? asOutput : next;
  if (isRecord(o.message)) return parseContentValue(o.message, inner);
  if (o.content !== undefined && o.content !== null && !("role" in o)) {
    // On the input side a role-less `{content}` says nothing about who spoke (the Claude Agent
    // SDK instrumentation logs `{"content": "role"}`): it is no user turn unless the content
    // carries its own role.
    if (!ctx.output && !choiceLike && !(isRecord(o.content) && "role" in o.content)) return [];
    return parseContentValue(o.content, inner);
  }
  if (o.output !== undefined && o.output !== null && typeof o.output !== "number") {
    return parseAny(o.output, asOutput, false);
  }
  if (typeof o.text === "string") return [textMessage(choiceLike ? "assistant" : ctx.role, o.text)];
  return null;
}

/** A value that is either a whole message (has a role) or just its content. */
function parseContentValue(v: unknown, ctx: Ctx): RawMessage[] | null {
  if (isRecord(v)) {
    const m = messageObject(v, ctx);
    if (m !== null) return m;
    if (Array.isArray(v.parts)) return [buildMessage(ctx.role, contentPieces(v.parts, ctx))];
    return containerObject(v, ctx);
  }
  if (typeof v === "string") return [textMessage(ctx.role, v)];
  if (Array.isArray(v)) return parseArray(v, ctx);
  return null;
}

function choiceMessages(choices: unknown[], ctx: Ctx): RawMessage[] {
  const c = choices.find((x) => isRecord(x) && (x.index === 0 || x.index === undefined)) ?? choices[0];
  if (!isRecord(c)) return [];
  if (isRecord(c.message)) return parseContentValue(c.message, ctx) ?? [];
  if (isRecord(c.delta)) return parseContentValue(c.delta, ctx) ?? [];
  if (typeof c.text === "string") return [textMessage("assistant", c.text)];
  return [];
}

function generationMessages(gens: unknown[], ctx: Ctx): RawMessage[] {
  let g: unknown = gens[0];
  if (Array.isArray(g)) g = g[0];
  if (!isRecord(g)) return [];
  if (isRecord(g.message)) return parseContentValue(g.message, ctx) ?? [];
  if (typeof g.text === "string") return [textMessage("assistant", g.text)];
  return [];
}

function systemMessages(o: Rec, ctx: Ctx): RawMessage[] {
  const config = isRecord(o.config) ? o.config : isRecord(o.generationConfig) ? o.generationConfig : undefined;
  const candidates: unknown[] = [
    o.system,
    o.system_instruction,
    o.systemInstruction,
    config?.system_instruction,
    config?.systemInstruction,
  ];
  // Responses requests carry `instructions`; response objects echo them, which are not said again.
  if (o.object !== "response" && (o.input !== undefined || o.messages !== undefined)) candidates.push(o.instructions);
  const out: RawMessage[] = [];
  for (const c of candidates) {
    if (c === undefined || c === null) continue;
    const pieces = isRecord(c) && Array.isArray(c.parts) ? contentPieces(c.parts, ctx) : contentPieces(c, ctx);
    const msg = buildMessage("system", pieces);
    if (msg.text.length > 0) out.push(msg);
  }
  return out;
}

/** Gemini `contents`: a string, a Content, a list of Contents, strings or parts. */
function geminiContents(v: unknown, ctx: Ctx): RawMessage[] | null {
  if (typeof v === "string") return [textMessage("user", v)];
  if (isRecord(v)) return parseContentValue(v, ctx);
  if (!Array.isArray(v)) return null;
  if (v.every((x) => typeof x === "string" || isPartLike(x))) return [buildMessage("user", contentPieces(v, ctx))];
  return parseArray(v, ctx);
}

// ---------------------------------------------------------------- content parts

type Piece = { kind: "text"; text: string } | { kind: "media"; text: string } | { kind: "tool" } | { kind: "skip" };

const PART_TYPES = new Set([
  "text",
  "input_text",
  "output_text",
  "refusal",
  "image_url",
  "image",
  "input_image",
  "input_audio",
  "audio",
  "video",
  "file",
  "input_file",
  "document",
  "uri",
  "blob",
  "tool_use",
  "tool_result",
  "tool-call",
  "tool-result",
  "tool_call",
  "tool_call_response",
  "server_tool_call",
  "server_tool_call_response",
  "server_tool_use",
  "thinking",
  "redacted_thinking",
  "reasoning",
]);

const GEMINI_TOOL_KEYS = [
  "functionCall",
  "function_call",
  "functionResponse",
  "function_response",
  "executableCode",
  "executable_code",
  "codeExecutionResult",
  "code_execution_result",
  "toolCall",
  "toolResponse",
];

function isPartLike(v: unknown): boolean {
  if (!isRecord(v) || "role" in v) return false;
  if (typeof v.type === "string") return PART_TYPES.has(v.type);
  return (
    typeof v.text === "string" ||
    GEMINI_TOOL_KEYS.some((k) => k in v) ||
    "inline_data" in v ||
    "inlineData" in v ||
    "file_data" in v ||
    "fileData" in v
  );
}

function contentPieces(content: unknown, ctx: Ctx): Piece[] {
  if (content === null || content === undefined) return [];
  if (typeof content === "string") {
    // Langfuse and some SDKs store a parts array as a JSON string in `content`.
    const t = content.trim();
    if (t.startsWith("[{") && ctx.depth < MAX_DEPTH) {
      const parsed = maybeJson(t);
      if (Array.isArray(parsed) && parsed.length > 0 && parsed.every(isPartLike)) {
        return contentPieces(parsed, deeper(ctx));
      }
    }
    return [{ kind: "text", text: content }];
  }
  if (typeof content === "number" || typeof content === "boolean") return [{ kind: "text", text: String(content) }];
  if (Array.isArray(content)) return content.map(partOf);
  if (isRecord(content)) {
    if (Array.isArray(content.parts)) return contentPieces(content.parts, ctx);
    if (typeof content.type === "string" || typeof content.text === "string" || isPartLike(content)) return [partOf(content)];
    // Structured content with no text field: show it as JSON rather than lose it.
    return [{ kind: "text", text: safeStringify(content) }];
  }
  return [];
}

function partOf(p: unknown): Piece {
  if (typeof p === "string") return { kind: "text", text: p };
  if (typeof p === "number") return { kind: "text", text: String(p) };
  if (!isRecord(p)) return { kind: "skip" };
  if (p.thought === true) return { kind: "skip" }; // Gemini thought summaries
  if (GEMINI_TOOL_KEYS.some((k) => k in p)) return { kind: "tool" };
  const inline = isRecord(p.inline_data) ? p.inline_data : isRecord(p.inlineData) ? p.inlineData : undefined;
  if (inline !== undefined) return media(undefined, str(inline.mime_type) ?? str(inline.mimeType), str(inline.display_name) ?? str(inline.displayName));
  const fileData = isRecord(p.file_data) ? p.file_data : isRecord(p.fileData) ? p.fileData : undefined;
  if (fileData !== undefined) return media(undefined, str(fileData.mime_type) ?? str(fileData.mimeType), str(fileData.display_name) ?? str(fileData.displayName));

  const rawType = str(p.type) ?? str(p.kind) ?? str(p.block_type) ?? str(p.part_kind);
  const type = rawType?.toLowerCase();
  const textOf = (v: unknown): Piece => (typeof v === "string" ? { kind: "text", text: v } : { kind: "skip" });
  if (type === undefined) {
    if (typeof p.text === "string") return { kind: "text", text: p.text };
    if (typeof p.content === "string") return { kind: "text", text: p.content };
    return { kind: "skip" };
  }
  switch (type) {
    case "text":
    case "input_text":
    case "output_text":
    case "user-prompt":
      return textOf(p.text ?? p.content);
    case "refusal":
      return textOf(p.refusal ?? p.text);
    case "image_url":
    case "image":
    case "input_image":
    case "output_image":
    case "image-url":
      return media("image", str(p.mime_type) ?? str(p.mediaType) ?? str(p.media_type), undefined);
    case "input_audio":
    case "audio":
    case "output_audio":
    case "audio-url":
      return media("audio", undefined, undefined);
    case "video":
    case "video-url":
      return media("video", undefined, undefined);
    case "uri":
    case "blob":
    case "file":
    case "input_file":
    case "document":
    case "document-url":
    case "binary": {
      const file = isRecord(p.file) ? p.file : undefined;
      const name = str(p.filename) ?? str(file?.filename) ?? str(p.name) ?? str(p.title);
      return media(str(p.modality), str(p.mime_type) ?? str(p.mimeType) ?? str(p.mediaType) ?? str(p.media_type), name);
    }
    case "step-start":
    case "source-url":
    case "source-document":
    case "source":
      return { kind: "skip" }; // Vercel UI bookkeeping and citations, not speech
  }
  if (/reason|think|thought/.test(type)) return { kind: "skip" };
  if (/tool|function/.test(type)) return { kind: "tool" };
  if (typeof p.text === "string") return { kind: "text", text: p.text };
  if (typeof p.content === "string") return { kind: "text", text: p.content };
  return { kind: "media", text: `[${rawType}]` };
}

function media(modality: string | undefined, mime: string | undefined, name: string | undefined): Piece {
  const kind = (modality ?? mime?.split("/")[0])?.toLowerCase();
  if (kind === "image" || kind === "audio" || kind === "video") return { kind: "media", text: `[${kind}]` };
  return { kind: "media", text: name === undefined ? "[file]" : `[file: ${name}]` };
}

function joinPieces(pieces: Piece[]): string {
  let out = "";
  for (const p of pieces) {
    if (p.kind !== "text" && p.kind !== "media") continue;
    if (p.text.length === 0) continue;
    if (out.length === 0) out = p.text;
    // Blocks that already break at whitespace were split mid-text (streams, citations): glue them.
    else if (/\s$/.test(out) || /^\s/.test(p.text)) out += p.text;
    else out += `\n${p.text}`;
  }
  return out;
}

function safeStringify(v: unknown): string {
  try {
    return JSON.stringify(v) ?? "";
  } catch {
    return "";
  }
}
