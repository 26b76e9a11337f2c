/**
 * Span containers shared by `otel-genai` and `openinference`: OTLP JSON as the Collector's Kafka
 * exporter writes it (`otlp_json`: traces, and logs for event-based GenAI instrumentations), SDK span dumps (OTel JS ReadableSpan, Python `to_json`,
 * any-agent traces), a single span, or a bare attribute map. Everything becomes `Span`, and
 * spans become fragments here once a format has said which messages a span holds.
 */
import type { ConversationMetadata } from "@tracesift/schemas";
import { z } from "zod";
import { decodeAnyValue, decodeAttributes } from "./attributes.ts";
import { type AdapterCtx, type ModelCall, note, topLevelOnly } from "./agents.ts";
import { type FormatName, NormalizeError, type NormalizedMessage, type TraceFragment } from "./types.ts";
import { compact, hasEndFlag, idOf, isRecord, maxIso, minIso, type Rec, scalar, serviceName, shortHash, str, toIso } from "./util.ts";

export interface SpanEvent {
  name: string;
  time?: string;
  attributes: Rec;
}

export interface Span {
  traceId?: string;
  spanId?: string;
  parentId?: string;
  name?: string;
  start?: string;
  end?: string;
  attributes: Rec;
  events: SpanEvent[];
  resource: Rec;
  /** Where the span sits in the event, for error messages. */
  where: string;
}

export interface SpanMessages {
  input: NormalizedMessage[];
  output: NormalizedMessage[];
}

export interface ExtractCtx {
  format: FormatName;
  /** Strict reading throws on broken JSON attributes; Langfuse's copies are read leniently. */
  strict: boolean;
}

export type Extractor = (span: Span, ctx: ExtractCtx) => SpanMessages | null;

const AttrList = z.union([z.array(z.unknown()), z.record(z.string(), z.unknown())]);
const OtlpSpan = z.looseObject({
  traceId: z.string().optional(),
  spanId: z.string().optional(),
  name: z.string().optional(),
  attributes: z.array(z.unknown()).optional(),
  events: z.array(z.looseObject({ name: z.string().optional(), attributes: z.array(z.unknown()).optional() })).optional(),
});
const ScopeSpans = z.looseObject({ spans: z.array(OtlpSpan).optional() });
const ResourceSpans = z.looseObject({
  resource: z.looseObject({ attributes: z.array(z.unknown()).optional() }).optional(),
  scopeSpans: z.array(ScopeSpans).optional(),
  instrumentationLibrarySpans: z.array(ScopeSpans).optional(),
});
const Otlp = z.looseObject({ resourceSpans: z.array(ResourceSpans) });
const LogRecord = z.looseObject({
  traceId: z.string().optional(),
  spanId: z.string().optional(),
  eventName: z.string().optional(),
  attributes: z.array(z.unknown()).optional(),
});
const OtlpLogs = z.looseObject({
  resourceLogs: z.array(
    z.looseObject({
      resource: z.looseObject({ attributes: z.array(z.unknown()).optional() }).optional(),
      scopeLogs: z.array(z.looseObject({ logRecords: z.array(LogRecord).optional() })).optional(),
    }),
  ),
});
const GenericSpan = z.looseObject({
  name: z.string().optional(),
  attributes: AttrList.optional(),
  events: z.array(z.unknown()).optional(),
});

export function zodProblem(format: FormatName, error: z.ZodError): NormalizeError {
  const issue = error.issues[0];
  const path = issue?.path.length ? issue.path.join(".") : "(root)";
  return new NormalizeError("invalid_shape", `${format}: ${path}: ${issue?.message ?? "invalid"}`, format);
}

const SPAN_HINT_KEYS = ["spanContext", "context", "spanId", "span_id", "startTimeUnixNano", "start_time", "startTime", "traceId", "trace_id"];

export function looksLikeSpan(v: unknown): boolean {
  return isRecord(v) && (isRecord(v.attributes) || Array.isArray(v.attributes)) && SPAN_HINT_KEYS.some((k) => k in v);
}

export function isAttributeMap(v: unknown): v is Rec {
  return isRecord(v) && Object.keys(v).some((k) => /^(gen_ai\.|llm\.|openinference\.|ai\.prompt|ai\.response)/.test(k));
}

/** All spans of an event, or `null` if the event is no span container at all. */
export function readSpans(event: unknown, format: FormatName): Span[] | null {
  if (isRecord(event) && "resourceSpans" in event) return readOtlp(event, format);
  if (isRecord(event) && "resourceLogs" in event) return readOtlpLogs(event, format);
  if (isRecord(event) && Array.isArray(event.spans)) return event.spans.map((s, i) => readGenericSpan(s, `spans.${i}`, format));
  if (Array.isArray(event) && event.length > 0 && event.every(looksLikeSpan)) {
    return event.map((s, i) => readGenericSpan(s, String(i), format));
  }
  if (looksLikeSpan(event) || (isRecord(event) && isRecord(event.attributes) && !("observations" in event))) {
    return [readGenericSpan(event, "span", format)];
  }
  if (isAttributeMap(event)) return [{ attributes: event, events: [], resource: {}, where: "attributes" }];
  return null;
}

function readOtlp(event: Rec, format: FormatName): Span[] {
  const parsed = Otlp.safeParse(event);
  if (!parsed.success) throw zodProblem(format, parsed.error);
  const out: Span[] = [];
  for (const [ri, rs] of parsed.data.resourceSpans.entries()) {
    const resource = attrsOrThrow(rs.resource?.attributes, `resourceSpans.${ri}.resource`, format);
    const scopes = rs.scopeSpans ?? rs.instrumentationLibrarySpans ?? [];
    for (const [si, ss] of scopes.entries()) {
      for (const [pi, sp] of (ss.spans ?? []).entries()) {
        const where = `resourceSpans.${ri}.scopeSpans.${si}.spans.${pi}`;
        out.push({
          traceId: idOf(sp.traceId),
          spanId: idOf(sp.spanId),
          parentId: idOf(sp.parentSpanId),
          name: sp.name,
          start: toIso(sp.startTimeUnixNano),
          end: toIso(sp.endTimeUnixNano),
          attributes: attrsOrThrow(sp.attributes, where, format),
          events: (sp.events ?? []).map((ev, ei) => ({
            name: ev.name ?? "",
            time: toIso(ev.timeUnixNano),
            attributes: attrsOrThrow(ev.attributes, `${where}.events.${ei}`, format),
          })),
          resource,
          where,
        });
      }
    }
  }
  return out;
}

/**
 * Newer GenAI instrumentations emit the per-message events as log records (the Collector's logs
 * pipeline) rather than span events. Records of one span become that span's events again; the
 * event body (an AnyValue) is what a span event carries in its attributes.
 */
function readOtlpLogs(event: Rec, format: FormatName): Span[] {
  const parsed = OtlpLogs.safeParse(event);
  if (!parsed.success) throw zodProblem(format, parsed.error);
  const bySpan = new Map<string, Span>();
  for (const [ri, rl] of parsed.data.resourceLogs.entries()) {
    const resource = attrsOrThrow(rl.resource?.attributes, `resourceLogs.${ri}.resource`, format);
    for (const [si, sl] of (rl.scopeLogs ?? []).entries()) {
      for (const [li, rec] of (sl.logRecords ?? []).entries()) {
        const where = `resourceLogs.${ri}.scopeLogs.${si}.logRecords.${li}`;
        const attributes = attrsOrThrow(rec.attributes, where, format);
        const name = rec.eventName ?? str(attributes["event.name"]) ?? "";
        if (!name.startsWith("gen_ai.")) continue;
        const time = toIso(rec.timeUnixNano) ?? toIso(rec.observedTimeUnixNano);
        const traceId = idOf(rec.traceId);
        const spanId = idOf(rec.spanId);
        const key = `${traceId ?? ""}/${spanId ?? where}`;
        let span = bySpan.get(key);
        if (span === undefined) {
          span = { traceId, spanId, attributes: {}, events: [], resource, where };
          bySpan.set(key, span);
        }
        const body = decodeAnyValue(rec.body);
        span.events.push({ name, time, attributes: body === undefined ? attributes : { ...attributes, body } });
        span.start = minIso(span.start, time);
        span.end = maxIso(span.end, time);
        for (const k of ["gen_ai.conversation.id", "session.id", "gen_ai.request.model", "gen_ai.response.model"]) {
          if (attributes[k] !== undefined && span.attributes[k] === undefined) span.attributes[k] = attributes[k];
        }
      }
    }
  }
  return [...bySpan.values()];
}

function attrsOrThrow(attrs: unknown, where: string, format: FormatName): Rec {
  const decoded = decodeAttributes(attrs);
  if (typeof decoded === "string") throw new NormalizeError("invalid_shape", `${format}: ${where}: ${decoded}`, format);
  return decoded;
}

function readGenericSpan(raw: unknown, where: string, format: FormatName): Span {
  const parsed = GenericSpan.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = [where, ...(issue?.path ?? [])].join(".");
    throw new NormalizeError("invalid_shape", `${format}: ${path}: ${issue?.message ?? "not a span"}`, format);
  }
  const s = parsed.data;
  const ctx = isRecord(s.spanContext) ? s.spanContext : isRecord(s.context) ? s.context : {};
  const parent = isRecord(s.parentSpanContext) ? s.parentSpanContext : isRecord(s.parent) ? s.parent : {};
  const res = isRecord(s.resource) ? attrsOrThrow(s.resource.attributes, `${where}.resource`, format) : {};
  const events: SpanEvent[] = [];
  for (const [i, ev] of (s.events ?? []).entries()) {
    if (!isRecord(ev)) throw new NormalizeError("invalid_shape", `${format}: ${where}.events.${i}: not an object`, format);
    events.push({
      name: str(ev.name) ?? "",
      time: toIso(ev.timeUnixNano ?? ev.time ?? ev.timestamp),
      attributes: attrsOrThrow(ev.attributes, `${where}.events.${i}`, format),
    });
  }
  return {
    traceId: idOf(ctx.traceId ?? ctx.trace_id ?? s.traceId ?? s.trace_id),
    spanId: idOf(ctx.spanId ?? ctx.span_id ?? s.spanId ?? s.span_id),
    parentId: idOf(s.parentSpanId ?? s.parent_span_id ?? s.parent_id ?? parent.spanId ?? parent.span_id),
    name: s.name,
    start: toIso(s.startTimeUnixNano ?? s.start_time ?? s.startTime),
    end: toIso(s.endTimeUnixNano ?? s.end_time ?? s.endTime),
    attributes: attrsOrThrow(s.attributes, where, format),
    events,
    resource: res,
    where,
  };
}

/** Attribute keys that link spans into a conversation, most specific first. */
const CONVERSATION_KEYS = [
  "gen_ai.conversation.id",
  "session.id",
  "langfuse.session.id",
  "conversation.id",
  "thread.id",
  "ai.telemetry.metadata.conversationId",
  "ai.telemetry.metadata.conversation_id",
  "ai.telemetry.metadata.sessionId",
  "ai.telemetry.metadata.session_id",
  "ai.telemetry.metadata.threadId",
  "ai.telemetry.metadata.thread_id",
];

export function conversationIdOf(attrs: Rec): string | undefined {
  for (const k of CONVERSATION_KEYS) {
    const v = idOf(attrs[k]);
    if (v !== undefined) return v;
  }
  return undefined;
}

export function spanMetadata(resource: Rec, attrs: Rec): ConversationMetadata {
  const pick = (...keys: string[]) => {
    for (const k of keys) {
      const v = str(resource[k]) ?? str(attrs[k]);
      if (v !== undefined) return v;
    }
    return undefined;
  };
  const meta: Record<string, string | number | boolean | null | undefined> = {
    app: serviceName(resource["service.name"]) ?? serviceName(attrs["service.name"]),
    environment: pick("deployment.environment.name", "deployment.environment", "langfuse.environment"),
    project: pick("openinference.project.name", "langsmith.project", "project.name"),
    user_id: pick("user.id", "enduser.id", "langfuse.user.id", "ai.telemetry.metadata.userId"),
    model: pick("gen_ai.response.model", "gen_ai.request.model", "llm.model_name", "ai.model.id"),
  };
  // Vercel AI SDK: user-supplied telemetry metadata rides along under this prefix.
  for (const [k, v] of Object.entries(attrs)) {
    if (!k.startsWith("ai.telemetry.metadata.")) continue;
    const s = scalar(v);
    const key = k.slice("ai.telemetry.metadata.".length);
    if (s !== undefined && meta[key] === undefined) meta[key] = s;
  }
  return compact(meta);
}

/** GenAI operations that are a call to a model (any-agent writes `call_llm`). */
const MODEL_OPERATIONS = new Set(["chat", "text_completion", "generate_content", "completion", "responses", "call_llm"]);

export type SpanRole = { model: true } | { model: false; tool: boolean; reason: string };

/**
 * Only model calls speak: OpenInference span kind LLM, GenAI model operations. Chain, agent,
 * graph-node and tool spans carry framework state (node names, state dumps, Python reprs) in
 * their input and output, never a turn. A span that names neither convention is left to the
 * extractors (bare attribute maps, Vercel AI SDK spans).
 */
export function spanRole(a: Rec): SpanRole {
  const kind = str(a["openinference.span.kind"])?.toUpperCase();
  if (kind !== undefined && kind !== "LLM") return { model: false, tool: kind === "TOOL", reason: `not a model call (OpenInference span kind ${kind})` };
  const op = str(a["gen_ai.operation.name"]);
  if (kind === undefined && op !== undefined && !MODEL_OPERATIONS.has(op)) {
    return { model: false, tool: op === "execute_tool", reason: `not a model call (gen_ai.operation.name ${op})` };
  }
  if (a["ai.operationId"] === "ai.toolCall") return { model: false, tool: true, reason: "not a model call (Vercel AI SDK tool call)" };
  return { model: true };
}

/**
 * One fragment per span that holds an LLM exchange. Spans of one trace share the conversation id
 * that any of them carries (often only the agent span has `gen_ai.conversation.id`).
 */
export function spansToFragments(spans: Span[], format: FormatName, extractors: Extractor[], actx: AdapterCtx): TraceFragment[] {
  const convByTrace = new Map<string, string>();
  const byId = new Map<string, Span>();
  for (const s of spans) {
    const conv = conversationIdOf(s.attributes);
    if (conv !== undefined && s.traceId !== undefined && !convByTrace.has(s.traceId)) convByTrace.set(s.traceId, conv);
    if (s.spanId !== undefined) byId.set(s.spanId, s);
  }
  // Spans exported without any trace id (Mastra's test exporter) cannot be told apart by trace:
  // those delivered in one event are read as one trace rather than one conversation per span.
  const fragmentIdOf = (span: Span) => span.spanId ?? `span-${shortHash([span.name, span.start, span.attributes])}`;
  const untraced = spans.filter((s) => s.traceId === undefined).map(fragmentIdOf);
  const untracedKey = untraced.length > 1 ? `span-${shortHash(untraced)}` : undefined;
  const ctx: ExtractCtx = { format, strict: true };
  const calls: ModelCall[] = [];
  const out: TraceFragment[] = [];
  for (const span of spans) {
    const fragmentId = fragmentIdOf(span);
    const base = { id: fragmentId, ...(span.name !== undefined ? { name: span.name } : {}), ...(span.traceId !== undefined ? { trace_id: span.traceId } : {}) };
    const role = spanRole(span.attributes);
    let got: SpanMessages | null = null;
    if (role.model) {
      for (const ex of extractors) {
        got = ex(span, ctx);
        if (got !== null) break;
      }
    }
    const end = hasEndFlag(span.attributes, span.resource);
    const outTime = span.end ?? span.start;
    const output = (got?.output ?? []).map((m) => (m.timestamp !== undefined || outTime === undefined ? m : { ...m, timestamp: outTime }));
    const messages = [...(got?.input ?? []), ...output];
    if (messages.length === 0) {
      note(actx, { ...base, kept: false, reason: role.model ? "no human or assistant message in it" : role.reason });
      if (!end) continue;
    }
    const conversation =
      conversationIdOf(span.attributes) ?? (span.traceId !== undefined ? convByTrace.get(span.traceId) : undefined) ?? span.traceId ?? untracedKey ?? fragmentId;
    const fragment: TraceFragment = {
      source: format,
      conversation_key: conversation,
      fragment_id: fragmentId,
      ...(span.traceId !== undefined ? { trace_id: span.traceId } : {}),
      messages,
      ...(span.start !== undefined ? { started_at: span.start } : {}),
      ...(span.end !== undefined ? { ended_at: span.end } : {}),
      metadata: spanMetadata(span.resource, span.attributes),
      end,
    };
    if (messages.length === 0) {
      // Only the end marker: no turn to attribute to an agent.
      out.push(fragment);
      continue;
    }
    const underTool = toolAncestor(span, byId);
    calls.push({ fragment, ...(span.name !== undefined ? { name: span.name } : {}), ...(underTool !== undefined ? { underTool } : {}) });
  }
  return [...out, ...topLevelOnly(calls, actx)];
}

function toolAncestor(span: Span, byId: Map<string, Span>): string | undefined {
  let cur = span.parentId === undefined ? undefined : byId.get(span.parentId);
  for (let depth = 0; cur !== undefined && depth < 64; depth++) {
    const r = spanRole(cur.attributes);
    if (!r.model && r.tool) return cur.name ?? str(cur.attributes["gen_ai.tool.name"]) ?? "tool";
    cur = cur.parentId === undefined ? undefined : byId.get(cur.parentId);
  }
  return undefined;
}

/** Which span convention an attribute map follows; OpenInference wins when both are present. */
export function spanFlavor(attrs: Rec): "openinference" | "otel-genai" | null {
  let genai = false;
  for (const k of Object.keys(attrs)) {
    if (k === "openinference.span.kind" || k.startsWith("llm.input_messages") || k.startsWith("llm.output_messages")) return "openinference";
    if (k.startsWith("gen_ai.") || k.startsWith("ai.prompt") || k.startsWith("ai.response")) genai = true;
  }
  return genai ? "otel-genai" : null;
}
