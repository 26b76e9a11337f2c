/**
 * Langfuse trace exports: `{trace, observations}` (the public API's trace with its observations,
 * as the fixtures and Langfuse's own tests have them), a trace object with an inline
 * `observations` list, or an ingestion batch `{batch: [{type: "trace-create" | "generation-create"
 * | ..., body}]}`.
 *
 * Each GENERATION is a fragment: its input plus its output. A trace's conversation is normally
 * the last generation's input plus its output, and merging the fragments gives exactly that while
 * also keeping turns a stateful API (Responses `previous_response_id`) left out of later inputs.
 * Langfuse stores input/output/metadata as JSON strings; when the input is not a message payload
 * (agno's Python reprs, LlamaIndex `{args}`), the instrumentation's raw span attributes in
 * `metadata.attributes` are read instead.
 */
import type { ConversationMetadata } from "@tracesift/schemas";
import { z } from "zod";
import { readMessages, toMessages } from "../messages.ts";
import { type AdapterCtx, type ModelCall, note, topLevelOnly } from "../agents.ts";
import { type Span, type SpanMessages, spanRole, zodProblem } from "../spans.ts";
import type { NormalizedMessage, TraceFragment } from "../types.ts";
import { compact, firstString, hasEndFlag, isRecord, maybeJson, type Rec, scalarEntries, serviceName, str, toIso } from "../util.ts";
import { spanExtractors } from "./otel.ts";
import { withSystem } from "./otel-genai.ts";

const Observation = z.looseObject({
  id: z.string().min(1),
  type: z.string().nullish(),
  name: z.string().nullish(),
  parentObservationId: z.string().nullish(),
  startTime: z.string().nullish(),
  endTime: z.string().nullish(),
  model: z.string().nullish(),
});
type Observation = z.infer<typeof Observation>;
const Trace = z.looseObject({
  id: z.string().min(1),
  sessionId: z.string().nullish(),
  environment: z.string().nullish(),
  projectId: z.string().nullish(),
  userId: z.string().nullish(),
  name: z.string().nullish(),
});
type Trace = z.infer<typeof Trace>;
const Export = z.looseObject({ trace: Trace, observations: z.array(Observation) });
const InlineExport = Trace.extend({ observations: z.array(Observation) });
const Batch = z.looseObject({
  batch: z.array(z.looseObject({ type: z.string(), body: z.looseObject({ id: z.string().min(1).optional() }) })),
});

const THREAD_KEYS = ["session_id", "sessionId", "thread_id", "conversation_id"];

export function isLangfuseEvent(v: unknown): boolean {
  if (!isRecord(v)) return false;
  if (isRecord(v.trace) && Array.isArray(v.observations)) return true;
  if (typeof v.id === "string" && Array.isArray(v.observations) && v.observations.some(isRecord)) return true;
  return Array.isArray(v.batch) && v.batch.some((e) => isRecord(e) && typeof e.type === "string" && /^(trace|generation|span|event|observation)-/.test(e.type));
}

export function normalizeLangfuse(event: unknown, ctx: AdapterCtx): TraceFragment[] {
  const { trace, observations } = readExport(event);
  const traceMeta = asRecord(trace.metadata);
  const obs = observations
    .map((o) => ({ ...o, metadata: asRecord(o.metadata) }))
    .sort((a, b) => cmp(a.startTime, b.startTime) || cmp(a.endTime, b.endTime));
  const conversation =
    str(trace.sessionId) ??
    firstString(...THREAD_KEYS.map((k) => traceMeta[k])) ??
    firstString(...obs.flatMap((o) => THREAD_KEYS.map((k) => o.metadata[k]))) ??
    trace.id;
  const meta = traceMetadata(trace, traceMeta, obs);
  const end = hasEndFlag(traceMeta, asRecord(traceMeta.attributes));

  const byId = new Map(obs.map((o) => [o.id, o]));
  const calls: ModelCall[] = [];
  for (const o of obs) {
    const base = { id: o.id, ...(o.name ? { name: o.name } : {}), trace_id: trace.id };
    const type = String(o.type ?? "").toUpperCase();
    if (type !== "GENERATION") {
      note(ctx, { ...base, kept: false, reason: `not a model call (Langfuse ${type || "untyped"} observation)` });
      continue;
    }
    const role = spanRole(asRecord(o.metadata.attributes));
    if (!role.model) {
      note(ctx, { ...base, kept: false, reason: role.reason });
      continue;
    }
    const messages = generationMessages(o);
    if (messages === null || messages.length === 0) {
      note(ctx, { ...base, kept: false, reason: messages === null ? "empty generation (no input, no output)" : "no human or assistant message in it" });
      continue;
    }
    const started = toIso(o.startTime);
    const ended = toIso(o.endTime);
    const underTool = toolAncestor(o, byId);
    const fragment: TraceFragment = {
      source: "langfuse",
      conversation_key: conversation,
      fragment_id: o.id,
      trace_id: trace.id,
      messages,
      ...(started !== undefined ? { started_at: started } : {}),
      ...(ended !== undefined ? { ended_at: ended } : {}),
      metadata: { ...meta, ...compact({ model: str(o.model) }) },
      end,
    };
    calls.push({ fragment, ...(o.name ? { name: o.name } : {}), ...(underTool !== undefined ? { underTool } : {}) });
  }
  const out = topLevelOnly(calls, ctx);
  if (calls.length === 0) {
    // No generation (Langfuse SDK used by hand, or only spans): the trace's own input/output.
    const input = trace.input === undefined || trace.input === null ? [] : (readMessages(trace.input, { defaultRole: "user" }) ?? []);
    const output = trace.output === undefined || trace.output === null ? [] : (readMessages(trace.output, { defaultRole: "assistant" }) ?? []);
    const ts = toIso(trace.timestamp);
    if (input.length + output.length > 0 || end) {
      out.push({
        source: "langfuse",
        conversation_key: conversation,
        fragment_id: trace.id,
        trace_id: trace.id,
        messages: [...input, ...output],
        ...(ts !== undefined ? { started_at: ts } : {}),
        metadata: meta,
        end,
      });
      note(ctx, { id: trace.id, ...(trace.name ? { name: trace.name } : {}), trace_id: trace.id, kept: true, reason: "no generation in the trace: its own input and output" });
    }
  }
  return out;
}

function toolAncestor(o: Observation, byId: Map<string, Observation & { metadata: Rec }>): string | undefined {
  let cur = o.parentObservationId ? byId.get(o.parentObservationId) : undefined;
  for (let depth = 0; cur !== undefined && depth < 64; depth++) {
    const role = spanRole(asRecord(cur.metadata.attributes));
    if (String(cur.type ?? "").toUpperCase() === "TOOL" || (!role.model && role.tool)) return cur.name ?? "tool";
    cur = cur.parentObservationId ? byId.get(cur.parentObservationId) : undefined;
  }
  return undefined;
}

function readExport(event: unknown): { trace: Trace; observations: Observation[] } {
  if (isRecord(event) && Array.isArray(event.batch)) return readBatch(event);
  if (isRecord(event) && "trace" in event) {
    const parsed = Export.safeParse(event);
    if (!parsed.success) throw zodProblem("langfuse", parsed.error);
    return parsed.data;
  }
  const parsed = InlineExport.safeParse(event);
  if (!parsed.success) throw zodProblem("langfuse", parsed.error);
  return { trace: parsed.data, observations: parsed.data.observations };
}

/** Ingestion events: creates and updates of one id fold together, in the order they were sent. */
function readBatch(event: Rec): { trace: Trace; observations: Observation[] } {
  const parsed = Batch.safeParse(event);
  if (!parsed.success) throw zodProblem("langfuse", parsed.error);
  let trace: Rec | undefined;
  const byId = new Map<string, Rec>();
  for (const e of parsed.data.batch) {
    const [kind, op] = e.type.split("-");
    if (kind === "trace") {
      trace = { ...(trace ?? {}), ...e.body };
      continue;
    }
    if (op !== "create" && op !== "update") continue;
    const id = e.body.id;
    if (id === undefined) continue;
    const type = kind === "generation" ? "GENERATION" : kind === "span" ? "SPAN" : kind === "event" ? "EVENT" : e.body.type;
    byId.set(id, { ...(byId.get(id) ?? {}), ...e.body, type });
    if (trace === undefined && typeof e.body.traceId === "string") trace = { id: e.body.traceId };
  }
  const t = Trace.safeParse(trace ?? {});
  if (!t.success) throw zodProblem("langfuse", t.error);
  const obs = z.array(Observation).safeParse([...byId.values()]);
  if (!obs.success) throw zodProblem("langfuse", obs.error);
  return { trace: t.data, observations: obs.data };
}

function generationMessages(o: Observation & { metadata: Rec }): NormalizedMessage[] | null {
  const hasInput = o.input !== undefined && o.input !== null;
  const hasOutput = o.output !== undefined && o.output !== null;
  // Streaming instrumentations log start/finish events as generations with nothing in them.
  if (!hasInput && !hasOutput) return null;
  let fromAttrs: SpanMessages | null | undefined;
  const attrs = asRecord(o.metadata.attributes);
  const attributeMessages = (): SpanMessages | null => {
    if (fromAttrs === undefined) fromAttrs = readAttributes(o.id, attrs);
    return fromAttrs;
  };
  let input: NormalizedMessage[] = [];
  if (hasInput) input = readMessages(o.input, { defaultRole: "user" }) ?? attributeMessages()?.input ?? [];
  let output: NormalizedMessage[] = [];
  if (hasOutput) output = readMessages(o.output, { defaultRole: "assistant" }) ?? attributeMessages()?.output ?? toMessages(o.output, { defaultRole: "assistant" });
  const system = attrs["gen_ai.system_instructions"] !== undefined ? toMessages(maybeJson(attrs["gen_ai.system_instructions"]), { defaultRole: "system" }) : [];
  input = withSystem(
    system.map((m) => ({ ...m, role: "system" as const })),
    input,
  );
  const ended = toIso(o.endTime) ?? toIso(o.startTime);
  return [...input, ...output.map((m) => (m.timestamp !== undefined || ended === undefined ? m : { ...m, timestamp: ended }))];
}

function readAttributes(id: string, attrs: Rec): SpanMessages | null {
  if (Object.keys(attrs).length === 0) return null;
  const span: Span = { spanId: id, attributes: attrs, events: [], resource: {}, where: `observation ${id}` };
  for (const ex of spanExtractors) {
    const got = ex(span, { format: "langfuse", strict: false });
    if (got !== null) return got;
  }
  return null;
}

function traceMetadata(trace: Trace, traceMeta: Rec, obs: { metadata: Rec }[]): ConversationMetadata {
  const resources = [traceMeta, ...obs.map((o) => o.metadata)].map((m) => asRecord(m.resourceAttributes));
  const app = resources.map((r) => serviceName(r["service.name"])).find((s) => s !== undefined);
  return {
    ...scalarEntries(traceMeta, new Set(THREAD_KEYS)),
    ...compact({
      app,
      project: str(trace.projectId),
      environment: str(trace.environment),
      user_id: str(trace.userId),
      trace_name: str(trace.name),
    }),
  };
}

function asRecord(v: unknown): Rec {
  const parsed = maybeJson(v);
  return isRecord(parsed) ? parsed : {};
}

function cmp(a: string | null | undefined, b: string | null | undefined): number {
  const x = toIso(a);
  const y = toIso(b);
  if (x === y) return 0;
  if (x === undefined) return 1;
  if (y === undefined) return -1;
  return x < y ? -1 : 1;
}
