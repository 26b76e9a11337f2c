/**
 * Verdicts on the trace: each judged result becomes an OpenTelemetry GenAI evaluation event
 * (`gen_ai.evaluation.result`) linked to the conversation's source trace, exported over OTLP/HTTP
 * (JSON) by the official OpenTelemetry SDK, so trace tools that read OTLP show the verdict beside
 * the trace. The 0.2xx SDK line is used: its 3.x successor requires Node ≥ 22.15, the fleet runs 20.
 */
import { type Context, ROOT_CONTEXT, TraceFlags, trace } from "@opentelemetry/api";
import type { AnyValueMap } from "@opentelemetry/api-logs";
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordProcessor, type SdkLogRecord } from "@opentelemetry/sdk-logs";
import type { JudgedResult } from "@tracesift/schemas";
import { z } from "zod";

export const EVALUATION_EVENT = "gen_ai.evaluation.result";
export const EVALUATION_NAME = "perceived_error";

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;

/** Settings read once at start-up (`OTLP_EVALUATIONS_*`); unset endpoint = no export. */
export const OtelEvalEnv = z.object({
  /** Full OTLP/HTTP logs URL, e.g. `http://collector:4318/v1/logs`. */
  OTLP_EVALUATIONS_ENDPOINT: z.url().optional(),
  /** `key=value,…` headers (auth for Langfuse, Phoenix, Datadog…); never logged. */
  OTLP_EVALUATIONS_HEADERS: z
    .string()
    .optional()
    .transform((s) =>
      Object.fromEntries(
        (s ?? "")
          .split(",")
          .map((kv) => kv.trim())
          .filter(Boolean)
          .map((kv) => [kv.slice(0, kv.indexOf("=")).trim(), kv.slice(kv.indexOf("=") + 1).trim()]),
      ),
    ),
});
export type OtelEvalEnv = z.output<typeof OtelEvalEnv>;

/**
 * The trace a conversation came from: a `trace_id` (and `span_id`) the trace carried in its
 * metadata, else the conversation id itself when it is a trace id (OTel traces without a
 * `gen_ai.conversation.id` are keyed by their trace). Undefined when there is none: the event is
 * then exported unlinked rather than linked to an invented trace.
 */
export function sourceTraceOf(result: Pick<JudgedResult, "conversation_id" | "metadata">): { traceId: string; spanId?: string } | undefined {
  const m = result.metadata;
  const pick = (...keys: string[]) => keys.map((k) => m[k]).find((v): v is string => typeof v === "string");
  const traceId = (pick("trace_id", "traceId", "otel.trace_id") ?? result.conversation_id).toLowerCase();
  if (!TRACE_ID.test(traceId) || /^0+$/.test(traceId)) return undefined;
  const spanId = pick("span_id", "spanId", "otel.span_id")?.toLowerCase();
  return spanId !== undefined && SPAN_ID.test(spanId) && !/^0+$/.test(spanId) ? { traceId, spanId } : { traceId };
}

/**
 * The event's attributes, per the GenAI semantic conventions: the label is the verdict; the score
 * is the probability of a perceived error, only when the judge returned a confidence.
 */
export function evaluationAttributes(result: JudgedResult): AnyValueMap {
  const v = result.verdict;
  return {
    "gen_ai.evaluation.name": EVALUATION_NAME,
    "gen_ai.evaluation.score.label": v.perceived_error ? "perceived_error" : "no_error",
    ...(v.confidence === undefined ? {} : { "gen_ai.evaluation.score.value": v.perceived_error ? v.confidence : 1 - v.confidence }),
    "gen_ai.evaluation.explanation": v.reason,
    "gen_ai.request.model": result.judge.model,
    "gen_ai.conversation.id": result.conversation_id,
    "tracesift.result_id": result.result_id,
    "tracesift.prompt_version": result.judge.prompt_version,
    ...(v.confidence === undefined ? {} : { "tracesift.confidence": v.confidence }),
    ...(v.second_opinion ? { "tracesift.second_opinion.perceived_error": v.second_opinion.perceived_error, "tracesift.second_opinion.judge": v.second_opinion.judge } : {}),
  };
}

export type EvaluationExporter = {
  emit(result: JudgedResult): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
};

/**
 * A logs pipeline of its own (not the global one): the judge worker exports nothing else over OTLP.
 * A trace id without a span id cannot ride on a context (the API wants both valid), so a small
 * processor sets the record's span context from the event being emitted, synchronously.
 */
export function createEvaluationExporter(options: {
  url: string;
  headers?: Record<string, string>;
  serviceName?: string;
  /** Test seam: replaces the batching OTLP processor. */
  processor?: LogRecordProcessor;
}): EvaluationExporter {
  let link: { traceId: string; spanId?: string } | undefined;
  const linker: LogRecordProcessor = {
    onEmit(record: SdkLogRecord) {
      if (link) record.spanContext = { traceId: link.traceId, spanId: link.spanId ?? "", traceFlags: TraceFlags.SAMPLED, isRemote: true };
    },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
  const exporter = new OTLPLogExporter({ url: options.url, headers: options.headers ?? {} });
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ "service.name": options.serviceName ?? "tracesift-judge" }),
    // Past its queue the SDK drops events (a 5,000-event burst delivered 2,560 with the default 2,048);
    // a backfill finishing many verdicts at once needs more room. Kafka stays the record of truth.
    processors: [linker, options.processor ?? new BatchLogRecordProcessor({ exporter, maxQueueSize: 20_000, maxExportBatchSize: 512 })],
  });
  const logger = provider.getLogger("tracesift.evaluation");
  return {
    emit(result) {
      link = sourceTraceOf(result);
      const context: Context = link?.spanId
        ? trace.setSpanContext(ROOT_CONTEXT, { traceId: link.traceId, spanId: link.spanId, traceFlags: TraceFlags.SAMPLED, isRemote: true })
        : ROOT_CONTEXT;
      try {
        logger.emit({ eventName: EVALUATION_EVENT, attributes: evaluationAttributes(result), timestamp: new Date(result.judged_at), context });
      } finally {
        link = undefined;
      }
    },
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
