/**
 * Format detection by structure, most specific container first: a Langfuse export and a
 * LangSmith batch have unmistakable top-level keys; span containers are then told apart by their
 * attribute conventions (any OpenInference key makes the event `openinference`); the bare
 * `{id, messages}` shape comes last because many payloads have a `messages` list.
 */
import { isLangfuseEvent } from "./formats/langfuse.ts";
import { isLangSmithBatch, isLangSmithRun } from "./formats/langsmith.ts";
import { isOpenAiEvent } from "./formats/openai.ts";
import { decodeAttributes } from "./attributes.ts";
import { isAttributeMap, looksLikeSpan, spanFlavor } from "./spans.ts";
import type { FormatName } from "./types.ts";
import { isRecord, type Rec } from "./util.ts";

export function detectFormat(event: unknown): FormatName | null {
  try {
    return detect(event);
  } catch {
    return null;
  }
}

function detect(event: unknown): FormatName | null {
  if (Array.isArray(event)) {
    if (event.length === 0) return null;
    if (event.every(looksLikeSpan)) return flavorOf(event.map((s) => attrsOf(s)));
    if (event.every(isLangSmithRun)) return "langsmith";
    return null;
  }
  if (!isRecord(event)) return null;
  // The container keys alone decide: a broken container should fail as that format's invalid
  // shape, naming what is wrong, rather than as an unknown format.
  if (isLangfuseEvent(event) || ("trace" in event && "observations" in event)) return "langfuse";
  if (isLangSmithBatch(event) || isLangSmithRun(event) || ("post" in event && "patch" in event)) return "langsmith";
  if ("resourceSpans" in event) return flavorOf(Array.isArray(event.resourceSpans) ? otlpAttributes(event.resourceSpans) : []);
  if ("resourceLogs" in event) return "otel-genai";
  if (Array.isArray(event.spans) && event.spans.every(isRecord)) return flavorOf(event.spans.map((s) => attrsOf(s)));
  if (looksLikeSpan(event) || (isRecord(event.attributes) && isAttributeMap(event.attributes))) return flavorOf([attrsOf(event)]);
  if (isOpenAiEvent(event)) return "openai";
  if (isAttributeMap(event)) return spanFlavor(event);
  return null;
}

/** Span containers with no GenAI attributes at all are still OTel: they just hold no conversation. */
function flavorOf(attrs: Rec[]): FormatName {
  return attrs.some((a) => spanFlavor(a) === "openinference") ? "openinference" : "otel-genai";
}

function attrsOf(span: unknown): Rec {
  if (!isRecord(span)) return {};
  const decoded = decodeAttributes(span.attributes);
  return typeof decoded === "string" ? {} : decoded;
}

function otlpAttributes(resourceSpans: unknown[]): Rec[] {
  const out: Rec[] = [];
  for (const rs of resourceSpans) {
    if (!isRecord(rs)) continue;
    const scopes = Array.isArray(rs.scopeSpans) ? rs.scopeSpans : Array.isArray(rs.instrumentationLibrarySpans) ? rs.instrumentationLibrarySpans : [];
    for (const ss of scopes) {
      if (!isRecord(ss) || !Array.isArray(ss.spans)) continue;
      for (const sp of ss.spans) out.push(attrsOf(sp));
    }
  }
  return out;
}
