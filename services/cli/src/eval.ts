/**
 * `tracesift eval`: judge configurations against labelled datasets. Calls go through the fleet's
 * rate limiter and result cache (Redis), so a repeated run costs no model calls, and every outcome
 * is appended to <out>/progress.jsonl, so an interrupted run resumes where it stopped.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Writable } from "node:stream";
import {
  assertUniqueNames,
  ConfigError,
  connectRuntime,
  createCachedJudge,
  DatasetError,
  type EvalReport,
  JudgeConfig,
  JudgesFile,
  RedisUnavailableError,
  readConfigFile,
  readDatasetFiles,
  renderEvalMarkdown,
  renderEvalTerminal,
  runEvaluation,
  UncertainBand,
} from "@tracesift/evaluation";
import { checkEndpoints, ConnectEnv } from "./connect.ts";
import type { Command } from "./main.ts";
import { type ParsedArgs, parseCommandArgs, requiredArg, stringArg, UsageError } from "./usage.ts";

const HELP = `tracesift eval --dataset <file.jsonl> [--dataset ...] (--config <judges.json> | --model <id> --base-url <url>) --out <dir> [options]

Runs judge configurations over labelled datasets and prints, per judge and dataset: accuracy,
precision, recall, F1 and Cohen's kappa against the labels, the confusion matrix, the accuracy of
always answering "no error", the invalid-output rate, tokens and cost per 1,000 conversations,
latency p50/p99, and the disagreements with both reasons (label vs model).

Judges (at least one; --config and --model combine):
  --config <file>       JSON list of judges, or {"judges": [...]}; each judge:
                        {"name", "baseURL", "model", "apiKeyEnv"?, "promptVersion"?, "pricing"?,
                         "limits"?, "responseFormat"?, "maxTokens"?, "timeoutMs"?, "logprobs"?}
                        ("logprobs": true adds confidence, calibration and the escalation table)
  --model <id>          a judge from flags, named after its model (repeatable)
  --base-url <url>      endpoint of the --model judges (OpenAI-compatible)
  --api-key-env <VAR>   environment variable holding their API key (default: no key)

Options:
  --dataset <file>      labelled JSONL dataset (repeatable; see services/cli/samples/eval/README.md)
  --out <dir>           writes report.json, report.md and progress.jsonl (the resume log) there
  --concurrency <n>     conversations in flight (default 8); the fleet limiter paces calls further
  --attempts <n>        answers per conversation before it counts as invalid output (default 3)
  --show <n>            disagreements printed per judge and dataset (default 10; all are in the files)
  --uncertain-band <l-h>  confidence band whose verdicts would be escalated (default UNCERTAIN_BAND or 0.35-0.65)

Environment: REDIS_URL (default redis://127.0.0.1:6379) and QUEUE_PREFIX (default tracesift) name the
fleet's rate limiter and result cache. Run the same command again to resume an interrupted run.
`;

const OPTIONS = {
  config: { type: "string" },
  model: { type: "string", multiple: true },
  "base-url": { type: "string" },
  "api-key-env": { type: "string" },
  dataset: { type: "string", multiple: true },
  out: { type: "string" },
  concurrency: { type: "string" },
  attempts: { type: "string" },
  show: { type: "string" },
  "uncertain-band": { type: "string" },
} as const;

export type EvalIo = { stdout: Writable; stderr: Writable; env: Record<string, string | undefined>; signal?: AbortSignal };

export function positiveInt(args: ParsedArgs, name: string, fallback: number): number {
  const raw = stringArg(args, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got "${raw}"`);
  return n;
}

export function listArg(args: ParsedArgs, name: string): string[] {
  const v = args.values[name];
  return Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
}

function judgeConfigs(args: ParsedArgs): JudgeConfig[] {
  const configs: JudgeConfig[] = [];
  const file = stringArg(args, "config");
  if (file !== undefined) configs.push(...readConfigFile(JudgesFile, file));
  const models = listArg(args, "model");
  if (models.length > 0) {
    const baseURL = stringArg(args, "base-url");
    if (baseURL === undefined) throw new UsageError(`--model needs --base-url\n\n${HELP}`);
    const apiKeyEnv = stringArg(args, "api-key-env");
    for (const model of models) {
      const parsed = JudgeConfig.safeParse({ name: model, baseURL, model, ...(apiKeyEnv ? { apiKeyEnv } : {}) });
      if (!parsed.success) throw new UsageError(`--model ${model}: ${parsed.error.issues[0]?.message ?? "invalid"}`);
      configs.push(parsed.data);
    }
  }
  if (configs.length === 0) throw new UsageError(`no judge: give --config or --model\n\n${HELP}`);
  assertUniqueNames(configs);
  return configs;
}

/** The command without process globals, for tests. Returns the exit code. */
export async function runEvalCommand(argv: string[], io: EvalIo): Promise<number> {
  const args = parseCommandArgs(argv, OPTIONS, HELP);
  if (!args) return 0;
  const datasetPaths = listArg(args, "dataset");
  if (datasetPaths.length === 0) throw new UsageError(`--dataset is required\n\n${HELP}`);
  const out = requiredArg(args, "out", HELP);
  const concurrency = positiveInt(args, "concurrency", 8);
  const attempts = positiveInt(args, "attempts", 3);
  const show = positiveInt(args, "show", 10);
  const bandText = stringArg(args, "uncertain-band") ?? io.env.UNCERTAIN_BAND;
  const band = bandText === undefined ? undefined : UncertainBand.safeParse(bandText);
  if (band && !band.success) throw new UsageError(`--uncertain-band: ${band.error.issues[0]?.message ?? "invalid"}`);
  let configs: JudgeConfig[];
  let datasets: ReturnType<typeof readDatasetFiles>;
  try {
    configs = judgeConfigs(args);
    datasets = readDatasetFiles(datasetPaths);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof DatasetError) throw new UsageError(err.message);
    throw err;
  }

  await checkEndpoints(configs, ConnectEnv.parse({ CONNECT_TIMEOUT_MS: io.env.CONNECT_TIMEOUT_MS || undefined }).CONNECT_TIMEOUT_MS);
  const runtime = await connectCliRuntime(io, attempts);
  let report: EvalReport;
  try {
    const judges = configs.map((c) => {
      try {
        return createCachedJudge(c, runtime.deps);
      } catch (err) {
        throw err instanceof ConfigError ? new UsageError(err.message) : err;
      }
    });
    mkdirSync(out, { recursive: true });
    let lastShown = -1;
    report = await runEvaluation({
      datasets,
      judges,
      progressPath: join(out, "progress.jsonl"),
      concurrency,
      ...(band?.success ? { uncertainBand: band.data } : {}),
      ...(io.signal ? { signal: io.signal } : {}),
      onProgress: (done, total) => {
        const decile = Math.floor((done / total) * 10);
        if (decile !== lastShown) {
          lastShown = decile;
          io.stderr.write(`eval: ${done}/${total} new verdicts\n`);
        }
      },
    });
  } finally {
    await runtime.close();
  }

  writeFileSync(join(out, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(out, "report.md"), renderEvalMarkdown(report));
  io.stdout.write(renderEvalTerminal(report, show));
  const { run } = report;
  io.stdout.write(
    `\nThis run: ${run.model_calls} model calls, ${run.cache_hits} verdicts from the result cache, ${run.resumed} resumed from ${join(out, "progress.jsonl")}.\n` +
      `Wrote ${join(out, "report.json")} and ${join(out, "report.md")}.\n`,
  );
  for (const e of run.errors) io.stderr.write(`eval: ${e}\n`);
  if (io.signal?.aborted) {
    io.stderr.write("eval: interrupted; run the same command again to resume\n");
    return 130;
  }
  if (!run.complete) {
    io.stderr.write("eval: some conversations have no outcome yet; run the same command again to retry them\n");
    return 1;
  }
  return 0;
}

/** SIGINT stops taking new conversations; in-flight ones finish and are recorded. A second one exits. */
/** The fleet's Redis (rate limiter, result cache) for eval and label; an unreachable Redis is a usage error. */
export function connectCliRuntime(io: EvalIo, maxAttempts: number) {
  return connectRuntime({
    redisUrl: io.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    prefix: io.env.QUEUE_PREFIX ?? "tracesift",
    env: io.env,
    maxAttempts,
    ...(io.signal ? { signal: io.signal } : {}),
  }).catch((err: unknown) => {
    throw err instanceof RedisUnavailableError ? new UsageError(err.message) : err;
  });
}

export function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  process.once("SIGINT", () => {
    process.stderr.write("\nstopping after the calls in flight (Ctrl-C again to quit now)\n");
    controller.abort(new Error("interrupted"));
    process.once("SIGINT", () => process.exit(130));
  });
  return controller.signal;
}

export const command: Command = {
  summary: "evaluate judge configurations against labelled datasets",
  run: ({ argv }) => runEvalCommand(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: interruptSignal() }),
};
