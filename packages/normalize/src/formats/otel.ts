/** The `otel-genai` and `openinference` adapters: same containers, different attribute conventions. */
import type { AdapterCtx } from "../agents.ts";
import { type Extractor, readSpans, spansToFragments } from "../spans.ts";
import { NormalizeError, type TraceFragment } from "../types.ts";
import { genAiMessages } from "./otel-genai.ts";
import { openInferenceMessages } from "./openinference.ts";

/**
 * Spans are read with the event's convention first and the other as a fallback, because real
 * instrumentations mix them (Google ADK via OpenInference also sets `gen_ai.*`).
 */
export function normalizeSpanEvent(event: unknown, format: "otel-genai" | "openinference", ctx: AdapterCtx): TraceFragment[] {
  const spans = readSpans(event, format);
  if (spans === null) {
    throw new NormalizeError(
      "invalid_shape",
      `${format}: expected OTLP JSON {resourceSpans}, {spans: [...]}, a span with attributes, a list of spans or an attribute map`,
      format,
    );
  }
  const extractors: Extractor[] = format === "openinference" ? [openInferenceMessages, genAiMessages] : [genAiMessages, openInferenceMessages];
  return spansToFragments(spans, format, extractors, ctx);
}

/** For Langfuse: its observations keep the instrumentation's raw attributes in metadata. */
export const spanExtractors: Extractor[] = [openInferenceMessages, genAiMessages];
