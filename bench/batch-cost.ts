/**
 * What a backfill costs through the Batch API against live calls, for the same conversations and
 * the same simulated model: live cost, batch cost, their ratio, cached share and verdict agreement.
 * The simulator runs in-process; no Kafka or Redis. `--n` conversations (default 500) of
 * `--turns` user/assistant pairs (default 3).
 */
import { parseArgs } from "node:util";
import { batchCostUsd, batchPrice, FireworksBatchApi, readOutputFiles, splitRequests, requestLine, TERMINAL_STATES } from "@tracesift/batch";
import { createSimulator } from "@tracesift/fireworks-sim";
import { callCostUsd, createJudgeClient, DEFAULT_PRICES, PROMPT_VERSION, type TokenPrice } from "@tracesift/judge";
import { conversationVersion, type JudgeJob } from "@tracesift/schemas";

const { values } = parseArgs({ options: { n: { type: "string", default: "500" }, turns: { type: "string", default: "3" } } });
const n = Number(values.n);
const pairs = Number(values.turns);
const model = "accounts/fireworks/models/qwen3p5-35b-a3b";
const live = DEFAULT_PRICES[model] as TokenPrice;
const batch = batchPrice(live, live);

const sim = createSimulator({ latencyMs: 0 });
const { url } = await sim.listen(0);
const jobs: JudgeJob[] = [...Array(n)].map((_, i) => {
  const messages = [...Array(pairs)].flatMap((_, t) => [
    { role: "user" as const, content: `Request ${i}.${t}: please summarise item ${i * 7 + t} of the report.` },
    { role: "assistant" as const, content: `Here is the summary of item ${i * 7 + t}: ${"details ".repeat(20 + (i % 30))}` },
  ]);
  messages.push({ role: "user", content: i % 5 === 0 ? "No, that's wrong, I asked for the other item." : "Thanks, that helps." });
  const conversation = { id: `conv-${i}`, source: "openai", metadata: {}, messages };
  return { conversation, version: conversationVersion(conversation), source: { topic: "bench", partition: 0, offset: String(i) }, priority: "backfill", enqueued_at: new Date().toISOString() };
});

const client = createJudgeClient({ baseURL: url, apiKey: "bench", model, timeoutMs: 10_000, maxTokens: 256, responseFormat: "json_schema" });
let liveUsd = 0;
const liveVerdicts = new Map<string, boolean>();
for (const j of jobs) {
  const call = await client.judge(j.conversation);
  liveUsd += callCostUsd(call.usage, call.latencyMs, live);
  liveVerdicts.set(j.conversation.id, call.verdict.perceived_error);
}

const api = new FireworksBatchApi({ baseUrl: new URL(url).origin, accountId: "bench", apiKey: "bench" });
const judge = { model, prompt_version: PROMPT_VERSION };
const lines = jobs.map((j) => requestLine(j, judge, { maxTokens: 256, responseFormat: "json_schema" }));
let batchUsd = 0;
let prompt = 0;
let cached = 0;
let agree = 0;
const files = splitRequests(lines, { maxBytes: 100 * 1024 * 1024, maxLines: 200 });
for (const [i, file] of files.entries()) {
  await api.createDataset(`bench-${i}-in`, file.length);
  await api.uploadDataset(`bench-${i}-in`, "requests.jsonl", file.map((l) => `${l.line}\n`).join(""));
  await api.createJob(`bench-${i}`, { model, inputDatasetId: `bench-${i}-in`, outputDatasetId: `bench-${i}-out`, maxTokens: 256 });
  while (!TERMINAL_STATES.has((await api.getJob(`bench-${i}`)).state));
  const outcomes = readOutputFiles(await api.downloadDataset(`bench-${i}-out`));
  for (const [k, o] of outcomes) {
    if (o.kind !== "verdict") continue;
    batchUsd += batchCostUsd(o.usage, batch);
    prompt += o.usage.prompt_tokens;
    cached += o.usage.cached_prompt_tokens;
    if (liveVerdicts.get(k.split(":")[0]!) === o.verdict.perceived_error) agree++;
  }
}
await sim.close();
const figures = {
  conversations: n,
  batch_files: files.length,
  live_cost_usd: Number(liveUsd.toFixed(6)),
  batch_cost_usd: Number(batchUsd.toFixed(6)),
  batch_over_live: Number((batchUsd / liveUsd).toFixed(4)),
  cached_prompt_share: Number((cached / prompt).toFixed(4)),
  verdicts_equal_to_live: `${agree}/${n}`,
};
for (const [k, v] of Object.entries(figures)) process.stdout.write(`${k.padEnd(24)} ${v}\n`);
