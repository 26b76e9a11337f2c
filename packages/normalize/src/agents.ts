/**
 * Which model calls speak in the conversation the human had, and a record of every span that
 * does not, for `tracesift normalize --explain`.
 *
 * Sub-agents: a nested agent's model calls (under a tool span, or with a system prompt other than
 * the top-level agent's under the same trace) are the program talking to a model, not the human.
 * They are skipped with their own reason, or become their own conversation when asked.
 */
import type { TraceFragment } from "./types.ts";
import { shortHash } from "./util.ts";

/** What happened to one span / run / observation of an event. */
export interface SpanNote {
  id: string;
  name?: string;
  trace_id?: string;
  /** Became a fragment (possibly of a separate sub-agent conversation). */
  kept: boolean;
  /** Why it was dropped, or for a kept sub-agent call, why it is a separate conversation. */
  reason?: string;
}

export type SubAgentMode = "skip" | "separate";

export interface AdapterCtx {
  notes: SpanNote[] | undefined;
  subAgents: SubAgentMode;
}

export function note(ctx: AdapterCtx, n: SpanNote): void {
  ctx.notes?.push(n);
}

/** A model call found in an event, before the top-level-agent rule. */
export interface ModelCall {
  fragment: TraceFragment;
  name?: string;
  /** Name of the tool span this call runs under, if any (an agent used as a tool). */
  underTool?: string;
}

function systemOf(f: TraceFragment): string | undefined {
  const s = f.messages.find((m) => m.role === "system");
  return s === undefined ? undefined : s.content.trim();
}

/**
 * Per trace, the top-level agent is the one whose system prompt the first model call outside any
 * tool carries. Calls with another system prompt, or under a tool, are a sub-agent's.
 */
export function topLevelOnly(calls: ModelCall[], ctx: AdapterCtx): TraceFragment[] {
  const primary = new Map<string, string | null>();
  const ordered = calls
    .map((c, i) => ({ c, i }))
    .sort((a, b) => {
      const x = a.c.fragment.started_at ?? "";
      const y = b.c.fragment.started_at ?? "";
      return x < y ? -1 : x > y ? 1 : a.i - b.i;
    });
  for (const { c } of ordered) {
    const trace = c.fragment.trace_id ?? c.fragment.conversation_key;
    if (!primary.has(trace) && c.underTool === undefined) primary.set(trace, systemOf(c.fragment) ?? null);
  }
  const out: TraceFragment[] = [];
  for (const c of calls) {
    const f = c.fragment;
    const trace = f.trace_id ?? f.conversation_key;
    const top = primary.get(trace) ?? null;
    const sys = systemOf(f);
    let reason: string | undefined;
    if (c.underTool !== undefined) reason = `sub-agent: model call under tool "${c.underTool}"`;
    else if (top !== null && sys !== undefined && sys !== top) reason = "sub-agent: system prompt differs from the top-level agent's";
    const base = { id: f.fragment_id, ...(c.name !== undefined ? { name: c.name } : {}), ...(f.trace_id !== undefined ? { trace_id: f.trace_id } : {}) };
    if (reason === undefined) {
      out.push(f);
      note(ctx, { ...base, kept: true });
    } else if (ctx.subAgents === "separate") {
      const agent = shortHash(sys ?? c.underTool ?? "");
      out.push({ ...f, conversation_key: `${f.conversation_key}/sub-agent:${agent}` });
      note(ctx, { ...base, kept: true, reason: `${reason} (judged as its own conversation)` });
    } else note(ctx, { ...base, kept: false, reason });
  }
  return out;
}
