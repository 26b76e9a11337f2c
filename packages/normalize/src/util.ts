import { createHash } from "node:crypto";
import type { ConversationMetadata } from "@tracesift/schemas";
import type { NormalizedMessage } from "./types.ts";

export type Rec = Record<string, unknown>;

export function isRecord(v: unknown): v is Rec {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function str(v: unknown): string | undefined {
  return typeof v === "string" && v.length > 0 ? v : undefined;
}

/**
 * Ids arrive as strings, numbers (any-agent writes 128-bit trace ids as JSON integers) or not at
 * all. Read from text with `parseJsonExact`, such integers are already digit strings; a number
 * that reaches here lost its digits before Tracesift saw it.
 */
export function idOf(v: unknown): string | undefined {
  if (typeof v === "string" && v.trim().length > 0) return v.trim();
  if (typeof v === "number" && Number.isFinite(v)) return Number.isSafeInteger(v) ? String(v) : v.toExponential(15);
  return undefined;
}

export function firstString(...values: unknown[]): string | undefined {
  for (const v of values) {
    const s = idOf(v);
    if (s !== undefined) return s;
  }
  return undefined;
}

/** Parse a string that looks like JSON; anything else (or broken JSON) comes back unchanged. */
export function maybeJson(v: unknown): unknown {
  if (typeof v !== "string") return v;
  const t = v.trim();
  if (!(t.startsWith("{") || t.startsWith("["))) return v;
  try {
    return JSON.parse(t);
  } catch {
    return v;
  }
}

const BIG_INT = /[:[,]\s*-?\d{16,}/;

/**
 * `JSON.parse`, except that integers too large for a double (trace and span ids written as JSON
 * numbers, nanosecond times) become strings of their exact digits, so unrelated ids cannot round
 * to the same value. The scan runs only when such a literal is present.
 */
export function parseJsonExact(text: string): unknown {
  if (!BIG_INT.test(text)) return JSON.parse(text);
  let out = "";
  let last = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 34) {
      inString = true;
      continue;
    }
    if (c !== 45 && (c < 48 || c > 57)) continue;
    const m = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y;
    m.lastIndex = i;
    const tok = m.exec(text)?.[0] ?? "";
    if (tok.length > 0 && m.lastIndex > i) {
      if (!tok.includes(".") && !/[eE]/.test(tok) && !Number.isSafeInteger(Number(tok))) {
        out += `${text.slice(last, i)}"${tok}"`;
        last = i + tok.length;
      }
      i += Math.max(tok.length - 1, 0);
    }
  }
  return JSON.parse(out + text.slice(last));
}

export type JsonResult = { ok: true; value: unknown } | { ok: false };

export function parseJson(text: string): JsonResult {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

const MIN_MS = Date.UTC(1990, 0, 1);
const MAX_MS = Date.UTC(2200, 0, 1);

function fromMs(ms: number): string | undefined {
  if (!Number.isFinite(ms) || ms < MIN_MS || ms > MAX_MS) return undefined;
  return new Date(ms).toISOString();
}

/** Epoch numbers in s, ms, µs or ns, told apart by magnitude (all post-1990 dates). */
function fromEpoch(n: number): string | undefined {
  if (n > 1e17) return fromMs(n / 1e6);
  if (n > 1e14) return fromMs(n / 1e3);
  if (n > 1e11) return fromMs(n);
  return fromMs(n * 1000);
}

/**
 * Any time representation seen in traces to ISO-8601 UTC: ISO strings (an offset-less one is UTC,
 * as LangSmith writes them), epoch numbers or digit strings (OTLP `*UnixNano`), OTel JS HrTime
 * `[seconds, nanos]`. Unparseable or implausible values are dropped rather than guessed.
 */
export function toIso(v: unknown): string | undefined {
  if (typeof v === "number") return fromEpoch(v);
  if (Array.isArray(v) && v.length === 2 && typeof v[0] === "number" && typeof v[1] === "number") {
    return fromMs(v[0] * 1000 + v[1] / 1e6);
  }
  if (typeof v !== "string") return undefined;
  const t = v.trim();
  if (/^\d{9,20}$/.test(t)) {
    // Keep ns precision out of float trouble: only the ms part matters here.
    const digits = t.length > 13 ? t.slice(0, t.length - 6) : t;
    return t.length > 13 ? fromMs(Number(digits)) : fromEpoch(Number(digits));
  }
  if (!/^\d{4}-\d{2}-\d{2}/.test(t)) return undefined;
  const hasOffset = /(Z|[+-]\d{2}:?\d{2})$/i.test(t);
  const withZone = hasOffset || !t.includes("T") ? t : `${t}Z`;
  return fromMs(Date.parse(withZone));
}

export function minIso(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a <= b ? a : b;
}

export function maxIso(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a >= b ? a : b;
}

export function shortHash(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/**
 * A content id (16 hex chars of SHA-256) for normalized messages and a short `extra` string, for
 * large conversations where `shortHash` would first serialize the whole payload to JSON: each field
 * is length-prefixed or space-free, so different inputs never hash the same text.
 */
export function messagesHash(messages: readonly NormalizedMessage[], extra: string): string {
  let text = `${extra.length}:${extra}`;
  for (const m of messages) text += `\n${m.role} ${m.timestamp ?? "-"} ${m.content.length}:${m.content}`;
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/** For error messages: enough of an id to find the span, not a wall of text. */
export function abbrev(id: string | undefined): string {
  if (id === undefined) return "(no id)";
  return id.length > 12 ? `${id.slice(0, 8)}…` : id;
}

const END_KEY = /(^|[._])conversation[._](end|ended)$/i;

/**
 * The end-of-conversation marker Tracesift supports: any key named `conversation_end`,
 * `conversation.end` or `conversation_ended` (possibly prefixed, e.g. `tracesift.conversation_end`,
 * `ai.telemetry.metadata.conversation_end`) whose value is `true` or `"true"`.
 */
export function hasEndFlag(...records: (Rec | undefined)[]): boolean {
  for (const r of records) {
    if (r === undefined) continue;
    for (const [k, v] of Object.entries(r)) {
      if (END_KEY.test(k) && (v === true || v === "true" || v === 1)) return true;
    }
  }
  return false;
}

type MetaValue = string | number | boolean | null;

export function scalar(v: unknown): MetaValue | undefined {
  if (typeof v === "string" || typeof v === "boolean" || v === null) return v;
  if (typeof v === "number" && Number.isFinite(v)) return v;
  return undefined;
}

/** Copy the scalar values of a free-form metadata object (the schema only takes scalars). */
export function scalarEntries(r: Rec | undefined, skip: ReadonlySet<string> = new Set()): ConversationMetadata {
  const out: ConversationMetadata = {};
  if (r === undefined) return out;
  for (const [k, v] of Object.entries(r)) {
    if (skip.has(k)) continue;
    const s = scalar(v);
    if (s !== undefined) out[k] = s;
  }
  return out;
}

/** Drop undefined values so metadata merges never overwrite a known label with nothing. */
export function compact(meta: Record<string, MetaValue | undefined>): ConversationMetadata {
  const out: ConversationMetadata = {};
  for (const [k, v] of Object.entries(meta)) if (v !== undefined) out[k] = v;
  return out;
}

/** `unknown_service` and friends are OTel SDK defaults, not an app name worth a dashboard label. */
export function serviceName(v: unknown): string | undefined {
  const s = str(v);
  return s === undefined || s.startsWith("unknown_service") ? undefined : s;
}
