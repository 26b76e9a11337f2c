/**
 * Rebuilding a conversation from its fragments. Each LLM call's input usually repeats the history
 * before it, so fragments overlap heavily; some frameworks (stateful APIs, sliding windows) send
 * only part of it. Fragments are aligned one by one against the history built so far with a
 * longest-common-subsequence match on (role, normalized text): shared messages appear
 * once, new ones are inserted where they fall between shared ones, and the result is the longest
 * history consistent with every fragment.
 */
import { Conversation, type Message } from "@tracesift/schemas";
import { isValidated, NormalizeError, type TraceFragment } from "./types.ts";
import { maxIso, minIso } from "./util.ts";

/** Above this many cells the O(n·m) alignment gives way to a linear "append what is new". */
const MAX_ALIGN_CELLS = 4_000_000;

export function mergeFragments(fragments: TraceFragment[]): Conversation {
  const first = fragments[0];
  if (first === undefined) throw new NormalizeError("invalid_shape", "mergeFragments: no fragments to merge");
  const keys = new Set(fragments.map((f) => f.conversation_key));
  if (keys.size > 1) {
    throw new NormalizeError("invalid_shape", `mergeFragments: fragments of different conversations (${[...keys].slice(0, 3).join(", ")})`);
  }

  const ordered = orderFragments(dedupe(fragments));
  let history: Message[] = [];
  let started: string | undefined;
  let updated: string | undefined;
  let metadata: Conversation["metadata"] = {};
  for (const f of ordered) {
    history = align(history, f.messages);
    started = minIso(started, minIso(f.started_at, f.ended_at));
    updated = maxIso(updated, maxIso(f.started_at, f.ended_at));
    for (const m of f.messages) {
      started = minIso(started, m.timestamp);
      updated = maxIso(updated, m.timestamp);
    }
    metadata = { ...metadata, ...f.metadata };
  }
  const conversation: Conversation = {
    id: first.conversation_key,
    source: ordered[0]?.source ?? first.source,
    messages: history,
    ...(started !== undefined ? { started_at: started } : {}),
    ...(updated !== undefined ? { updated_at: updated } : {}),
    metadata,
  };
  // One fragment as parsing returned it (a whole-conversation event) is already a valid
  // conversation, with its metadata keys in schema order: parsing again would only copy it.
  return fragments.length === 1 && isValidated(first) ? conversation : Conversation.parse(conversation);
}

/**
 * For each message of the merged conversation, the fragment (span / run / observation id) it was
 * first read from, in merge order: what `tracesift normalize --explain` shows.
 */
export function messageSources(fragments: TraceFragment[], conversation: Pick<Conversation, "messages">): string[] {
  const ordered = orderFragments(dedupe(fragments));
  const firstSeen = new Map<string, string[]>();
  for (const f of ordered) {
    const counts = new Map<string, number>();
    for (const m of f.messages) {
      const k = keyOf(m);
      const n = (counts.get(k) ?? 0) + 1;
      counts.set(k, n);
      const seen = firstSeen.get(k) ?? [];
      // The n-th copy of a repeated text within one fragment is a different message.
      if (seen.length < n) seen.push(f.fragment_id);
      firstSeen.set(k, seen);
    }
  }
  const used = new Map<string, number>();
  return conversation.messages.map((m) => {
    const k = keyOf(m);
    const i = used.get(k) ?? 0;
    used.set(k, i + 1);
    const seen = firstSeen.get(k) ?? [];
    return seen[Math.min(i, seen.length - 1)] ?? "?";
  });
}

/** True iff a user speaks after the assistant did: only then can a user perceive an error. */
export function isJudgeable(conversation: Pick<Conversation, "messages">): boolean {
  let assistantSpoke = false;
  for (const m of conversation.messages) {
    if (m.role === "assistant") assistantSpoke = true;
    else if (m.role === "user" && assistantSpoke) return true;
  }
  return false;
}

/** A redelivered or re-exported fragment replaces its earlier copy unless the copy knew more. */
function dedupe(fragments: TraceFragment[]): { f: TraceFragment; index: number }[] {
  const byId = new Map<string, { f: TraceFragment; index: number }>();
  fragments.forEach((f, index) => {
    const prev = byId.get(f.fragment_id);
    if (prev === undefined) byId.set(f.fragment_id, { f, index });
    else if (f.messages.length >= prev.f.messages.length) byId.set(f.fragment_id, { f, index: prev.index });
  });
  return [...byId.values()].sort((a, b) => a.index - b.index);
}

/**
 * By time, then by arrival. A fragment without any time takes its predecessor's, so undated
 * fragments keep their arrival order relative to their neighbours.
 */
function orderFragments(items: { f: TraceFragment; index: number }[]): TraceFragment[] {
  let carry = "";
  const keyed = items.map(({ f, index }) => {
    const own = f.started_at ?? f.ended_at ?? f.messages.reduce<string | undefined>((t, m) => minIso(t, m.timestamp), undefined);
    if (own !== undefined) carry = own;
    return { f, index, time: own ?? carry };
  });
  keyed.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.index - b.index));
  return keyed.map((k) => k.f);
}

/**
 * Frameworks re-serialize history between calls (LlamaIndex turns `{"a": 1}` into `{'a': 1}`,
 * SDKs trim or re-wrap whitespace), so messages match on their letters and digits only, falling
 * back to the trimmed text for messages with none (emoji, punctuation).
 */
function keyOf(m: Message): string {
  const letters = m.content.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "");
  return `${m.role}\u0000${letters.length > 0 ? letters : m.content.replace(/\s+/g, " ").trim()}`;
}

function align(base: Message[], next: Message[]): Message[] {
  if (base.length === 0) return next.slice();
  if (next.length === 0) return base;
  const n = base.length;
  const m = next.length;
  const ka = base.map(keyOf);
  const kb = next.map(keyOf);
  if ((n + 1) * (m + 1) > MAX_ALIGN_CELLS) {
    const seen = new Set(ka);
    return [...base, ...next.filter((_, j) => !seen.has(kb[j] ?? ""))];
  }
  // dp[i][j] = LCS length of base[i..] and next[j..]
  const w = m + 1;
  const dp = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      dp[i * w + j] = ka[i] === kb[j] ? (dp[(i + 1) * w + j + 1] ?? 0) + 1 : Math.max(dp[(i + 1) * w + j] ?? 0, dp[i * w + j + 1] ?? 0);
    }
  }
  const out: Message[] = [];
  let gapA: Message[] = [];
  let gapB: Message[] = [];
  const flush = () => {
    out.push(...interleave(gapA, gapB));
    gapA = [];
    gapB = [];
  };
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    const a = base[i] as Message;
    const b = next[j] as Message;
    if (ka[i] === kb[j]) {
      flush();
      out.push(combine(a, b));
      i++;
      j++;
    } else if ((dp[(i + 1) * w + j] ?? 0) >= (dp[i * w + j + 1] ?? 0)) {
      gapA.push(a);
      i++;
    } else {
      gapB.push(b);
      j++;
    }
  }
  gapA.push(...base.slice(i));
  gapB.push(...next.slice(j));
  flush();
  return out;
}

/**
 * Messages only one side has, between the same two shared messages: by time when every one of
 * them is dated, else the history's first (the new fragment is later, so its news comes after).
 */
function interleave(a: Message[], b: Message[]): Message[] {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const all = [...a, ...b];
  if (!all.every((m) => m.timestamp !== undefined)) return all;
  return all
    .map((m, idx) => ({ m, idx }))
    .sort((x, y) => {
      const tx = x.m.timestamp ?? "";
      const ty = y.m.timestamp ?? "";
      return tx < ty ? -1 : tx > ty ? 1 : x.idx - y.idx;
    })
    .map((x) => x.m);
}

/** The same message seen twice keeps its first wording and its earliest known time. */
function combine(a: Message, b: Message): Message {
  const ts = minIso(a.timestamp, b.timestamp);
  return ts === undefined ? { role: a.role, content: a.content } : { role: a.role, content: a.content, timestamp: ts };
}
