import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { JudgedResult } from "@tracesift/schemas";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEvaluationExporter, EVALUATION_EVENT, OtelEvalEnv, sourceTraceOf } from "./index.ts";
import { type AnyValue, ExportLogsServiceRequest } from "./otlp-schema.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";

function result(id: string, over: Partial<JudgedResult> = {}): JudgedResult {
  return {
    schema_version: 1,
    result_id: `${id}:3:abc:model:pe-v1`,
    status: "judged",
    conversation_id: id,
    conversation_version: { message_count: 3, content_hash: "abc" },
    metadata: {},
    source: { topic: "traces", partition: 0, offset: "1" },
    priority: "live",
    verdict: { perceived_error: true, reason: "The user corrects the day.", confidence: 0.8 },
    judge: { model: "accounts/fireworks/models/qwen3p5-35b-a3b", prompt_version: "pe-v1" },
    usage: { prompt_tokens: 1, cached_prompt_tokens: 0, completion_tokens: 1, total_tokens: 2 },
    cost_usd: 0,
    latency_ms: 1,
    attempts: 1,
    judged_at: "2026-11-28T10:00:00.000Z",
    ...over,
  };
}

const bodies: { path: string; contentType: string; json: unknown }[] = [];
let server: Server;
let url = "";
beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      bodies.push({ path: req.url ?? "", contentType: String(req.headers["content-type"]), json: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/logs`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const attr = (attrs: { key: string; value?: AnyValue }[] | undefined, key: string) => attrs?.find((a) => a.key === key)?.value;

describe("verdicts as OTLP GenAI evaluation events", () => {
  it("exports gen_ai.evaluation.result linked to the source trace, in a payload the OTLP schema accepts", async () => {
    const exporter = createEvaluationExporter({ url, headers: { authorization: "Bearer x" }, serviceName: "judge-test" });
    exporter.emit(result("conv-a", { metadata: { trace_id: TRACE.toUpperCase(), span_id: SPAN, app: "cal" } }));
    exporter.emit(result(TRACE, { verdict: { perceived_error: false, reason: "No sign of a problem.", confidence: 0.9 } }));
    exporter.emit(result("conv-c", { verdict: { perceived_error: false, reason: "Fine." } }));
    await exporter.forceFlush();
    await exporter.shutdown();

    expect(bodies).toHaveLength(1);
    expect(bodies[0]!.path).toBe("/v1/logs");
    expect(bodies[0]!.contentType).toContain("application/json");
    const payload = ExportLogsServiceRequest.parse(bodies[0]!.json);
    const resource = payload.resourceLogs[0]!;
    expect(attr(resource.resource?.attributes, "service.name")).toEqual({ stringValue: "judge-test" });
    const records = resource.scopeLogs[0]!.logRecords;
    expect(records).toHaveLength(3);
    const [a, b, c] = [records[0]!, records[1], records[2]];
    expect(a.eventName).toBe(EVALUATION_EVENT);
    expect(a.traceId).toBe(TRACE);
    expect(a.spanId).toBe(SPAN);
    expect(a.timeUnixNano).toBe(String(Date.parse("2026-11-28T10:00:00.000Z") * 1e6));
    expect(attr(a.attributes, "gen_ai.evaluation.name")).toEqual({ stringValue: "perceived_error" });
    expect(attr(a.attributes, "gen_ai.evaluation.score.label")).toEqual({ stringValue: "perceived_error" });
    expect(attr(a.attributes, "gen_ai.evaluation.score.value")).toEqual({ doubleValue: 0.8 });
    expect(attr(a.attributes, "gen_ai.evaluation.explanation")).toEqual({ stringValue: "The user corrects the day." });
    // Trace id only (the conversation is keyed by its trace): linked to the trace, no span.
    expect(b?.traceId).toBe(TRACE);
    expect(b?.spanId ?? "").toBe("");
    expect((attr(b?.attributes, "gen_ai.evaluation.score.value") as { doubleValue: number }).doubleValue).toBeCloseTo(0.1, 9);
    // No trace known: exported unlinked; no confidence, so a label and no score.
    expect(c?.traceId ?? "").toBe("");
    expect(attr(c?.attributes, "gen_ai.evaluation.score.label")).toEqual({ stringValue: "no_error" });
    expect(attr(c?.attributes, "gen_ai.evaluation.score.value")).toBeUndefined();
  });

  it("rejects what the OTLP schema does not define", () => {
    const bad = { resourceLogs: [{ scopeLogs: [{ logRecords: [{ trace_id: TRACE }] }] }] };
    expect(ExportLogsServiceRequest.safeParse(bad).success).toBe(false);
    expect(ExportLogsServiceRequest.safeParse({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ traceId: "AAECAw==" }] }] }] }).success).toBe(false);
  });

  it("finds no trace where there is none, and reads its settings", () => {
    expect(sourceTraceOf({ conversation_id: "conv-1", metadata: {} })).toBeUndefined();
    expect(sourceTraceOf({ conversation_id: "0".repeat(32), metadata: {} })).toBeUndefined();
    expect(OtelEvalEnv.parse({ OTLP_EVALUATIONS_ENDPOINT: "http://c:4318/v1/logs", OTLP_EVALUATIONS_HEADERS: "authorization=Basic a=b, x-k=v" })).toEqual({
      OTLP_EVALUATIONS_ENDPOINT: "http://c:4318/v1/logs",
      OTLP_EVALUATIONS_HEADERS: { authorization: "Basic a=b", "x-k": "v" },
    });
  });
});
