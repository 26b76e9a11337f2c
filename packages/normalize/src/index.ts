/**
 * @tracesift/normalize: trace events from Kafka (one JSON event per message) to the judge's
 * Conversation. `normalizeEvent` reads one event into fragments, `mergeFragments` rebuilds a
 * conversation from all fragments with the same `conversation_key`.
 */
import type { AdapterCtx, SpanNote } from "./agents.ts";
import { detectFormat } from "./detect.ts";
import { normalizeLangfuse } from "./formats/langfuse.ts";
import { normalizeLangSmith } from "./formats/langsmith.ts";
import { normalizeOpenAi } from "./formats/openai.ts";
import { normalizeSpanEvent } from "./formats/otel.ts";
import { parseJsonExact } from "./util.ts";
import {
  DEFAULT_MAX_MESSAGES,
  type FormatName,
  markValidated,
  NormalizeError,
  type NormalizeOptions,
  TraceFragment,
} from "./types.ts";

export type { SpanNote, SubAgentMode } from "./agents.ts";
export { detectFormat } from "./detect.ts";
export { isJudgeable, mergeFragments, messageSources } from "./merge.ts";
export { parseJsonExact } from "./util.ts";
export { type ToMessagesOptions, toMessages } from "./messages.ts";
export {
  DEFAULT_MAX_MESSAGES,
  FORMAT_NAMES,
  FormatName,
  NormalizeError,
  type NormalizeErrorCode,
  type NormalizedMessage,
  type NormalizeOptions,
  TraceFragment,
} from "./types.ts";

const ADAPTERS: Record<FormatName, (event: unknown, ctx: AdapterCtx) => TraceFragment[]> = {
  openai: normalizeOpenAi,
  langsmith: normalizeLangSmith,
  "otel-genai": (e, ctx) => normalizeSpanEvent(e, "otel-genai", ctx),
  openinference: (e, ctx) => normalizeSpanEvent(e, "openinference", ctx),
  langfuse: normalizeLangfuse,
};

/**
 * One event (parsed JSON, or its raw text/bytes) to the fragments it holds: usually one, none for
 * an OTel batch without LLM spans, several for a batch spanning traces. Throws `NormalizeError`
 * (and nothing else) when the event cannot be read.
 */
export function normalizeEvent(event: unknown, opts: NormalizeOptions = {}): TraceFragment[] {
  return read(event, opts, { notes: undefined, subAgents: opts.subAgents ?? "skip" });
}

/**
 * `normalizeEvent` plus what became of each span / run / observation: kept (a model call of the
 * conversation) or dropped, and why. For `tracesift normalize --explain`.
 */
export function explainEvent(event: unknown, opts: NormalizeOptions = {}): { fragments: TraceFragment[]; spans: SpanNote[] } {
  const spans: SpanNote[] = [];
  const fragments = read(event, opts, { notes: spans, subAgents: opts.subAgents ?? "skip" });
  return { fragments, spans };
}

function read(event: unknown, opts: NormalizeOptions, ctx: AdapterCtx): TraceFragment[] {
  const value = decode(event);
  const format = opts.format ?? detectFormat(value);
  if (format === null) {
    throw new NormalizeError("unknown_format", `unknown event format: ${describe(value)}`);
  }
  let fragments: TraceFragment[];
  try {
    fragments = ADAPTERS[format](value, ctx);
  } catch (err) {
    if (err instanceof NormalizeError) throw err;
    // A bug or a shape no rule foresaw: still a typed, dead-letterable error, never a raw TypeError.
    const reason = err instanceof Error ? err.message : String(err);
    throw new NormalizeError("invalid_shape", `${format}: could not read event (${reason})`, format);
  }
  const max = opts.maxMessages ?? DEFAULT_MAX_MESSAGES;
  const total = fragments.reduce((n, f) => n + f.messages.length, 0);
  if (total > max) {
    throw new NormalizeError("oversized", `${format}: event holds ${total} messages, more than the limit of ${max}`, format);
  }
  return fragments.map((f) => {
    const parsed = TraceFragment.safeParse(f);
    if (parsed.success) return markValidated(parsed.data);
    const issue = parsed.error.issues[0];
    throw new NormalizeError("invalid_shape", `${format}: fragment ${f.fragment_id}: ${issue?.path.join(".") ?? ""} ${issue?.message ?? ""}`.trim(), format);
  });
}

function decode(event: unknown): unknown {
  let text: string | undefined;
  if (typeof event === "string") text = event;
  else if (event instanceof Uint8Array) text = new TextDecoder("utf-8", { fatal: false }).decode(event);
  if (text === undefined) return event;
  try {
    return parseJsonExact(text);
  } catch {
    throw new NormalizeError("invalid_json", "event is not valid JSON");
  }
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `array of ${v.length}`;
  if (typeof v !== "object") return typeof v;
  const keys = Object.keys(v).slice(0, 6);
  return keys.length === 0 ? "empty object" : `object with keys ${keys.join(", ")}`;
}
