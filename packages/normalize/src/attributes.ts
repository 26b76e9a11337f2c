/** OTel attribute plumbing shared by the span-based formats (OTLP JSON values, indexed keys). */
import { isRecord, type Rec } from "./util.ts";

/**
 * An OTLP JSON AnyValue to a plain value. int64 arrives as a decimal string; it stays a string
 * when it does not fit a double exactly, since these are ids and counters, not maths.
 */
export function decodeAnyValue(v: unknown, depth = 0): unknown {
  if (!isRecord(v) || depth > 32) return v;
  if ("stringValue" in v) return v.stringValue;
  if ("boolValue" in v) return v.boolValue;
  if ("intValue" in v) {
    const n = typeof v.intValue === "string" ? Number(v.intValue) : v.intValue;
    return typeof n === "number" && Number.isSafeInteger(n) ? n : v.intValue;
  }
  if ("doubleValue" in v) return typeof v.doubleValue === "string" ? Number(v.doubleValue) : v.doubleValue;
  if ("arrayValue" in v) {
    const values = isRecord(v.arrayValue) && Array.isArray(v.arrayValue.values) ? v.arrayValue.values : [];
    return values.map((x) => decodeAnyValue(x, depth + 1));
  }
  if ("kvlistValue" in v) {
    const values = isRecord(v.kvlistValue) && Array.isArray(v.kvlistValue.values) ? v.kvlistValue.values : [];
    const out: Rec = {};
    for (const kv of values) if (isRecord(kv) && typeof kv.key === "string") out[kv.key] = decodeAnyValue(kv.value, depth + 1);
    return out;
  }
  if ("bytesValue" in v) return v.bytesValue;
  return undefined;
}

/** Attributes as OTLP writes them (`[{key, value}]`) or as SDK JSON dumps do (a plain map). */
export function decodeAttributes(attrs: unknown): Rec | string {
  if (attrs === undefined || attrs === null) return {};
  if (Array.isArray(attrs)) {
    const out: Rec = {};
    for (const [i, kv] of attrs.entries()) {
      if (!isRecord(kv) || typeof kv.key !== "string") return `attributes[${i}] is not a {key, value} pair`;
      out[kv.key] = decodeAnyValue(kv.value);
    }
    return out;
  }
  if (isRecord(attrs)) return attrs;
  return "attributes is neither a list of {key, value} pairs nor a map";
}

/**
 * Flatten nested values to dotted keys, so OpenInference's "logical JSON" form
 * (`llm.input_messages: [{"message.role": …}]`) reads exactly like its flattened form
 * (`llm.input_messages.0.message.role`).
 */
export function flatten(attrs: Rec, prefixes: readonly string[]): Rec {
  const out: Rec = {};
  const walk = (key: string, v: unknown, depth: number) => {
    if (depth < 12 && Array.isArray(v)) {
      for (const [i, x] of v.entries()) walk(`${key}.${i}`, x, depth + 1);
    } else if (depth < 12 && isRecord(v)) for (const [k, x] of Object.entries(v)) walk(`${key}.${k}`, x, depth + 1);
    else out[key] = v;
  };
  for (const [k, v] of Object.entries(attrs)) {
    if (prefixes.some((p) => k === p) && (Array.isArray(v) || isRecord(v))) walk(k, v, 0);
    else out[k] = v;
  }
  return out;
}

/** `prefix.N.rest` keys grouped by N (in index order, gaps skipped) as `{rest: value}` records. */
export function collectIndexed(attrs: Rec, prefix: string): Rec[] {
  const byIndex = new Map<number, Rec>();
  const head = `${prefix}.`;
  for (const [k, v] of Object.entries(attrs)) {
    if (!k.startsWith(head)) continue;
    const rest = k.slice(head.length);
    const dot = rest.indexOf(".");
    const idx = Number(dot === -1 ? rest : rest.slice(0, dot));
    if (!Number.isInteger(idx) || idx < 0) continue;
    let rec = byIndex.get(idx);
    if (rec === undefined) {
      rec = {};
      byIndex.set(idx, rec);
    }
    rec[dot === -1 ? "" : rest.slice(dot + 1)] = v;
  }
  return [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
}

export function hasPrefix(attrs: Rec, prefix: string): boolean {
  for (const k of Object.keys(attrs)) if (k === prefix || k.startsWith(`${prefix}.`)) return true;
  return false;
}
