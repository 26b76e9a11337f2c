/**
 * `tracesift replay --batch`: the same range, filters, sampling and "skip already judged" as
 * replay, judged through Fireworks' Batch API at half the price, outside the serverless rate
 * limits, within hours instead of seconds.
 *
 * 1. collect: the range goes through the live pipeline (normalization, assembly, selection,
 *    limits, skipped results and dead letters written as live); the jobs it would enqueue are
 *    appended to a local jobs file instead of BullMQ.
 * 2. plan: what is still unjudged is written to request files (custom_id = result_id) under the
 *    API's size and line limits.
 * 3. run: each file is uploaded as a dataset and judged by one batch job, at most BATCH_MAX_JOBS in
 *    flight; finished jobs are downloaded, every answer validated with the live parser, verdicts
 *    published like the workers' (marked `mode: "batch"`) and recorded in the result index.
 *    Requests a job left unanswered (failed, expired, errored) are submitted again once, then go
 *    to the live queue (or the dead-letter topic) with the reason, as do invalid answers.
 *
 * Every step is recorded in a state file before the next starts: a stopped command resumes the
 * same jobs, and a finished one, run again, publishes and pays nothing.
 */
import { createHash, randomBytes } from "node:crypto";
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConversationAssembler } from "@tracesift/assembly";
import {
  type BatchOutcome,
  type BatchState,
  batchCostUsd,
  batchPrice,
  type Chunk,
  DEFAULT_FILE_LIMITS,
  FireworksBatchApi,
  loadState,
  readOutputFiles,
  requestLine,
  saveState,
  splitRequests,
  TERMINAL_STATES,
} from "@tracesift/batch";
import { callCostUsd, DEFAULT_PRICES, PROMPT_VERSION, priceFor, type TokenPrice, TokenPrice as TokenPriceSchema } from "@tracesift/judge";
import { BatchingProducer, createIdempotentProducer, type OutgoingRecord } from "@tracesift/kafka";
import { batchMetrics, ingestMetrics, initIngestSeries, judgeMetrics } from "@tracesift/metrics";
import { emitReady, handleChunk, limitsFromEnv, type PipelineOptions, selectionFromEnv, type Totals } from "@tracesift/pipeline";
import { createJudgeQueue, decodeJudgeJob, enqueueJudgeJobs, type JudgeQueue } from "@tracesift/queue";
import { ResultIndex } from "@tracesift/result-index";
import { createRegistry, parseEnv, startOpsServer } from "@tracesift/runtime";
import {
  buildDeadLetter,
  type DeadLetterReason,
  type JudgedResult,
  JudgeJob,
  judgedResultId,
  PROVENANCE_HEADER,
  type TokenUsage,
} from "@tracesift/schemas";
import { z } from "zod";
import { Progress } from "./progress.ts";
import { estimateRange, readRange, type ReplayContext } from "./replay.ts";
import { UsageError } from "./usage.ts";

const BatchEnv = z.object({
  FIREWORKS_API_KEY: z.string().default(""),
  FIREWORKS_ACCOUNT_ID: z.string().default(""),
  /** Control-plane origin; default: the origin of JUDGE_BASE_URL (api.fireworks.ai, or the simulator). */
  FIREWORKS_API_URL: z.url().optional(),
  JUDGE_BASE_URL: z.url().default("https://api.fireworks.ai/inference/v1"),
  JUDGE_RESPONSE_FORMAT: z.enum(["json_schema", "json_object"]).default("json_schema"),
  /** Serverless token prices of models priced per GPU-hour live (fine-tunes): what batch halves. */
  JUDGE_BATCH_PRICING: z
    .string()
    .default("{}")
    .transform((s) => z.record(z.string(), TokenPriceSchema).parse(JSON.parse(s))),
  BATCH_STATE_DIR: z.string().default(".cache/replay-batch"),
  BATCH_MAX_JOBS: z.coerce.number().int().positive().default(4),
  BATCH_MAX_FILE_BYTES: z.coerce.number().int().positive().default(DEFAULT_FILE_LIMITS.maxBytes),
  BATCH_MAX_FILE_LINES: z.coerce.number().int().positive().default(DEFAULT_FILE_LIMITS.maxLines),
  BATCH_POLL_MS: z.coerce.number().int().positive().default(30_000),
  /** Times a request is submitted to batch before what is still unanswered goes to the fallback. */
  BATCH_MAX_SUBMISSIONS: z.coerce.number().int().positive().default(2),
  BATCH_FALLBACK: z.enum(["live", "dlq"]).default("live"),
});
type BatchEnv = z.infer<typeof BatchEnv>;

/** What dry runs assume a verdict costs in completion tokens (as replay's dry run). */
const _EXPECTED_COMPLETION_TOKENS = 32;
const HEADERS = { [PROVENANCE_HEADER]: "replay-batch" };

type RunTotals = {
  judged: number;
  invalid: number;
  resubmitted: number;
  fallback_live: number;
  fallback_dead_lettered: number;
  already_published: number;
  cost_usd: number;
  live_price_usd: number;
};

export async function replayBatch(ctx: ReplayContext, options: { dryRun: boolean; metricsPort: number }): Promise<number> {
  const benv = parseEnv(BatchEnv);
  const judge = { model: ctx.env.JUDGE_MODEL, prompt_version: PROMPT_VERSION };
  const live = priceFor(ctx.env.JUDGE_PRICING, judge.model);
  const serverless = benv.JUDGE_BATCH_PRICING[judge.model] ?? tokenPriceOf(DEFAULT_PRICES[judge.model]) ?? tokenPriceOf(DEFAULT_PRICES["*"])!;
  const batch = batchPrice(live, serverless);
  // A per-GPU-hour live price has no per-token figure to compare with: the serverless list price stands in.
  const liveTokens = "usd_per_gpu_hour" in live ? serverless : live;
  if (options.dryRun) return dryRun(ctx, judge, liveTokens, batch);
  if (!benv.FIREWORKS_API_KEY || !benv.FIREWORKS_ACCOUNT_ID) throw new UsageError("replay --batch needs FIREWORKS_API_KEY and FIREWORKS_ACCOUNT_ID (any values against the simulator)");

  const dir = join(benv.BATCH_STATE_DIR, ctx.name.replace(/[^\w.-]/g, "_"));
  mkdirSync(dir, { recursive: true });
  const statePath = join(dir, "state.json");
  const jobsPath = join(dir, "jobs.jsonl");
  let state = loadState(statePath);
  if (state && (state.topic !== ctx.topic || state.model !== judge.model || state.prompt_version !== judge.prompt_version)) {
    throw new UsageError(`${statePath} belongs to another backfill (${state.topic}, ${state.model}); choose another --name`);
  }
  state ??= {
    version: 1,
    name: ctx.name,
    topic: ctx.topic,
    model: judge.model,
    prompt_version: judge.prompt_version,
    ranges: ctx.ranges.map((r) => ({ partition: r.partition, start: `${r.start}`, end: `${r.end}` })),
    collected: false,
    planned: false,
    totals: { events_read: 0, skipped_not_judgeable: 0, skipped_already_judged: 0, dead_lettered: 0 },
    chunks: [],
  };
  // Provider ids are global to the account: a fresh state gets fresh ids, a resumed one keeps its own.
  const slug = `ts-${createHash("sha256").update(ctx.name).digest("hex").slice(0, 10)}-${state.chunks[0]?.dataset_id.split("-")[2] ?? randomBytes(3).toString("hex")}`;
  const save = () => saveState(statePath, state);
  save();

  const registry = createRegistry("replay");
  const ingest = ingestMetrics(registry);
  initIngestSeries(ingest, [ctx.topic], ctx.name);
  const judgeM = judgeMetrics(registry);
  const batchM = batchMetrics(registry);
  const ops = options.metricsPort > 0 ? await startOpsServer({ port: options.metricsPort, registry, readiness: [] }).catch(() => null) : null;
  const kafkaProducer = createIdempotentProducer(ctx.kafka);
  await kafkaProducer.connect();
  const producer = new BatchingProducer(kafkaProducer);
  const index = new ResultIndex(ctx.redis, ctx.env.QUEUE_PREFIX);
  const queue = createJudgeQueue(ctx.redis, ctx.env);
  const api = new FireworksBatchApi({
    baseUrl: benv.FIREWORKS_API_URL ?? new URL(benv.JUDGE_BASE_URL).origin,
    accountId: benv.FIREWORKS_ACCOUNT_ID,
    apiKey: benv.FIREWORKS_API_KEY,
  });
  const stop = new AbortController();
  const onSignal = () => {
    process.stderr.write("\nstopping; run the same command again to resume the same batch jobs\n");
    stop.abort();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let jobs = new Map<string, JudgeJob>();
  const run: RunTotals = { judged: 0, invalid: 0, resubmitted: 0, fallback_live: 0, fallback_dead_lettered: 0, already_published: 0, cost_usd: 0, live_price_usd: 0 };
  try {
    if (!state.collected) {
      const complete = await collect(ctx, state, jobsPath, producer, index, ingest, judge, stop.signal, save);
      if (!complete) return finish(state, run, 130);
    }
    jobs = loadJobs(jobsPath, judge);
    if (!state.planned) {
      const fresh = [...jobs.values()];
      const published = ctx.force ? [] : await index.has(fresh.map((j) => ({ conversationId: j.conversation.id, version: j.version, judge })));
      const todo = fresh.filter((_, i) => !published[i]);
      state.totals.skipped_already_judged += fresh.length - todo.length;
      for (const ids of splitRequests(
        todo.map((j) => requestLine(j, judge, requestOptions(ctx, benv))),
        { maxBytes: benv.BATCH_MAX_FILE_BYTES, maxLines: benv.BATCH_MAX_FILE_LINES },
      )) {
        addChunk(state, dir, slug, 1, ids);
      }
      state.planned = true;
      save();
    }

    const total = state.chunks.filter((c) => c.attempt === 1).reduce((n, c) => n + c.custom_ids.length, 0);
    const progress = new Progress("batch", total);
    for (;;) {
      for (const c of state.chunks.filter((c) => c.stage === "planned")) {
        if (state.chunks.filter((x) => x.stage === "uploaded" || x.stage === "submitted").length >= benv.BATCH_MAX_JOBS) break;
        await api.createDataset(c.dataset_id, c.custom_ids.length);
        await api.uploadDataset(c.dataset_id, "requests.jsonl", readFileSync(join(dir, `chunk-${c.index}.jsonl`), "utf8"));
        c.stage = "uploaded";
        save();
      }
      for (const c of state.chunks.filter((c) => c.stage === "uploaded")) {
        await api.createJob(c.job_id, { model: judge.model, inputDatasetId: c.dataset_id, outputDatasetId: c.output_dataset_id, maxTokens: ctx.env.JUDGE_MAX_TOKENS });
        c.stage = "submitted";
        c.submitted_at = new Date().toISOString();
        save();
      }
      for (const c of state.chunks.filter((c) => c.stage === "submitted")) {
        const job = await api.getJob(c.job_id);
        c.job_state = job.state;
        c.processed = job.jobProgress?.totalProcessedRequests ?? c.processed;
        if (TERMINAL_STATES.has(job.state)) {
          c.job_message = job.status?.message;
          // A failed job may have no output dataset at all: every request of it is then unanswered.
          const files = job.state === "FAILED" ? {} : await api.downloadDataset(c.output_dataset_id).catch(() => ({}));
          writeFileSync(join(dir, `chunk-${c.index}.out.json`), JSON.stringify(files));
          c.stage = "downloaded";
          c.finished_at = new Date().toISOString();
        }
        save();
      }
      for (const c of state.chunks.filter((c) => c.stage === "downloaded")) {
        const files = z.record(z.string(), z.string()).parse(JSON.parse(readFileSync(join(dir, `chunk-${c.index}.out.json`), "utf8")));
        await settle(c, readOutputFiles(files));
        c.stage = "done";
        save();
      }
      const states = new Map<string, number>();
      for (const c of state.chunks) if (c.stage !== "done") states.set(c.job_state ?? c.stage, (states.get(c.job_state ?? c.stage) ?? 0) + 1);
      batchM.jobs.reset();
      for (const [s, n] of states) batchM.jobs.set({ state: s }, n);
      const answered = state.chunks.filter((c) => c.attempt === 1).reduce((n, c) => n + (c.stage === "done" ? c.custom_ids.length : Math.min(c.processed, c.custom_ids.length)), 0);
      progress.update(answered, [...states].map(([s, n]) => `${n} ${s.toLowerCase()}`).join(", ") || "done");
      if (state.chunks.every((c) => c.stage === "done")) break;
      if (stop.signal.aborted) {
        progress.done();
        return finish(state, run, 130);
      }
      await sleep(benv.BATCH_POLL_MS, stop.signal);
    }
    progress.done();
    return finish(state, run, 0);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await producer.flush();
    await kafkaProducer.disconnect();
    await queue.close();
    await ops?.close();
  }

  /** Publishes a finished chunk's verdicts, and sends what it left unanswered on its way. */
  async function settle(c: Chunk, outcomes: Map<string, BatchOutcome>): Promise<void> {
    const results: JudgedResult[] = [];
    const retry: string[] = [];
    const fallback: { job: JudgeJob; reason: DeadLetterReason; why: string; raw?: string }[] = [];
    const latency = c.submitted_at && c.finished_at ? Math.max(0, Date.parse(c.finished_at) - Date.parse(c.submitted_at)) : 0;
    for (const id of c.custom_ids) {
      const job = jobs.get(id);
      if (!job) continue;
      const o = outcomes.get(id) ?? { kind: "error" as const, reason: `no answer: the job ended ${c.job_state ?? "?"}${c.job_message ? ` (${c.job_message})` : ""}` };
      if (o.kind === "verdict") {
        const usd = batchCostUsd(o.usage, batch);
        results.push({
          schema_version: 1,
          result_id: id,
          status: "judged",
          conversation_id: job.conversation.id,
          conversation_version: job.version,
          metadata: job.conversation.metadata,
          source: job.source,
          priority: "backfill",
          verdict: o.verdict,
          judge: { ...judge, mode: "batch" },
          usage: o.usage,
          cost_usd: usd,
          latency_ms: latency,
          attempts: c.attempt,
          judged_at: new Date().toISOString(),
        });
        continue;
      }
      if (o.kind === "invalid") {
        // Paid for like any answer, then handled as a worker handles invalid output.
        record(job, o.usage, false);
        run.invalid++;
        batchM.requests.inc({ model: judge.model, outcome: "invalid" });
        fallback.push({ job, reason: "invalid_model_output", why: `batch answer is not a verdict: ${o.reason}`, raw: o.raw });
      } else if (c.attempt < benv.BATCH_MAX_SUBMISSIONS) retry.push(id);
      else fallback.push({ job, reason: "judge_failed", why: o.reason });
    }
    const fresh = ctx.force ? results.map(() => false) : await index.has(results.map((r) => ({ conversationId: r.conversation_id, version: r.conversation_version, judge })));
    const toPublish = results.filter((_, i) => !fresh[i]);
    run.already_published += results.length - toPublish.length;
    // Kept first, as workers do: a verdict paid for is never paid again, even if publishing fails.
    await Promise.all(toPublish.map((r) => index.keep(r)));
    await producer.sendAll(toPublish.map((r): OutgoingRecord => ({ topic: ctx.env.OUTPUT_TOPIC, key: r.conversation_id, value: JSON.stringify(r), headers: HEADERS })));
    for (const r of toPublish) {
      await index.published(r);
      const job = jobs.get(r.result_id);
      if (job) record(job, r.usage, true, r.verdict.perceived_error);
      run.judged++;
    }
    if (retry.length > 0) {
      addChunk(state!, dir, slug, c.attempt + 1, retry.map((id) => requestLine(jobs.get(id)!, judge, requestOptions(ctx, benv))));
      run.resubmitted += retry.length;
      batchM.requests.inc({ model: judge.model, outcome: "resubmitted" }, retry.length);
    }
    await sendFallback(fallback);
  }

  function record(job: JudgeJob, usage: TokenUsage, verdict: boolean, perceived = false): void {
    const usd = batchCostUsd(usage, batch);
    const atLive = callCostUsd(usage, 0, liveTokens);
    run.cost_usd += usd;
    run.live_price_usd += atLive;
    const app = job.conversation.metadata.app ?? "unknown";
    judgeM.tokens.inc({ model: judge.model, kind: "prompt", priority: "backfill" }, usage.prompt_tokens);
    judgeM.tokens.inc({ model: judge.model, kind: "cached_prompt", priority: "backfill" }, usage.cached_prompt_tokens);
    judgeM.tokens.inc({ model: judge.model, kind: "completion", priority: "backfill" }, usage.completion_tokens);
    judgeM.cost.inc({ model: judge.model, app, priority: "backfill" }, usd);
    batchM.cost.inc({ model: judge.model }, usd);
    batchM.savings.inc({ model: judge.model }, Math.max(0, atLive - usd));
    if (verdict) {
      batchM.requests.inc({ model: judge.model, outcome: "verdict" });
      judgeM.verdicts.inc({ app, verdict: perceived ? "perceived_error" : "no_error", priority: "backfill" });
    }
  }

  /** What batch could not judge goes to the live queue (workers retry it), or to the dead-letter topic with the reason. */
  async function sendFallback(items: { job: JudgeJob; reason: DeadLetterReason; why: string; raw?: string }[]): Promise<void> {
    if (items.length === 0) return;
    if (benv.BATCH_FALLBACK === "live") {
      await enqueueJudgeJobs(queue, items.map((i) => i.job), ctx.env.JUDGE_MAX_ATTEMPTS);
      run.fallback_live += items.length;
      batchM.requests.inc({ model: judge.model, outcome: "fallback_live" }, items.length);
      return;
    }
    const letters = items.map((i) =>
      buildDeadLetter({
        reason_code: i.reason,
        reason: i.why,
        stage: "judge",
        source: i.job.source,
        original_key: i.job.conversation.id,
        original: Buffer.from(JSON.stringify(i.job)),
        subject: `${i.job.conversation.id}\u0000${i.job.version.content_hash}`,
        conversation_id: i.job.conversation.id,
        ...(i.raw !== undefined ? { raw_output: i.raw } : {}),
      }),
    );
    const written = await index.recordsWritten(letters.map((l) => l.dead_letter_id ?? ""));
    const fresh = letters.filter((_, i) => !written[i]);
    await producer.sendAll(
      fresh.map((l) => ({ topic: ctx.env.DEAD_LETTER_TOPIC, key: l.original_key, value: JSON.stringify(l), headers: { ...HEADERS, "tracesift-dlq-reason": l.reason_code } })),
    );
    await index.markRecords(fresh.map((l) => l.dead_letter_id ?? ""));
    for (const l of fresh) judgeM.deadLetters.inc({ stage: "judge", reason: l.reason_code });
    run.fallback_dead_lettered += items.length;
    batchM.requests.inc({ model: judge.model, outcome: "dead_lettered" }, items.length);
  }
}

function requestOptions(ctx: ReplayContext, benv: BatchEnv) {
  return { maxTokens: ctx.env.JUDGE_MAX_TOKENS, responseFormat: benv.JUDGE_RESPONSE_FORMAT };
}

function addChunk(state: BatchState, dir: string, slug: string, attempt: number, lines: { customId: string; line: string }[]): void {
  const index = state.chunks.length;
  writeFileSync(join(dir, `chunk-${index}.jsonl`), lines.map((l) => `${l.line}\n`).join(""));
  state.chunks.push({
    index,
    attempt,
    custom_ids: lines.map((l) => l.customId),
    dataset_id: `${slug}-c${index}-in`,
    output_dataset_id: `${slug}-c${index}-out`,
    job_id: `${slug}-c${index}`,
    stage: "planned",
    processed: 0,
  });
}

/**
 * Reads the range through the live pipeline. Jobs go to the jobs file, written before the
 * assembler acknowledges their conversations and before offsets are committed: a stop loses none.
 */
async function collect(
  ctx: ReplayContext,
  state: BatchState,
  jobsPath: string,
  producer: BatchingProducer,
  index: ResultIndex,
  metrics: ReturnType<typeof ingestMetrics>,
  judge: { model: string; prompt_version: string },
  signal: AbortSignal,
  save: () => void,
): Promise<boolean> {
  const { env } = ctx;
  // The pipeline enqueues through `addBulk` only; here that call writes the jobs file instead.
  const capture = {
    addBulk: async (items: { data: unknown }[]) => {
      const jobs = items.map((i) => {
        const decoded = decodeJudgeJob(i.data);
        if (!decoded.ok) throw new Error(decoded.error);
        return decoded.job;
      });
      appendFileSync(jobsPath, jobs.map((j) => `${JSON.stringify(j)}\n`).join(""));
      return [];
    },
  } as unknown as JudgeQueue;
  const pipeline: PipelineOptions = {
    queue: capture,
    producer,
    assembler: new ConversationAssembler({ redis: ctx.redis, prefix: `${env.QUEUE_PREFIX}:replay-batch:${ctx.name}`, idleMs: Number.MAX_SAFE_INTEGER / 2, mode: "idle" }),
    metrics,
    outputTopic: env.OUTPUT_TOPIC,
    deadLetterTopic: env.DEAD_LETTER_TOPIC,
    maxEventBytes: env.MAX_EVENT_BYTES,
    maxAttempts: env.JUDGE_MAX_ATTEMPTS,
    priority: "backfill",
    replay: ctx.name,
    topicFormats: env.TOPIC_FORMATS,
    immediateFormats: new Set(),
    selection: selectionFromEnv(env),
    limits: limitsFromEnv(env),
    skipJudged: ctx.force ? undefined : { index, judge },
    recordIndex: index,
  };
  const add = (t: Totals) => {
    state.totals.skipped_not_judgeable += t.skipped;
    state.totals.skipped_already_judged += t.alreadyJudged;
    state.totals.dead_lettered += t.deadLettered;
  };
  const total = ctx.ranges.reduce((n, r) => n + Number(r.end - r.start), 0);
  const progress = new Progress("reading", total);
  const complete = await readRange(
    ctx,
    `tracesift-replay-batch-${ctx.name}`,
    true,
    async (messages, partition) => {
      add(await handleChunk(messages, ctx.topic, partition, pipeline));
      state.totals.events_read += messages.length;
      save();
      progress.update(state.totals.events_read, "");
    },
    signal,
  );
  progress.done();
  if (!complete) return false;
  for (;;) {
    const ready = await pipeline.assembler.claimDue(500, { all: true });
    if (ready.length === 0) break;
    add(await emitReady(ready, pipeline));
  }
  await producer.flush();
  state.collected = true;
  save();
  return true;
}

/** The jobs file, deduplicated by result id (a conversation claimed twice is written twice). */
function loadJobs(path: string, judge: { model: string; prompt_version: string }): Map<string, JudgeJob> {
  const jobs = new Map<string, JudgeJob>();
  let text = "";
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const job = JudgeJob.parse(JSON.parse(line));
    jobs.set(judgedResultId(job.conversation.id, job.version, judge), job);
  }
  return jobs;
}

async function dryRun(ctx: ReplayContext, judge: { model: string; prompt_version: string }, live: TokenPrice, batch: TokenPrice): Promise<number> {
  const e = await estimateRange(ctx, judge, `tracesift-dryrun-batch-${ctx.name}-${Date.now()}`);
  const { usage } = e;
  const summary = {
    events_read: e.read,
    conversations_to_judge: e.conversations,
    already_judged: e.alreadyJudged,
    not_judgeable: e.notJudgeable,
    skipped_by_selection: e.skipped,
    dead_letters: e.deadLettered,
    estimated_prompt_tokens: usage.prompt_tokens,
    estimated_cached_prompt_tokens: usage.cached_prompt_tokens,
    estimated_completion_tokens: usage.completion_tokens,
    estimated_cost_usd_live: Number(callCostUsd(usage, 0, live).toFixed(6)),
    estimated_cost_usd_batch: Number(batchCostUsd(usage, batch).toFixed(6)),
    model: judge.model,
  };
  process.stdout.write(`\nDry run (no model calls), live and batch prices:\n${Object.entries(summary).map(([k, v]) => `  ${k.padEnd(32)} ${v}`).join("\n")}\n`);
  process.stdout.write(`DRY-RUN ${JSON.stringify(summary)}\n`);
  return 0;
}

function finish(state: BatchState, run: RunTotals, code: number): number {
  const summary = {
    events_read: state.totals.events_read,
    judged: run.judged,
    skipped_already_judged: state.totals.skipped_already_judged + run.already_published,
    skipped_not_judgeable: state.totals.skipped_not_judgeable,
    dead_lettered: state.totals.dead_lettered + run.fallback_dead_lettered,
    invalid_answers: run.invalid,
    resubmitted: run.resubmitted,
    sent_to_live_queue: run.fallback_live,
    batch_jobs: state.chunks.length,
    cost_usd: Number(run.cost_usd.toFixed(6)),
    cost_usd_at_live_price: Number(run.live_price_usd.toFixed(6)),
    complete: code === 0,
  };
  process.stdout.write(`\nBatch replay totals:\n${Object.entries(summary).map(([k, v]) => `  ${k.padEnd(24)} ${v}`).join("\n")}\n`);
  process.stdout.write(`BATCH ${JSON.stringify(summary)}\n`);
  return code;
}

function tokenPriceOf(price: unknown): TokenPrice | undefined {
  const parsed = TokenPriceSchema.safeParse(price);
  return parsed.success ? parsed.data : undefined;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

