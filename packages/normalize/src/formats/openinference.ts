/**
 * OpenInference (Arize/Phoenix) LLM spans: `llm.input_messages` / `llm.output_messages` either
 * flattened (`llm.input_messages.0.message.role`) or as the spec's nested "logical JSON", with
 * `message.content` or `message.contents.N.message_content.*`; when a span has no message
 * attributes, `llm.prompts` and then `input.value` / `output.value`.
 */
import { collectIndexed, flatten, hasPrefix } from "../attributes.ts";
import { readMessages, toMessages } from "../messages.ts";
import type { ExtractCtx, Span, SpanMessages } from "../spans.ts";
import type { NormalizedMessage } from "../types.ts";
import { maybeJson, type Rec, str } from "../util.ts";

const MESSAGE_PREFIXES = ["llm.input_messages", "llm.output_messages", "llm.prompts"] as const;

export function openInferenceMessages(span: Span, _ctx: ExtractCtx): SpanMessages | null {
  const raw = span.attributes;
  const kind = str(raw["openinference.span.kind"])?.toUpperCase();
  const hasMessages = MESSAGE_PREFIXES.some((p) => hasPrefix(raw, p));
  // Only model calls: TOOL/CHAIN/AGENT spans also have input.value/output.value, which are not chat.
  if (kind !== "LLM" && !hasMessages) return null;

  const a = flatten(raw, MESSAGE_PREFIXES);
  let input = indexedMessages(a, "llm.input_messages", "user");
  let output = indexedMessages(a, "llm.output_messages", "assistant");
  input ??= prompts(a);
  input ??= valueMessages(a["input.value"], "user");
  output ??= valueMessages(a["output.value"], "assistant");
  if (input === null && output === null) return null;
  return { input: input ?? [], output: output ?? [] };
}

function indexedMessages(a: Rec, prefix: string, role: "user" | "assistant"): NormalizedMessage[] | null {
  const recs = collectIndexed(a, prefix);
  if (recs.length === 0) return null;
  let msgs = recs.map(oiMessage);
  if (role === "assistant" && msgs.length > 1 && msgs.every((m) => m.role === "assistant" || m.role === undefined)) {
    // Several assistant outputs are either n>1 choices (keep the first) or, from streaming
    // instrumentations (BeeAI), one message per chunk; more than a handful means chunks.
    msgs = msgs.length > 4 ? [{ role: "assistant", content: msgs.map((m) => (typeof m.content === "string" ? m.content : "")).join("") }] : msgs.slice(0, 1);
  }
  return toMessages(msgs, { defaultRole: role });
}

/**
 * One `message.*` record as a chat message. Tool calls need no translation: a message that has
 * nothing but `message.tool_calls.*` has no text and drops out like any tool-call-only message.
 */
function oiMessage(r: Rec): { role: unknown; content: unknown } {
  const contents = collectIndexed(r, "message.contents").map((c) => {
    const type = str(c["message_content.type"]) ?? "text";
    return type === "text" ? { type, text: c["message_content.text"] } : { type };
  });
  return { role: r["message.role"], content: r["message.content"] ?? (contents.length > 0 ? contents : null) };
}

/** `llm.prompts`: completion-style prompts, as a list of strings or `llm.prompts.N.prompt.text`. */
function prompts(a: Rec): NormalizedMessage[] | null {
  const whole = maybeJson(a["llm.prompts"]);
  if (Array.isArray(whole)) return toMessages(whole.filter((p) => typeof p === "string").map((p) => ({ role: "user", content: p })));
  const recs = collectIndexed(a, "llm.prompts");
  if (recs.length === 0) return null;
  const texts = recs.map((r) => r[""] ?? r["prompt.text"]).filter((t): t is string => typeof t === "string");
  return toMessages(texts.map((t) => ({ role: "user", content: t })));
}

/** `input.value` / `output.value`: a message payload in JSON, or plain text. */
function valueMessages(v: unknown, role: "user" | "assistant"): NormalizedMessage[] | null {
  if (v === undefined || v === null) return null;
  const read = readMessages(v, { defaultRole: role });
  if (read !== null) return read;
  return typeof v === "string" ? toMessages(v, { defaultRole: role }) : null;
}
