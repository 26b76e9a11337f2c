/**
 * `tracesift replay`: judge a range of a topic (backfill or re-judge after a model change).
 * It reads with its own consumer group named after the range, so the live group's offsets never
 * move and a second run with the same arguments resumes where the first stopped. Events go through
 * the same pipeline as live ingest, at backfill priority; the assembly buffer lives under the
 * replay's own Redis prefix and is flushed when every partition reached the range end.
 */
import { createHash } from "node:crypto";
import { ConversationAssembler } from "@tracesift/assembly";
import { estimatePromptTokens, PROMPT_VERSION, priceFor, PricingTable, callCostUsd } from "@tracesift/judge";
import { type Admin, BatchingProducer, createIdempotentProducer, type Kafka, KafkaEnv, type KafkaMessage } from "@tracesift/kafka";
import { ingestMetrics, initIngestSeries, replayMetrics, startReplayPush } from "@tracesift/metrics";
import { isJudgeable, mergeFragments, type TraceFragment } from "@tracesift/normalize";
import {
  applyLimits,
  classifyMessage,
  emitReady,
  handleChunk,
  limitsFromEnv,
  PipelineEnv,
  type PipelineOptions,
  selectionFromEnv,
  type Totals,
} from "@tracesift/pipeline";
import { createJudgeQueue, judgeJobId, RedisEnv } from "@tracesift/queue";
import { ResultIndex } from "@tracesift/result-index";
import { createRegistry, type Logger, parseEnv, startOpsServer } from "@tracesift/runtime";
import { conversationVersion, type JudgeJob, type TokenUsage } from "@tracesift/schemas";
import type { Redis } from "ioredis";
import { z } from "zod";
import { CliError, checkKafka, cliKafka, cliRedis, ConnectEnv } from "./connect.ts";
import type { Command } from "./main.ts";
import { Progress } from "./progress.ts";
import { parseCommandArgs, requiredArg, stringArg, UsageError } from "./usage.ts";

const HELP = `tracesift replay --topic <topic> --from <time|p:offset,...> [--to <time|p:offset,...>] [options]

Judges every conversation in a range of a topic at backfill priority, under the fleet-wide rate
limit (live traffic keeps its reserve). Conversations already judged with the same model and
prompt version are skipped. Ctrl-C stops cleanly; the same command again resumes.

  --from <x>          ISO time (2026-11-01T00:00:00Z) or partition:offset list (0:120,1:98)
  --to <x>            same forms, exclusive; default: the topic's end when the replay starts
  --dry-run           read the range and print conversations, tokens and cost it would send
  --force             judge again even what was already judged
  --no-wait           enqueue and exit instead of waiting for the verdicts and their cost
  --rate <n>          read at most n events per second (spare Kafka and Redis on a long backfill)
  --name <name>       replay name (metrics label, consumer group); default: derived from the range
  --metrics-port <n>  serve /metrics while running (default 9468; 0 = off)
  --batch             judge through the Fireworks Batch API at half price, within hours (see README, Backfill)
`;

const ReplayEnv = KafkaEnv.extend(RedisEnv.shape)
  .extend(PipelineEnv.shape)
  .extend(ConnectEnv.shape)
  .extend({
    OUTPUT_TOPIC: z.string().default("traces.judged"),
    DEAD_LETTER_TOPIC: z.string().default("traces.dlq"),
    JUDGE_MODEL: z.string().default("accounts/fireworks/models/qwen3p5-35b-a3b"),
    JUDGE_MAX_TOKENS: z.coerce.number().int().positive().default(256),
    JUDGE_PRICING: z
      .string()
      .default("{}")
      .transform((s) => PricingTable.parse(JSON.parse(s))),
    // Progress and counts are pushed here (job tracesift-replay), so Prometheus sees them without a scrape target that ends with the replay.
    PUSHGATEWAY_URL: z.string().url().optional(),
  });
type ReplayEnv = z.infer<typeof ReplayEnv>;

/** A verdict is a short JSON object; this is what dry runs assume it costs. */
const EXPECTED_COMPLETION_TOKENS = 32;

type Bound = { kind: "time"; ms: number } | { kind: "offsets"; offsets: Map<number, bigint> };
export type PartitionRange = { partition: number; start: bigint; end: bigint };

export function parseBound(value: string, flag: string): Bound {
  if (/^\d+:\d+(,\d+:\d+)*$/.test(value)) {
    return { kind: "offsets", offsets: new Map(value.split(",").map((p) => p.split(":").map(Number) as [number, number]).map(([p, o]) => [p, BigInt(o)])) };
  }
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new UsageError(`${flag}: expected an ISO time or partition:offset list, got "${value}"`);
  return { kind: "time", ms };
}

/** Per partition: [start, end) offsets of the range, resolved against the topic as it is now. */
export async function resolveRange(admin: Admin, topic: string, from: Bound, to: Bound | undefined): Promise<PartitionRange[]> {
  const watermarks = await admin.fetchTopicOffsets(topic);
  const atTime = async (ms: number) => {
    const found = await admin.fetchTopicOffsetsByTimestamp(topic, ms);
    return new Map(found.map((f) => [f.partition, BigInt(f.offset)]));
  };
  const fromOffsets = from.kind === "time" ? await atTime(from.ms) : from.offsets;
  const toOffsets = to === undefined ? undefined : to.kind === "time" ? await atTime(to.ms) : to.offsets;
  return watermarks
    .filter((w) => fromOffsets.has(w.partition))
    .map((w) => {
      const high = BigInt(w.high);
      const low = BigInt(w.low);
      // Kafka answers -1 when no message is at or after the time: the range starts (or ends) at the end.
      const clamp = (o: bigint | undefined, fallback: bigint) => (o === undefined || o < 0n ? fallback : o > high ? high : o < low ? low : o);
      const start = clamp(fromOffsets.get(w.partition), high);
      const end = clamp(toOffsets?.get(w.partition), high);
      // biome-ignore lint/complexity/useMathMinMax: offsets are bigints, Math.max does not take them
      return { partition: w.partition, start, end: end < start ? start : end };
    });
}

export const command: Command = {
  summary: "judge a range of a topic at backfill priority (--dry-run: estimate its cost)",
  run: async ({ argv, logger }) => {
    const args = parseCommandArgs(
      argv,
      {
        topic: { type: "string" },
        from: { type: "string" },
        to: { type: "string" },
        "dry-run": { type: "boolean" },
        force: { type: "boolean" },
        "no-wait": { type: "boolean" },
        name: { type: "string" },
        rate: { type: "string" },
        "metrics-port": { type: "string" },
        batch: { type: "boolean" },
      },
      HELP,
    );
    if (!args) return 0;
    const topic = requiredArg(args, "topic", HELP);
    const fromArg = requiredArg(args, "from", HELP);
    const toArg = stringArg(args, "to");
    const env = parseEnv(ReplayEnv);
    const rate = Number(stringArg(args, "rate") ?? 0);
    if (!Number.isFinite(rate) || rate < 0) throw new UsageError(`--rate: expected events per second\n\n${HELP}`);
    const kafka = cliKafka(env, "tracesift-replay", logger);
    await checkKafka(kafka, env, [topic]);
    // Checked before reading anything: a dry run without Redis cannot tell what was already judged.
    const redis = await cliRedis(env.REDIS_URL, env);
    const admin = kafka.admin();
    await admin.connect();
    let ranges: PartitionRange[];
    try {
      ranges = await resolveRange(admin, topic, parseBound(fromArg, "--from"), toArg ? parseBound(toArg, "--to") : undefined);
    } finally {
      await admin.disconnect();
    }
    const name =
      stringArg(args, "name") ??
      `${topic}-${createHash("sha256").update(JSON.stringify([topic, fromArg, toArg ?? "", ranges.map((r) => [r.partition, `${r.start}`, `${r.end}`])])).digest("hex").slice(0, 10)}`;
    const total = ranges.reduce((n, r) => n + Number(r.end - r.start), 0);
    logger.info({ name, topic, ranges: ranges.map((r) => `${r.partition}:[${r.start},${r.end})`), events: total }, "replay range");

    try {
      const options = { kafka, redis, env, logger, topic, ranges, name, force: args.values.force === true, rate };
      if (args.values.batch) return await (await import("./replay-batch.ts")).replayBatch(options, { dryRun: args.values["dry-run"] === true, metricsPort: Number(stringArg(args, "metrics-port") ?? 9468) });
      if (args.values["dry-run"]) return await dryRun(options);
      return await replay({ ...options, wait: args.values["no-wait"] !== true, metricsPort: Number(stringArg(args, "metrics-port") ?? 9468) });
    } finally {
      await redis.quit().catch(() => redis.disconnect());
    }
  },
};

export type ReplayContext = {
  kafka: Kafka;
  redis: Redis;
  env: ReplayEnv;
  logger: Logger;
  topic: string;
  ranges: PartitionRange[];
  name: string;
  force: boolean;
  /** Events per second, 0 = unthrottled. */
  rate: number;
};

/**
 * Reads each partition from its start (or the group's committed position) to its end and calls
 * `handle` per chunk; offsets are committed after `handle`, which is what makes a re-run resume.
 */
export async function readRange(
  ctx: ReplayContext,
  groupId: string,
  commit: boolean,
  handle: (messages: KafkaMessage[], partition: number) => Promise<void>,
  stopSignal: AbortSignal,
  /** Called once with the number of events a previous run of this group already read. */
  onStart: (alreadyRead: number) => void = () => undefined,
): Promise<boolean> {
  const admin = ctx.kafka.admin();
  await admin.connect();
  const positions = new Map(ctx.ranges.map((r) => [r.partition, r.start]));
  try {
    const committed = commit ? await admin.fetchOffsets({ groupId, topics: [ctx.topic] }) : [];
    for (const p of committed[0]?.partitions ?? []) {
      const range = ctx.ranges.find((r) => r.partition === p.partition);
      const at = BigInt(p.offset);
      if (range && at >= range.start && at <= range.end) positions.set(p.partition, at);
    }
    onStart(ctx.ranges.reduce((n, r) => n + Number((positions.get(r.partition) ?? r.start) - r.start), 0));
    const pending = ctx.ranges.filter((r) => (positions.get(r.partition) ?? r.start) < r.end);
    if (pending.length === 0) return true;
    await admin
      .setOffsets({
        groupId,
        topic: ctx.topic,
        partitions: pending.map((r) => ({ partition: r.partition, offset: String(positions.get(r.partition) ?? r.start) })),
      })
      .catch((err: unknown) => {
        // A run killed without leaving its group (kill -9, a lost machine) holds it until the session times out.
        if (err instanceof Error && /no running instances/i.test(err.message)) {
          throw new CliError(`consumer group ${groupId} still has a member (a run that did not stop cleanly, or one still running); Kafka drops it within 30 s: run the same command again then`);
        }
        throw err;
      });
  } finally {
    await admin.disconnect();
  }
  // Small chunks when throttled, so a stop commits often and a resume re-reads little.
  const CHUNK = ctx.rate > 0 ? Math.max(1, Math.min(200, Math.floor(ctx.rate / 4))) : 200;
  const remaining = new Set(ctx.ranges.filter((r) => (positions.get(r.partition) ?? r.start) < r.end).map((r) => r.partition));
  const consumer = ctx.kafka.consumer({
    groupId,
    maxWaitTimeInMs: 500,
    maxBytesPerPartition: Math.max(ctx.env.MAX_EVENT_BYTES * 2, 10 * 1024 * 1024),
    // kafkajs restarts a crashed consumer forever; a command reports the error and stops instead.
    retry: { retries: 2, restartOnFailure: async () => false },
  });
  await consumer.connect();
  await consumer.subscribe({ topic: ctx.topic });
  let finish: (complete: boolean) => void = () => undefined;
  let fail: (err: unknown) => void = () => undefined;
  const finished = new Promise<boolean>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => fail(payload.error));
  const onStop = () => finish(false);
  stopSignal.addEventListener("abort", onStop, { once: true });
  await consumer.run({
    eachBatchAutoResolve: false,
    autoCommit: commit,
    // Commit after every chunk (kafkajs otherwise commits at the end of a fetched batch, which can
    // be a whole partition): Ctrl-C, a crash or a kill then re-reads at most one chunk.
    autoCommitThreshold: 1,
    eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
      const range = ctx.ranges.find((r) => r.partition === batch.partition);
      if (!range || !remaining.has(batch.partition)) return;
      for (let i = 0; i < batch.messages.length; i += CHUNK) {
        if (!isRunning() || isStale() || stopSignal.aborted) return;
        const chunk = batch.messages.slice(i, i + CHUNK).filter((m) => BigInt(m.offset) < range.end);
        if (chunk.length > 0) {
          const started = Date.now();
          await handle(chunk, batch.partition);
          if (ctx.rate > 0) await new Promise((r) => setTimeout(r, Math.max(0, (chunk.length / ctx.rate) * 1000 - (Date.now() - started))));
          resolveOffset(chunk[chunk.length - 1]!.offset);
          if (commit) await commitOffsetsIfNecessary();
          await heartbeat();
        }
        const last = batch.messages[Math.min(i + CHUNK, batch.messages.length) - 1];
        if (last && BigInt(last.offset) >= range.end - 1n) {
          remaining.delete(batch.partition);
          consumer.pause([{ topic: ctx.topic, partitions: [batch.partition] }]);
          if (remaining.size === 0) finish(true);
          return;
        }
      }
    },
  });
  if (remaining.size === 0) finish(true);
  try {
    return await finished;
  } finally {
    stopSignal.removeEventListener("abort", onStop);
    // Leaving the group now is what lets the same command run again at once (a member that just
    // vanishes holds the group for the session timeout).
    await consumer.disconnect().catch(() => undefined);
  }
}

async function replay(ctx: ReplayContext & { wait: boolean; metricsPort: number }): Promise<number> {
  const { env } = ctx;
  const registry = createRegistry("replay");
  const metrics = ingestMetrics(registry);
  initIngestSeries(metrics, [ctx.topic], ctx.name);
  const ops = ctx.metricsPort > 0 ? await startOpsServer({ port: ctx.metricsPort, registry, readiness: [] }).catch(() => null) : null;
  const queue = createJudgeQueue(ctx.redis, env);
  // A lost Redis already fails the command's own calls; BullMQ's copy of the error would only add noise.
  queue.on("error", () => undefined);
  const kafkaProducer = createIdempotentProducer(ctx.kafka);
  await kafkaProducer.connect();
  const producer = new BatchingProducer(kafkaProducer);
  const index = new ResultIndex(ctx.redis, env.QUEUE_PREFIX);
  const judge = { model: env.JUDGE_MODEL, prompt_version: PROMPT_VERSION };
  const enqueued: JudgeJob[] = [];
  const suffix = ctx.force ? `-r${Date.now().toString(36)}` : "";
  const pipeline: PipelineOptions = {
    queue,
    producer,
    // Events of a replay are history: conversations are complete once the range is read, so
    // nothing is judged before the end (no idle window, no immediate formats).
    assembler: new ConversationAssembler({ redis: ctx.redis, prefix: `${env.QUEUE_PREFIX}:replay:${ctx.name}`, idleMs: Number.MAX_SAFE_INTEGER / 2, mode: "idle" }),
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
    // Skipped results and dead letters the live fleet (or an earlier replay) already wrote are not written again.
    recordIndex: index,
    jobIdSuffix: suffix,
    onEnqueued: (jobs) => enqueued.push(...jobs),
  };
  const totals: Totals = { buffered: 0, enqueued: 0, skipped: 0, alreadyJudged: 0, deadLettered: 0 };
  const add = (t: Totals) => {
    for (const k of Object.keys(totals) as (keyof Totals)[]) totals[k] += t[k];
  };
  const total = ctx.ranges.reduce((n, r) => n + Number(r.end - r.start), 0);
  let progress = new Progress("reading", total);
  const replayProgress = replayMetrics(registry);
  replayProgress.total.set({ replay: ctx.name }, total);
  replayProgress.remaining.set({ replay: ctx.name }, total);
  replayProgress.finished.set({ replay: ctx.name }, 0);
  const pusher = env.PUSHGATEWAY_URL
    ? startReplayPush({ registry, url: env.PUSHGATEWAY_URL, replay: ctx.name, onError: (err) => ctx.logger.warn({ err }, "pushing replay metrics failed") })
    : null;
  const stop = new AbortController();
  const onSigint = () => {
    if (stop.signal.aborted) {
      // A second Ctrl-C: the person does not want to wait for the chunk. The range resumes from the last commit.
      process.stderr.write("tracesift replay: stopped at once; the same command resumes from the last committed chunk\n");
      process.exit(130);
    }
    progress.note("stopping after the current chunk (Ctrl-C again to stop at once; run the same command again to resume)");
    stop.abort();
  };
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigint);
  let read = 0;
  try {
    const complete = await readRange(
      ctx,
      `tracesift-replay-${ctx.name}`,
      true,
      async (messages, partition) => {
        add(await handleChunk(messages, ctx.topic, partition, pipeline));
        read += messages.length;
        replayProgress.remaining.set({ replay: ctx.name }, Math.max(0, total - read));
        progress.update(read, `${totals.enqueued} enqueued, ${totals.deadLettered} dead-lettered`);
      },
      stop.signal,
      (already) => {
        progress = new Progress("reading", total, already);
      },
    );
    if (!complete) {
      progress.done();
      printTotals({ read, ...totals }, "(interrupted: run the same command to resume)");
      return 130;
    }
    replayProgress.finished.set({ replay: ctx.name }, 1);
    // Every partition reached the end: the buffered conversations are complete.
    for (;;) {
      const ready = await pipeline.assembler.claimDue(500, { all: true });
      if (ready.length === 0) break;
      add(await emitReady(ready, pipeline));
    }
    await producer.flush();
    progress.done();
    // The range is read and every buffered conversation emitted: the buffer is not needed to resume
    // any more, and left alone it would hold a copy of every conversation for the retention period.
    await dropKeys(ctx.redis, `${env.QUEUE_PREFIX}:replay:${ctx.name}`);

    let cost: number | string = 0;
    if (enqueued.length > 0 && !ctx.wait) cost = "(not waited for: --no-wait)";
    else if (enqueued.length > 0) {
      const ids = enqueued.map((j) => judgeJobId(j.conversation.id, j.version) + suffix);
      const judging = new Progress("judging", ids.length);
      await waitForJobs(queue, ids, (n) => judging.update(n, ""), stop.signal);
      judging.done();
      const results = await Promise.all(enqueued.map((j) => index.get({ conversationId: j.conversation.id, version: j.version, judge })));
      cost = results.reduce((s, r) => s + (r?.cost_usd ?? 0), 0);
      if (stop.signal.aborted) cost = `(interrupted while waiting: ${Number(cost.toFixed(6))} so far)`;
    }
    printTotals({ read, ...totals }, cost);
    return 0;
  } finally {
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigint);
    await producer.flush();
    await kafkaProducer.disconnect();
    await queue.close();
    await ops?.close();
    await pusher?.stop();
  }
}

async function waitForJobs(
  queue: ReturnType<typeof createJudgeQueue>,
  ids: string[],
  onProgress: (finished: number) => void,
  signal: AbortSignal,
): Promise<void> {
  let pending = ids;
  while (pending.length > 0 && !signal.aborted) {
    const states = await Promise.all(pending.map((id) => queue.getJobState(id)));
    // "unknown": completed and already removed, or never added because an identical job existed.
    pending = pending.filter((_, i) => !["completed", "failed", "unknown"].includes(states[i] as string));
    onProgress(ids.length - pending.length);
    if (pending.length > 0) await new Promise((r) => setTimeout(r, 500));
  }
}

/** What a range would cost to judge, without calling the model: shared by `--dry-run` and `--batch --dry-run`. */
export type RangeEstimate = {
  read: number;
  conversations: number;
  alreadyJudged: number;
  notJudgeable: number;
  skipped: number;
  deadLettered: number;
  /** Estimated tokens of the conversations to judge; the static instructions are cached after the first call. */
  usage: TokenUsage;
};

export async function estimateRange(ctx: ReplayContext, judge: { model: string; prompt_version: string }, groupId: string): Promise<RangeEstimate> {
  const { env } = ctx;
  const byKey = new Map<string, TraceFragment[]>();
  const e: RangeEstimate = { read: 0, conversations: 0, alreadyJudged: 0, notJudgeable: 0, skipped: 0, deadLettered: 0, usage: { prompt_tokens: 0, cached_prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 } };
  const total = ctx.ranges.reduce((n, r) => n + Number(r.end - r.start), 0);
  const progress = new Progress("reading", total);
  const selection = selectionFromEnv(env);
  await readRange(
    ctx,
    groupId,
    false,
    async (messages, partition) => {
      for (const m of messages) {
        for (const o of classifyMessage(m, ctx.topic, partition, { maxEventBytes: env.MAX_EVENT_BYTES, format: env.TOPIC_FORMATS[ctx.topic], selection })) {
          if (o.kind === "dead") e.deadLettered++;
          else if (o.kind === "skipped") e.skipped++;
          else for (const f of o.fragments) byKey.set(f.conversation_key, [...(byKey.get(f.conversation_key) ?? []), f]);
        }
      }
      e.read += messages.length;
      progress.update(e.read, `${byKey.size} conversations`);
    },
    new AbortController().signal,
  );
  progress.done();
  const index = new ResultIndex(ctx.redis, env.QUEUE_PREFIX);
  const instructions = estimatePromptTokens({ messages: [] });
  for (const fragments of byKey.values()) {
    const limited = applyLimits(mergeFragments(fragments), limitsFromEnv(env));
    if (limited.kind === "oversized") {
      e.deadLettered++;
      continue;
    }
    const c = limited.conversation;
    if (!isJudgeable(c)) {
      e.notJudgeable++;
      continue;
    }
    if (!ctx.force && (await index.has([{ conversationId: c.id, version: conversationVersion(c), judge }]))[0]) {
      e.alreadyJudged++;
      continue;
    }
    e.usage.prompt_tokens += estimatePromptTokens(c);
    // The static instructions are cached by the provider after the first call.
    e.usage.cached_prompt_tokens += e.conversations > 0 ? instructions : 0;
    e.usage.completion_tokens += EXPECTED_COMPLETION_TOKENS;
    e.conversations++;
  }
  e.usage.total_tokens = e.usage.prompt_tokens + e.usage.completion_tokens;
  return e;
}

async function dryRun(ctx: ReplayContext): Promise<number> {
  const { env } = ctx;
  const e = await estimateRange(ctx, { model: env.JUDGE_MODEL, prompt_version: PROMPT_VERSION }, `tracesift-dryrun-${ctx.name}-${Date.now()}`);
  const summary = {
    events_read: e.read,
    conversations_to_judge: e.conversations,
    already_judged: e.alreadyJudged,
    not_judgeable: e.notJudgeable,
    skipped_by_selection: e.skipped,
    dead_letters: e.deadLettered,
    estimated_prompt_tokens: e.usage.prompt_tokens,
    estimated_completion_tokens: e.usage.completion_tokens,
    estimated_cost_usd: Number(callCostUsd(e.usage, 0, priceFor(env.JUDGE_PRICING, env.JUDGE_MODEL)).toFixed(6)),
    model: env.JUDGE_MODEL,
  };
  process.stdout.write(`\nDry run (no model calls):\n${Object.entries(summary).map(([k, v]) => `  ${k.padEnd(28)} ${v}`).join("\n")}\n`);
  process.stdout.write(`DRY-RUN ${JSON.stringify(summary)}\n`);
  return 0;
}

/** Deletes every key under `prefix:` (SCAN, so Redis is never blocked by one large KEYS). */
export async function dropKeys(redis: Redis, prefix: string): Promise<number> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, "\\$&")}:*`;
  let cursor = "0";
  let dropped = 0;
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) dropped += await redis.unlink(...keys);
  } while (cursor !== "0");
  return dropped;
}

/** `cost`: USD, or why there is no figure. */
function printTotals(t: Totals & { read: number }, cost: number | string): void {
  const summary = {
    events_read: t.read,
    judged: t.enqueued,
    skipped_already_judged: t.alreadyJudged,
    skipped_not_judgeable: t.skipped,
    dead_lettered: t.deadLettered,
    cost_usd: typeof cost === "number" ? Number(cost.toFixed(6)) : null,
  };
  const shown = { ...summary, cost_usd: typeof cost === "number" ? summary.cost_usd : cost };
  process.stdout.write(`\nReplay totals:\n${Object.entries(shown).map(([k, v]) => `  ${k.padEnd(24)} ${v}`).join("\n")}\n`);
  process.stdout.write(`REPLAY ${JSON.stringify(summary)}\n`);
}
