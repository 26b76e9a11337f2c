/**
 * OpenTelemetry GenAI semantic conventions, in all the generations instrumentations still emit:
 * - current: `gen_ai.input.messages`, `gen_ai.output.messages`, `gen_ai.system_instructions`
 *   (JSON strings, or structured values);
 * - older indexed attributes `gen_ai.prompt.N.role/content`, `gen_ai.completion.N.*`
 *   (OpenLLMetry, Koog) and their JSON-string form `gen_ai.prompt` / `gen_ai.completion`;
 * - per-message span events `gen_ai.system|user|assistant|tool.message`, `gen_ai.choice`, and
 *   pydantic-ai's copy of those event bodies in an `events` attribute;
 * - framework attributes that sit beside them: Vercel AI SDK `ai.prompt*` / `ai.response.*`,
 *   any-agent `gen_ai.output`.
 */
import { collectIndexed } from "../attributes.ts";
import { readMessages, toMessages } from "../messages.ts";
import type { ExtractCtx, Span, SpanEvent, SpanMessages } from "../spans.ts";
import { NormalizeError, type NormalizedMessage } from "../types.ts";
import { abbrev, isRecord, maybeJson, parseJson, type Rec, str } from "../util.ts";

/** Operations that are not a model call, even when they carry `gen_ai.output`. */
const NOT_LLM = new Set(["execute_tool", "embeddings", "create_agent"]);

export function genAiMessages(span: Span, ctx: ExtractCtx): SpanMessages | null {
  const a = span.attributes;
  const op = str(a["gen_ai.operation.name"]);
  if (op !== undefined && NOT_LLM.has(op)) return null;
  if (a["ai.operationId"] === "ai.toolCall") return null;

  let input: NormalizedMessage[] | null = null;
  let output: NormalizedMessage[] | null = null;

  if (a["gen_ai.input.messages"] !== undefined) input = jsonAttr(span, "gen_ai.input.messages", ctx, "user");
  if (a["gen_ai.output.messages"] !== undefined) output = jsonAttr(span, "gen_ai.output.messages", ctx, "assistant");

  input ??= indexedOrJson(a, "gen_ai.prompt", "user");
  output ??= indexedOrJson(a, "gen_ai.completion", "assistant");

  if (input === null && output === null) {
    const fromEvents = eventMessages(span, ctx);
    if (fromEvents !== null) ({ input, output } = fromEvents);
  }
  if (input === null && output === null && a.events !== undefined) {
    const fromAttr = pydanticEvents(a.events);
    if (fromAttr !== null) ({ input, output } = fromAttr);
  }

  // Vercel AI SDK spans (ai.generateText, ai.streamText, their doGenerate/doStream children).
  if (input === null) {
    const prompt = a["ai.prompt.messages"] ?? a["ai.prompt"];
    if (prompt !== undefined) input = lenient(prompt, "user");
  }
  if (output === null) {
    const text = a["ai.response.text"] ?? a["ai.response.object"];
    if (text !== undefined) output = lenient(text, "assistant");
  }
  // any-agent: `gen_ai.output` is the model's text, or JSON of its tool calls / structured answer.
  if (output === null && a["gen_ai.output"] !== undefined) output = lenient(a["gen_ai.output"], "assistant");

  if (input === null && output === null) return null;
  const system = a["gen_ai.system_instructions"] !== undefined ? systemInstructions(span, ctx) : [];
  return { input: withSystem(system, input ?? []), output: output ?? [] };
}

/** Prepend system instructions unless the input already carries the same text. */
export function withSystem(system: NormalizedMessage[], input: NormalizedMessage[]): NormalizedMessage[] {
  const fresh = system.filter((s) => !input.some((m) => m.role === "system" && m.content.trim() === s.content.trim()));
  return [...fresh, ...input];
}

function jsonAttr(span: Span, key: string, ctx: ExtractCtx, role: "user" | "assistant"): NormalizedMessage[] {
  const v = span.attributes[key];
  let value: unknown = v;
  if (typeof v === "string") {
    const parsed = parseJson(v);
    if (!parsed.ok) {
      if (!ctx.strict) return toMessages(v, { defaultRole: role });
      throw new NormalizeError("invalid_shape", `${ctx.format}: span ${abbrev(span.spanId)} attribute ${key} is not valid JSON`, ctx.format);
    }
    value = parsed.value;
  }
  const msgs = readMessages(value, { defaultRole: role });
  if (msgs === null) {
    if (!ctx.strict) return [];
    throw new NormalizeError("invalid_shape", `${ctx.format}: span ${abbrev(span.spanId)} attribute ${key} is not a list of messages`, ctx.format);
  }
  return msgs;
}

function systemInstructions(span: Span, ctx: ExtractCtx): NormalizedMessage[] {
  const v = span.attributes["gen_ai.system_instructions"];
  // The spec says JSON parts, but plain instruction text is common enough to take as is.
  if (typeof v === "string" && /^\s*[[{]/.test(v) && !parseJson(v).ok && ctx.strict) {
    throw new NormalizeError("invalid_shape", `${ctx.format}: span ${abbrev(span.spanId)} attribute gen_ai.system_instructions is not valid JSON`, ctx.format);
  }
  const value = Array.isArray(v) && v.every((x) => typeof x === "string") ? v.join("\n") : maybeJson(v);
  return toMessages(value, { defaultRole: "system" }).map((m) => ({ ...m, role: "system" as const }));
}

/** Values read best-effort: JSON when it parses, the raw text otherwise. */
function lenient(v: unknown, role: "user" | "assistant"): NormalizedMessage[] {
  return toMessages(v, { defaultRole: role });
}

function indexedOrJson(a: Rec, prefix: string, role: "user" | "assistant"): NormalizedMessage[] | null {
  const recs = collectIndexed(a, prefix).filter((r) => "role" in r || "content" in r);
  if (recs.length > 0) {
    const msgs = recs.map((r) => ({ role: r.role ?? role, content: r.content ?? null }));
    return toMessages(msgs, { defaultRole: role });
  }
  const whole = a[prefix];
  if (whole !== undefined && whole !== null) return lenient(whole, role);
  return null;
}

const MESSAGE_EVENTS = new Set(["gen_ai.system.message", "gen_ai.user.message", "gen_ai.assistant.message", "gen_ai.tool.message"]);

function eventMessages(span: Span, ctx: ExtractCtx): SpanMessages | null {
  const input: NormalizedMessage[] = [];
  const output: NormalizedMessage[] = [];
  let seen = false;
  for (const ev of span.events) {
    if (ev.name === "gen_ai.content.prompt" || ev.name === "gen_ai.content.completion") {
      seen = true;
      const isPrompt = ev.name === "gen_ai.content.prompt";
      const value = ev.attributes[isPrompt ? "gen_ai.prompt" : "gen_ai.completion"];
      (isPrompt ? input : output).push(...lenient(value, isPrompt ? "user" : "assistant").map(at(ev)));
      continue;
    }
    if (ev.attributes["gen_ai.input.messages"] !== undefined || ev.attributes["gen_ai.output.messages"] !== undefined) {
      // gen_ai.client.inference.operation.details: the current conventions, carried on an event.
      const inner = genAiMessages({ ...span, attributes: { ...ev.attributes }, events: [] }, ctx);
      if (inner !== null) {
        seen = true;
        input.push(...inner.input.map(at(ev)));
        output.push(...inner.output.map(at(ev)));
      }
      continue;
    }
    if (!MESSAGE_EVENTS.has(ev.name) && ev.name !== "gen_ai.choice") continue;
    seen = true;
    const body = eventBody(ev);
    if (ev.name === "gen_ai.choice") {
      if (body.index !== undefined && body.index !== 0 && body.index !== "0") continue; // other choices
      output.push(...toMessages({ ...body, finish_reason: body.finish_reason ?? null }, { defaultRole: "assistant" }).map(at(ev)));
    } else {
      input.push(...toMessages({ ...body, "event.name": ev.name }, { defaultRole: "user" }).map(at(ev)));
    }
  }
  return seen ? { input, output } : null;
}

/** Event bodies come as attributes (content, role, message, tool_calls) or a JSON body attribute. */
function eventBody(ev: SpanEvent): Rec {
  const a = ev.attributes;
  const bodyAttr = maybeJson(a["gen_ai.event.content"] ?? a["event.body"] ?? a.body);
  const body: Rec = isRecord(bodyAttr) ? { ...bodyAttr } : {};
  for (const k of ["role", "content", "message", "tool_calls", "index", "finish_reason"]) {
    if (body[k] === undefined && a[k] !== undefined) body[k] = k === "message" || k === "tool_calls" ? maybeJson(a[k]) : a[k];
  }
  return body;
}

function at(ev: SpanEvent): (m: NormalizedMessage) => NormalizedMessage {
  return (m) => (m.timestamp !== undefined || ev.time === undefined ? m : { ...m, timestamp: ev.time });
}

/** pydantic-ai (logfire) before semconv 1.37 put the event bodies in an `events` JSON attribute. */
function pydanticEvents(v: unknown): SpanMessages | null {
  const events = maybeJson(v);
  if (!Array.isArray(events)) return null;
  const input: unknown[] = [];
  const output: unknown[] = [];
  for (const e of events) {
    if (!isRecord(e)) continue;
    if (e["event.name"] === "gen_ai.choice") {
      if (e.index === undefined || e.index === 0) output.push(e);
    } else input.push(e);
  }
  if (input.length === 0 && output.length === 0) return null;
  return { input: toMessages(input, { defaultRole: "user" }), output: toMessages(output, { defaultRole: "assistant" }) };
}
