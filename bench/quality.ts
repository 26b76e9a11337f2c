/**
 * What trustworthy verdicts cost and give, in process (no Kafka, no Redis):
 * - asking for logprobs: latency and response bytes per call, with and without (simulator, latency 0);
 * - on the labelled sample (simulated judge, and the simulated dissenting panel model as the
 *   escalation target): ECE, the uncertain band's share and accuracy, accuracy if escalated;
 * - OTLP export: evaluation events per second through the OpenTelemetry SDK to a local sink;
 * - canary scoring: microseconds per scored verdict with a full rolling window.
 *
 *   node_modules/.bin/tsx bench/quality.ts [--calls 400] [--band 0.5-0.8]
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { createSimulator } from "@tracesift/fireworks-sim";
import { createJudgeClient } from "@tracesift/judge";
import type { JudgedResult } from "@tracesift/schemas";
import { calibrationOf, escalationOf, RollingCanaryScore, readDatasetFiles, type ScoredVerdict, UncertainBand } from "../packages/evaluation/src/index.ts";
import { startSimPanel } from "../packages/evaluation/src/sim-panel.ts";
import { createEvaluationExporter } from "../packages/otel-eval/src/index.ts";

const { values } = parseArgs({ options: { calls: { type: "string", default: "400" }, band: { type: "string", default: "0.5-0.8" } } });
const calls = Number(values.calls);
const band = UncertainBand.parse(values.band);
const ROOT = resolve(import.meta.dirname, "..");
const figures: [string, string][] = [];

// 1. The price of asking for logprobs.
const sim = createSimulator({ latencyMs: 0 });
const { url } = await sim.listen(0, "127.0.0.1");
const [sample] = readDatasetFiles([join(ROOT, "services/cli/samples/eval/sample.jsonl")]);
const items = sample!.dataset.items.filter((i) => i.label && i.judgeable);
let bytes = 0;
const counting: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  const body = await res.arrayBuffer();
  bytes += body.byteLength;
  return new Response(body, { status: res.status, headers: res.headers });
};
for (const logprobs of [false, true]) {
  const client = createJudgeClient({ baseURL: url, apiKey: "k", model: "m", timeoutMs: 10_000, maxTokens: 256, responseFormat: "json_schema", logprobs, fetch: counting });
  for (let i = 0; i < 50; i++) await client.judge(items[i % items.length]!.conversation); // warm-up
  bytes = 0;
  const started = performance.now();
  for (let i = 0; i < calls; i++) await client.judge(items[i % items.length]!.conversation);
  const ms = performance.now() - started;
  figures.push([`logprobs ${logprobs ? "on " : "off"}: ms per call (sequential, instant model)`, (ms / calls).toFixed(3)]);
  figures.push([`logprobs ${logprobs ? "on " : "off"}: response bytes per call`, (bytes / calls).toFixed(0)]);
}
await sim.close();

// 2. Calibration and escalation on the sample: the honest simulated judge, escalated to the dissenting one.
const panel = await startSimPanel({ latencyMs: 0 });
const judgeWith = (model: string) => createJudgeClient({ baseURL: panel.url, apiKey: "k", model, timeoutMs: 10_000, maxTokens: 256, responseFormat: "json_schema", logprobs: true });
const first: ScoredVerdict[] = [];
const second = new Map<string, boolean>();
for (const item of items) {
  const a = await judgeWith("sim-judge-a").judge(item.conversation);
  const b = await judgeWith("sim-judge-b").judge(item.conversation);
  const conf = a.verdict.confidence;
  first.push({ conversation_id: item.conversation.id, label: item.label!.perceived_error, predicted: a.verdict.perceived_error, ...(conf === undefined ? {} : { confidence: conf }) });
  second.set(item.conversation.id, b.verdict.perceived_error);
}
await panel.close();
const cal = calibrationOf(first);
const esc = escalationOf(first, band, [{ judge: "sim-judge-b", verdicts: second }]);
const pct = (x: number | null) => (x === null ? "–" : `${(x * 100).toFixed(1)}%`);
figures.push(["sample: verdicts with confidence", `${cal.n} / ${first.length}`]);
figures.push(["sample: ECE (10 bins)", cal.ece === null ? "–" : cal.ece.toFixed(3)]);
figures.push([`sample: in band ${band.low}-${band.high}`, `${esc.in_band} (${pct(esc.in_band_share)})`]);
figures.push(["sample: accuracy / in band / outside", `${pct(esc.accuracy)} / ${pct(esc.accuracy_in_band)} / ${pct(esc.accuracy_outside_band)}`]);
figures.push(["sample: accuracy if in-band reviewed / escalated to sim-judge-b", `${pct(esc.accuracy_if_reviewed)} / ${pct(esc.accuracy_if_escalated_to[0]?.accuracy ?? null)}`]);

// 3. OTLP export throughput to a local sink.
let received = 0;
let requests = 0;
const sink = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    requests++;
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { resourceLogs: { scopeLogs: { logRecords: unknown[] }[] }[] };
    for (const r of body.resourceLogs) for (const s of r.scopeLogs) received += s.logRecords.length;
    res.writeHead(200).end("{}");
  });
});
await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
const exporter = createEvaluationExporter({ url: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/v1/logs` });
const result = (i: number): JudgedResult => ({
  schema_version: 1,
  result_id: `r${i}`,
  status: "judged",
  conversation_id: "4bf92f3577b34da6a3ce929d0e0e4736",
  conversation_version: { message_count: 3, content_hash: "h" },
  metadata: { tracesift_canary: "bench", tracesift_canary_label: String(i % 3 === 0) },
  source: { topic: "traces", partition: 0, offset: String(i) },
  priority: "live",
  verdict: { perceived_error: i % 4 === 0, reason: "The user corrects the assistant.", confidence: 0.9 },
  judge: { model: "m", prompt_version: "p" },
  usage: { prompt_tokens: 1, cached_prompt_tokens: 0, completion_tokens: 1, total_tokens: 2 },
  cost_usd: 0,
  latency_ms: 1,
  attempts: 1,
  judged_at: new Date().toISOString(),
});
const N = 20_000;
// In chunks well under the batch queue: beyond it the SDK drops events.
let started = performance.now();
for (let i = 0; i < N; i += 1_000) {
  for (let j = i; j < i + 1_000; j++) exporter.emit(result(j));
  await exporter.forceFlush();
}
figures.push(["OTLP: delivered evaluation events/s (chunks of 1,000, flushed)", ((received / (performance.now() - started)) * 1000).toFixed(0)]);
figures.push(["OTLP: events delivered / emitted, export requests", `${received} / ${N}, ${requests}`]);
received = 0;
for (let i = 0; i < 5_000; i++) exporter.emit(result(i));
await exporter.forceFlush();
figures.push(["OTLP: delivered of a 5,000-event burst (queue 20,000)", String(received)]);
await exporter.shutdown();
sink.close();

// 4. Canary scoring cost.
const score = new RollingCanaryScore(3600_000, 1_000);
started = performance.now();
for (let i = 0; i < N; i++) {
  score.add(result(i));
  if (i % 10 === 0) score.scores();
}
figures.push(["canary: µs per scored verdict (window 1000, scores every 10)", (((performance.now() - started) * 1000) / N).toFixed(1)]);

const width = Math.max(...figures.map(([k]) => k.length));
for (const [k, v] of figures) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
