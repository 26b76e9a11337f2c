/**
 * `tracesift finetune`: the export-sft files → Fireworks datasets → a LoRA supervised fine-tuning
 * job, followed to the end, with everything needed to reproduce or audit it in
 * <dir>/finetune.json. Dataset and job ids are derived from the data's hashes and the
 * hyper-parameters, so a stopped command run again re-attaches to the same job instead of paying
 * for a second one, and changed data never reuses a dataset of other content.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { SftRecord } from "@tracesift/evaluation";
import { PROMPT_VERSION } from "@tracesift/judge";
import { z } from "zod";
import { FireworksApi, type SftJob, TERMINAL_JOB_STATES } from "./fireworks-api.ts";
import type { Command } from "./main.ts";
import { parseCommandArgs, requiredArg, stringArg, UsageError } from "./usage.ts";

const HELP = `tracesift finetune --data <export-sft dir> --base-model <model> --name <output model name> [options]

Uploads <dir>/train.jsonl and <dir>/holdout.jsonl (from tracesift export-sft) as Fireworks datasets,
starts a LoRA supervised fine-tuning job on the base model, follows it until it ends, and writes
<dir>/finetune.json: the resulting model id, the datasets' sha256, the hyper-parameters, the judge
prompt version and the job. Also writes <dir>/holdout.eval.jsonl, the holdout as a labelled dataset
for 'tracesift eval' (the promotion gate's holdout evaluation). Run the same command again to
re-attach to a job after a stop; it never starts a second job for the same data and settings.

  --data <dir>            directory written by tracesift export-sft
  --base-model <model>    e.g. accounts/fireworks/models/qwen3p5-35b-a3b
  --name <name>           output model name (lower-case letters, digits, dashes)
  --epochs <n>            default 1
  --learning-rate <x>     default 0.0001
  --lora-rank <n>         default 8
  --poll-ms <ms>          how often the job is read (default 10000)

Environment: FIREWORKS_API_KEY, FIREWORKS_ACCOUNT_ID (required); FIREWORKS_API_URL
(default https://api.fireworks.ai; the simulator's root URL in tests).
`;

const OPTIONS = {
  data: { type: "string" },
  "base-model": { type: "string" },
  name: { type: "string" },
  epochs: { type: "string" },
  "learning-rate": { type: "string" },
  "lora-rank": { type: "string" },
  "poll-ms": { type: "string" },
} as const;

const FinetuneEnv = z.object({
  FIREWORKS_API_KEY: z.string().min(1, "FIREWORKS_API_KEY is required (any value against the simulator)"),
  FIREWORKS_ACCOUNT_ID: z.string().min(1, "FIREWORKS_ACCOUNT_ID is required"),
  FIREWORKS_API_URL: z.url().default("https://api.fireworks.ai"),
});

export const FinetuneManifest = z.object({
  schema_version: z.literal(1),
  name: z.string(),
  base_model: z.string(),
  prompt_version: z.string(),
  hyperparameters: z.object({ epochs: z.number(), learning_rate: z.number(), lora_rank: z.number() }),
  datasets: z.object({
    train: z.object({ file: z.string(), sha256: z.string(), examples: z.number(), dataset: z.string() }),
    holdout: z.object({ file: z.string(), sha256: z.string(), examples: z.number(), dataset: z.string() }),
  }),
  job: z.string(),
  state: z.string(),
  /** Set once the job completed: the model id to give `tracesift judges candidate`. */
  output_model: z.string().nullable(),
  started_at: z.string(),
  updated_at: z.string(),
});
export type FinetuneManifest = z.infer<typeof FinetuneManifest>;

export type FinetuneIo = { stdout: Writable; stderr: Writable; env: Record<string, string | undefined>; signal?: AbortSignal; fetch?: typeof fetch };

function number(raw: string | undefined, name: string, fallback: number, integer: boolean): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!(n > 0) || (integer && !Number.isInteger(n))) throw new UsageError(`--${name} must be a positive ${integer ? "integer" : "number"}, got "${raw}"`);
  return n;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** Reads an export-sft file and checks every line is a fine-tuning record. */
function readSftFile(path: string): { text: string; records: SftRecord[] } {
  if (!existsSync(path)) throw new UsageError(`${path} does not exist: run tracesift export-sft first`);
  const text = readFileSync(path, "utf8");
  const records = text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((line, i) => {
      const parsed = SftRecord.safeParse(JSON.parse(line));
      if (!parsed.success) throw new UsageError(`${path}:${i + 1}: not an export-sft record (${parsed.error.issues[0]?.message ?? ""})`);
      return parsed.data;
    });
  return { text, records };
}

/**
 * The holdout as a labelled dataset `tracesift eval` reads: the conversation the judge saw
 * (recovered from the rendered transcript) with the exported verdict as its label.
 */
export function holdoutAsEvalDataset(records: SftRecord[]): string {
  const Transcript = z.object({ messages: z.array(z.object({ role: z.string(), content: z.string() })) });
  const Answer = z.object({ perceived_error: z.boolean(), reason: z.string() });
  return records
    .map((r) => {
      const user = r.messages[1].content;
      const transcript = Transcript.parse(JSON.parse(user.slice(user.indexOf("\n") + 1)));
      const label = Answer.parse(JSON.parse(r.messages[2].content));
      return `${JSON.stringify({ id: `holdout-${sha256(user).slice(0, 16)}`, messages: transcript.messages, label })}\n`;
    })
    .join("");
}

export async function runFinetuneCommand(argv: string[], io: FinetuneIo): Promise<number> {
  const args = parseCommandArgs(argv, OPTIONS, HELP);
  if (!args) return 0;
  const dir = requiredArg(args, "data", HELP);
  const baseModel = requiredArg(args, "base-model", HELP);
  const name = requiredArg(args, "name", HELP);
  if (!/^[a-z0-9][a-z0-9-]{0,40}$/.test(name)) throw new UsageError(`--name must be lower-case letters, digits and dashes (at most 41), got "${name}"`);
  const hyper = {
    epochs: number(stringArg(args, "epochs"), "epochs", 1, true),
    learning_rate: number(stringArg(args, "learning-rate"), "learning-rate", 0.0001, false),
    lora_rank: number(stringArg(args, "lora-rank"), "lora-rank", 8, true),
  };
  const pollMs = number(stringArg(args, "poll-ms"), "poll-ms", 10_000, true);
  const env = FinetuneEnv.safeParse(io.env);
  if (!env.success) throw new UsageError(env.error.issues.map((i) => `${String(i.path[0])}: ${i.message}`).join("; "));

  const train = readSftFile(join(dir, "train.jsonl"));
  const holdout = readSftFile(join(dir, "holdout.jsonl"));
  if (train.records.length === 0) throw new UsageError(`${join(dir, "train.jsonl")} has no examples`);
  writeFileSync(join(dir, "holdout.eval.jsonl"), holdoutAsEvalDataset(holdout.records));

  const hashes = { train: sha256(train.text), holdout: sha256(holdout.text) };
  const settings = sha256(JSON.stringify({ baseModel, name, hyper, hashes, prompt: PROMPT_VERSION })).slice(0, 8);
  const ids = {
    train: `${name}-train-${hashes.train.slice(0, 8)}`,
    holdout: `${name}-holdout-${hashes.holdout.slice(0, 8)}`,
    job: `${name}-${settings}`,
  };
  const api = new FireworksApi({ apiUrl: env.data.FIREWORKS_API_URL, apiKey: env.data.FIREWORKS_API_KEY, account: env.data.FIREWORKS_ACCOUNT_ID, ...(io.fetch ? { fetch: io.fetch } : {}) });
  const manifestPath = join(dir, "finetune.json");
  const previous = existsSync(manifestPath) ? FinetuneManifest.safeParse(JSON.parse(readFileSync(manifestPath, "utf8"))) : undefined;
  const resumed = previous?.success && previous.data.job === api.jobName(ids.job);
  const now = () => new Date().toISOString();
  const manifest: FinetuneManifest = {
    schema_version: 1,
    name,
    base_model: baseModel,
    prompt_version: PROMPT_VERSION,
    hyperparameters: hyper,
    datasets: {
      train: { file: "train.jsonl", sha256: hashes.train, examples: train.records.length, dataset: api.datasetName(ids.train) },
      holdout: { file: "holdout.jsonl", sha256: hashes.holdout, examples: holdout.records.length, dataset: api.datasetName(ids.holdout) },
    },
    job: api.jobName(ids.job),
    state: "DATASETS",
    output_model: null,
    started_at: resumed && previous?.success ? previous.data.started_at : now(),
    updated_at: now(),
  };
  const save = (job?: SftJob) => {
    if (job) Object.assign(manifest, { state: job.state, output_model: job.state === "JOB_STATE_COMPLETED" ? (job.outputModel ?? null) : null });
    manifest.updated_at = now();
    writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  };
  io.stderr.write(resumed ? `finetune: re-attaching to ${manifest.job}\n` : `finetune: starting ${manifest.job}\n`);

  await api.ensureDataset(ids.train, train.text, train.records.length);
  if (holdout.records.length > 0) await api.ensureDataset(ids.holdout, holdout.text, holdout.records.length);
  save();
  let job = await api.ensureSftJob(ids.job, {
    dataset: manifest.datasets.train.dataset,
    ...(holdout.records.length > 0 ? { evaluationDataset: manifest.datasets.holdout.dataset } : {}),
    baseModel,
    outputModel: `accounts/${env.data.FIREWORKS_ACCOUNT_ID}/models/${name}`,
    displayName: `tracesift ${name} (${PROMPT_VERSION})`,
    epochs: hyper.epochs,
    learningRate: hyper.learning_rate,
    loraRank: hyper.lora_rank,
  });
  save(job);
  let lastLine = "";
  while (!TERMINAL_JOB_STATES.has(job.state)) {
    if (io.signal?.aborted) {
      io.stderr.write(`\nfinetune: stopped following ${manifest.job} (it keeps running); run the same command to re-attach\n`);
      return 130;
    }
    await new Promise((r) => setTimeout(r, pollMs));
    const next = await api.getSftJob(ids.job);
    if (!next) throw new Error(`job ${manifest.job} disappeared`);
    job = next;
    save(job);
    const line = progressLine(job);
    if (line !== lastLine) io.stderr.write(`finetune: ${line}\n`);
    lastLine = line;
  }
  if (job.state !== "JOB_STATE_COMPLETED") {
    io.stderr.write(`finetune: ${manifest.job} ended ${job.state}: ${job.status?.message ?? "no message"}\n`);
    return 1;
  }
  io.stdout.write(
    `Fine-tuned model: ${manifest.output_model}\nManifest: ${manifestPath}\nHoldout for eval: ${join(dir, "holdout.eval.jsonl")}\n` +
      `Next: tracesift judges candidate --model ${manifest.output_model} --sample 0.05\n`,
  );
  return 0;
}

function progressLine(job: SftJob): string {
  const pct = job.jobProgress?.percent ?? 0;
  const width = 20;
  const bar = "█".repeat(Math.round((Math.min(100, pct) / 100) * width)).padEnd(width, "░");
  return `${job.state.replace("JOB_STATE_", "").toLowerCase().padEnd(9)} ${bar} ${pct}%${job.jobProgress?.epoch !== undefined ? `  epoch ${job.jobProgress.epoch}` : ""}`;
}

export const command: Command = {
  summary: "fine-tune a judge on Fireworks from export-sft files (resumable)",
  run: async ({ argv }) => {
    const { interruptSignal } = await import("./eval.ts");
    return runFinetuneCommand(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: interruptSignal() });
  },
};
