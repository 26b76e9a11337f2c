/**
 * `tracesift label`: labels conversations with model panels. A first panel judges each one; if it
 * is unanimous that is the label, else arbiter models decide from the conversation and the panel's
 * verdicts; if they disagree too, the conversation waits in a queue for `tracesift review`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  assertUniqueNames,
  ConfigError,
  createCachedArbiter,
  createCachedJudge,
  DatasetError,
  JudgeUnavailableError,
  type LabelInput,
  type LabelRunResult,
  PanelFile,
  readConfigFile,
  readDatasetFiles,
  renderLabelStats,
  runLabelling,
} from "@tracesift/evaluation";
import { checkEndpoints, ConnectEnv } from "./connect.ts";
import { connectCliRuntime, type EvalIo, interruptSignal, listArg, positiveInt } from "./eval.ts";
import type { Command } from "./main.ts";
import { parseCommandArgs, requiredArg, UsageError } from "./usage.ts";

const HELP = `tracesift label --config <panel.json> --dataset <file.jsonl> [--dataset ...] --out <dir> [options]

Labels conversations (any supported input format, one per line; existing labels are ignored):
the first panel judges each one, and a unanimous verdict is the label ("unanimous"). Otherwise
the arbiters see the conversation and every panel verdict with its reason; if they agree, that is
the label ("arbitrated"). Otherwise the conversation goes to the review queue for a person
(tracesift review).

  --config <file>       {"panel": [judge, judge, ...], "arbiters": [judge, ...]}, judges as in
                        tracesift eval --config (name, baseURL, model, apiKeyEnv?, pricing?, ...)
  --dataset <file>      JSONL input (repeatable)
  --out <dir>           writes labels.jsonl, review-queue.jsonl and agreement.json there
  --concurrency <n>     conversations in flight (default 4; each asks every panel model)
  --attempts <n>        answers per model before it counts as "no valid answer" (default 3)

labels.jsonl is itself a dataset for tracesift eval and export-sft. Calls use the fleet's rate
limiter and result cache (REDIS_URL, QUEUE_PREFIX); run the same command again to resume.
`;

const OPTIONS = {
  config: { type: "string" },
  dataset: { type: "string", multiple: true },
  out: { type: "string" },
  concurrency: { type: "string" },
  attempts: { type: "string" },
} as const;

export async function runLabelCommand(argv: string[], io: EvalIo): Promise<number> {
  const args = parseCommandArgs(argv, OPTIONS, HELP);
  if (!args) return 0;
  const configPath = requiredArg(args, "config", HELP);
  const out = requiredArg(args, "out", HELP);
  const datasetPaths = listArg(args, "dataset");
  if (datasetPaths.length === 0) throw new UsageError(`--dataset is required\n\n${HELP}`);
  const concurrency = positiveInt(args, "concurrency", 4);
  const attempts = positiveInt(args, "attempts", 3);
  let config: PanelFile;
  let inputs: LabelInput[];
  try {
    config = readConfigFile(PanelFile, configPath);
    assertUniqueNames([...config.panel, ...config.arbiters]);
    const datasets = readDatasetFiles(datasetPaths);
    inputs = datasets.flatMap(({ dataset }) => dataset.items.map((item) => ({ dataset: dataset.name, item })));
    const ids = new Map<string, string>();
    for (const { dataset, item } of inputs) {
      const other = ids.get(item.conversation.id);
      if (other !== undefined) throw new DatasetError(`conversation id "${item.conversation.id}" is in ${other} and ${dataset}`);
      ids.set(item.conversation.id, dataset);
    }
  } catch (err) {
    if (err instanceof ConfigError || err instanceof DatasetError) throw new UsageError(err.message);
    throw err;
  }

  await checkEndpoints([...config.panel, ...config.arbiters], ConnectEnv.parse({ CONNECT_TIMEOUT_MS: io.env.CONNECT_TIMEOUT_MS || undefined }).CONNECT_TIMEOUT_MS);
  const runtime = await connectCliRuntime(io, attempts);
  let result: LabelRunResult;
  try {
    let panel: ReturnType<typeof createCachedJudge>[];
    let arbiters: ReturnType<typeof createCachedArbiter>[];
    try {
      panel = config.panel.map((c) => createCachedJudge(c, runtime.deps));
      arbiters = config.arbiters.map((c) => createCachedArbiter(c, runtime.deps));
    } catch (err) {
      throw err instanceof ConfigError ? new UsageError(err.message) : err;
    }
    mkdirSync(out, { recursive: true });
    result = await runLabelling({
      inputs,
      panel,
      arbiters,
      labelsPath: join(out, "labels.jsonl"),
      queuePath: join(out, "review-queue.jsonl"),
      concurrency,
      ...(io.signal ? { signal: io.signal } : {}),
      onProgress: (done, total) => {
        if (done === total || done % 10 === 0) io.stderr.write(`label: ${done}/${total} conversations decided\n`);
      },
    });
  } catch (err) {
    // A model that refuses every call (bad key, unknown model): nothing more can be decided.
    if (!(err instanceof JudgeUnavailableError)) throw err;
    io.stderr.write(`label: ${err.message}\nlabel: decided conversations are saved; fix the judge and run the same command again\n`);
    return 1;
  } finally {
    await runtime.close();
  }

  const { stats } = result;
  writeFileSync(join(out, "agreement.json"), `${JSON.stringify({ ...stats, generated_at: new Date().toISOString() }, null, 2)}\n`);
  io.stdout.write(renderLabelStats(stats));
  io.stdout.write(
    `\nThis run: ${result.modelCalls} model calls, ${result.cacheHits} verdicts from the result cache, ${result.resumed} conversations already decided.\n` +
      `Wrote ${join(out, "labels.jsonl")}, ${join(out, "review-queue.jsonl")} and ${join(out, "agreement.json")}.\n` +
      (stats.human_review > 0 ? `Settle the review queue with: tracesift review --out ${out}\n` : ""),
  );
  for (const e of result.errors) io.stderr.write(`label: ${e}\n`);
  if (io.signal?.aborted) {
    io.stderr.write("label: interrupted; run the same command again to resume\n");
    return 130;
  }
  return stats.pending > 0 ? 1 : 0;
}

export const command: Command = {
  summary: "label conversations with a model panel, arbiters and a human-review queue",
  run: ({ argv }) => runLabelCommand(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: interruptSignal() }),
};
