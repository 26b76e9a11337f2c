/**
 * LangSmith runs: a single run, a list of runs, or a run upload batch `{post: [run], patch: [run]}`
 * (the SDKs post a run when it starts and patch it with outputs when it ends; the JS SDK's patch
 * has no `id`, only `dotted_order`). LLM runs carry the exchange; other runs count only when they
 * hold a `messages` list (LangGraph state). Threads link through `extra.metadata.session_id`,
 * `thread_id` or `conversation_id`, as in LangSmith's own thread view.
 */
import type { ConversationMetadata } from "@tracesift/schemas";
import { z } from "zod";
import { readMessages } from "../messages.ts";
import { type AdapterCtx, type ModelCall, note, topLevelOnly } from "../agents.ts";
import { zodProblem } from "../spans.ts";
import { NormalizeError, type NormalizedMessage, type TraceFragment } from "../types.ts";
import { compact, firstString, hasEndFlag, idOf, isRecord, type Rec, scalarEntries, str, toIso } from "../util.ts";

const Time = z.union([z.string(), z.number()]).nullish();
const Run = z.looseObject({
  id: z.string().nullish(),
  trace_id: z.string().nullish(),
  dotted_order: z.string().nullish(),
  run_type: z.string().nullish(),
  start_time: Time,
  end_time: Time,
  session_name: z.string().nullish(),
  extra: z.looseObject({ metadata: z.record(z.string(), z.unknown()).nullish() }).nullish(),
});
type Run = z.infer<typeof Run>;
const Batch = z.looseObject({ post: z.array(Run).nullish(), patch: z.array(Run).nullish() });

const THREAD_KEYS = ["session_id", "thread_id", "conversation_id"];

export function isLangSmithRun(v: unknown): boolean {
  return isRecord(v) && (typeof v.run_type === "string" || (("inputs" in v || "outputs" in v) && (typeof v.dotted_order === "string" || typeof v.trace_id === "string")));
}

export function isLangSmithBatch(v: unknown): boolean {
  if (!isRecord(v) || !(Array.isArray(v.post) || Array.isArray(v.patch))) return false;
  const runs = [...(Array.isArray(v.post) ? v.post : []), ...(Array.isArray(v.patch) ? v.patch : [])];
  return runs.length === 0 || runs.some(isLangSmithRun) || runs.some((r) => isRecord(r) && "dotted_order" in r);
}

export function normalizeLangSmith(event: unknown, ctx: AdapterCtx): TraceFragment[] {
  const runs = mergeRuns(readRuns(event));
  const threadByTrace = new Map<string, string>();
  for (const r of runs) {
    const thread = threadOf(r);
    const trace = idOf(r.trace_id);
    if (thread !== undefined && trace !== undefined && !threadByTrace.has(trace)) threadByTrace.set(trace, thread);
  }
  const byId = new Map(runs.map((r) => [r.id, r]));
  const out: TraceFragment[] = [];
  const calls: ModelCall[] = [];
  for (const run of runs) {
    const base = { id: run.id, ...(str(run.name) ? { name: String(run.name) } : {}), ...(idOf(run.trace_id) ? { trace_id: String(idOf(run.trace_id)) } : {}) };
    const runType = str(run.run_type)?.toLowerCase();
    const fragment = runFragment(run, threadByTrace);
    if (runType !== undefined && runType !== "llm") {
      note(ctx, { ...base, kept: false, reason: `not a model call (LangSmith ${runType} run)` });
      // A graph run may still carry the end-of-conversation marker.
      if (fragment?.end) out.push({ ...fragment, messages: [] });
      continue;
    }
    if (fragment === null || fragment.messages.length === 0) {
      note(ctx, { ...base, kept: false, reason: "no human or assistant message in it" });
      if (fragment?.end) out.push(fragment);
      continue;
    }
    const underTool = toolAncestor(run, byId);
    calls.push({ fragment, ...(base.name !== undefined ? { name: base.name } : {}), ...(underTool !== undefined ? { underTool } : {}) });
  }
  return [...out, ...topLevelOnly(calls, ctx)];
}

function toolAncestor(run: Run, byId: Map<string, Run & { id: string }>): string | undefined {
  const parentOf = (r: Run) => idOf(r.parent_run_id) ?? r.dotted_order?.split(".").slice(-2, -1)[0]?.replace(/^.*Z/, "");
  let pid = parentOf(run);
  for (let depth = 0; pid !== undefined && depth < 64; depth++) {
    const cur = byId.get(pid);
    if (cur === undefined) return undefined;
    if (str(cur.run_type)?.toLowerCase() === "tool") return str(cur.name) ?? "tool";
    pid = parentOf(cur);
  }
  return undefined;
}

function readRuns(event: unknown): Run[] {
  if (isRecord(event) && (Array.isArray(event.post) || Array.isArray(event.patch))) {
    const batch = Batch.safeParse(event);
    if (!batch.success) throw zodProblem("langsmith", batch.error);
    return [...(batch.data.post ?? []), ...(batch.data.patch ?? [])];
  }
  const list = Array.isArray(event) ? event : [event];
  const parsed = z.array(Run).safeParse(list);
  if (!parsed.success) throw zodProblem("langsmith", parsed.error);
  return parsed.data;
}

/** The run id; a JS SDK patch only has it as the last `dotted_order` segment (`<time>Z<id>`). */
function runId(r: Run, i: number): string {
  const id = str(r.id);
  if (id !== undefined) return id;
  const last = r.dotted_order?.split(".").pop();
  const m = last === undefined ? null : /Z([0-9a-fA-F-]{32,36})$/.exec(last);
  if (m?.[1] !== undefined) return m[1];
  throw new NormalizeError("invalid_shape", `langsmith: run ${i} has neither id nor dotted_order`, "langsmith");
}

/** Post then patch of one run id fold into one run; the patch's values win, metadata merges. */
function mergeRuns(runs: Run[]): (Run & { id: string })[] {
  const byId = new Map<string, Run & { id: string }>();
  runs.forEach((r, i) => {
    const id = runId(r, i);
    const prev = byId.get(id);
    if (prev === undefined) {
      byId.set(id, { ...r, id });
      return;
    }
    const merged: Rec = { ...prev };
    for (const [k, v] of Object.entries(r)) if (v !== undefined && v !== null) merged[k] = v;
    const metadata = { ...(prev.extra?.metadata ?? {}), ...(r.extra?.metadata ?? {}) };
    merged.extra = { ...(prev.extra ?? {}), ...(r.extra ?? {}), metadata };
    // A Python patch sends `outputs` but not `inputs`; a post sends `outputs: {}`.
    if (isEmpty(r.inputs)) merged.inputs = prev.inputs;
    if (isEmpty(r.outputs)) merged.outputs = prev.outputs ?? r.outputs;
    byId.set(id, { ...(merged as Run), id });
  });
  return [...byId.values()];
}

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || (isRecord(v) && Object.keys(v).length === 0);
}

function threadOf(r: Run): string | undefined {
  const md = r.extra?.metadata ?? {};
  return firstString(...THREAD_KEYS.map((k) => md[k]));
}

function runFragment(run: Run & { id: string }, threadByTrace: Map<string, string>): TraceFragment | null {
  const runType = str(run.run_type)?.toLowerCase();
  const inputs = run.inputs;
  const outputs = run.outputs;
  const started = toIso(run.start_time);
  const ended = toIso(run.end_time);
  let input: NormalizedMessage[] | null;
  let output: NormalizedMessage[] | null;
  if (runType === "llm" || runType === undefined) {
    input = isEmpty(inputs) ? null : readMessages(inputs, { defaultRole: "user" });
    output = isEmpty(outputs) ? null : readMessages(outputs, { defaultRole: "assistant" });
  } else {
    input = isRecord(inputs) && inputs.messages !== undefined ? readMessages({ messages: inputs.messages }) : null;
    output = isRecord(outputs) && outputs.messages !== undefined ? readMessages({ messages: outputs.messages }) : null;
  }
  const md = run.extra?.metadata ?? undefined;
  const end = hasEndFlag(md ?? undefined, run);
  if (input === null && output === null && !end) return null;
  const outTime = ended ?? started;
  const fresh = afterOverlap(input ?? [], output ?? []);
  const messages = [...(input ?? []), ...fresh.map((m) => (m.timestamp !== undefined || outTime === undefined ? m : { ...m, timestamp: outTime }))];
  const trace = idOf(run.trace_id);
  const key = threadOf(run) ?? (trace !== undefined ? threadByTrace.get(trace) : undefined) ?? trace ?? run.id;
  return {
    source: "langsmith",
    conversation_key: key,
    fragment_id: run.id,
    ...(trace !== undefined ? { trace_id: trace } : {}),
    messages,
    ...(started !== undefined ? { started_at: started } : {}),
    ...(ended !== undefined ? { ended_at: ended } : {}),
    metadata: runMetadata(run, md ?? undefined),
    end,
  };
}

/** Graph/chain runs output the whole state, input included: only what follows it is new. */
function afterOverlap(input: NormalizedMessage[], output: NormalizedMessage[]): NormalizedMessage[] {
  const same = (x: NormalizedMessage | undefined, y: NormalizedMessage | undefined) => x !== undefined && y !== undefined && x.role === y.role && x.content === y.content;
  for (let k = Math.min(input.length, output.length); k > 0; k--) {
    let match = true;
    for (let i = 0; i < k && match; i++) match = same(input[input.length - k + i], output[i]);
    if (match) return output.slice(k);
  }
  return output;
}

function runMetadata(run: Run, md: Rec | undefined): ConversationMetadata {
  const skip = new Set([...THREAD_KEYS, "app", "project", "environment"]);
  const extra = scalarEntries(md, skip);
  for (const k of Object.keys(extra)) if (k.startsWith("ls_")) delete extra[k];
  return {
    ...extra,
    ...compact({
      app: str(md?.app) ?? str(md?.app_name),
      project: str(run.session_name) ?? str(md?.project),
      environment: str(md?.environment) ?? str(md?.env),
      model: str(md?.ls_model_name),
    }),
  };
}
