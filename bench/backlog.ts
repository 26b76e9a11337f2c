/**
 * bench/backlog: what a backfill costs Redis. Queues conversations of two sizes with the workers
 * stopped (as ingest and replay enqueue them), then drains the queue with workers that decode each
 * job and record it in the result index as the judge does, and prints Redis bytes per queued
 * conversation against its JSON and gzip sizes, peak and after-drain memory, and the drain rate.
 * A second phase sets `maxmemory` just above use and keeps producing under backpressure while the
 * workers drain: nothing may be lost, nothing processed twice, and production resumes by itself.
 *
 * It runs its own redis-server (no persistence) on a free port: the shared Redis's memory figures
 * would include everyone else's keys, and its configuration is not ours to change.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { gzipSync } from "node:zlib";
import { createJudgeQueue, createRedis, decodeJudgeJob, enqueueJudgeJobs, judgeJobOptions, watchBackpressure } from "@tracesift/queue";
import { type JudgedResult, judgedResultId } from "@tracesift/schemas";
import { Worker } from "bullmq";
import type { Redis } from "ioredis";
import { freePort, makeConversation, makeJudgeJob, parseFlags, printTable, rng, writeFigures } from "./lib/common.ts";

const flags = parseFlags("bench/backlog.ts", {
  small: { default: 50_000, help: "conversations of --small-kb" },
  "small-kb": { default: 5, help: "size of the small conversations (KB of message text)" },
  large: { default: 10_000, help: "conversations of --large-kb" },
  "large-kb": { default: 50, help: "size of the large conversations" },
  concurrency: { default: 32, help: "drain workers' concurrency" },
  "full-n": { default: 2_000, help: "conversations produced against a nearly full Redis (0 skips that phase)" },
  tag: { default: "", help: "writes backlog-<tag>.json" },
});

const port = await freePort();
const server: ChildProcess = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"], { stdio: "ignore" });
const stopServer = () => server.kill("SIGTERM");
process.on("exit", stopServer);
const url = `redis://127.0.0.1:${port}`;
const redis = createRedis(url, "producer");
redis.on("error", () => undefined); // refused connections while our redis-server starts
await new Promise((r) => setTimeout(r, 300));
for (let i = 0; i < 50 && (await redis.ping().catch(() => null)) !== "PONG"; i++) await new Promise((r) => setTimeout(r, 100));

const usedMemory = async (r: Redis = redis) => Number(/^used_memory:(\d+)/m.exec(await r.info("memory"))?.[1] ?? 0);
const queue = createJudgeQueue(redis, { QUEUE_PREFIX: "bench", JUDGE_QUEUE: "judge" });
const judge = { model: "bench-model", prompt_version: "bench" };
const random = rng(7);

type Sizes = { n: number; json: number; gzip: number };
/** Enqueues `n` conversations of `kb` in chunks of 200 (ingest's CHUNK_SIZE), v2 (compact) or v1. */
async function fill(n: number, kb: number, offset: number, compact = true): Promise<Sizes> {
  const sizes: Sizes = { n, json: 0, gzip: 0 };
  for (let i = 0; i < n; i += 200) {
    const jobs = Array.from({ length: Math.min(200, n - i) }, (_, k) => {
      const id = `conv-${offset + i + k}`;
      return { ...makeJudgeJob(makeConversation(id, random, kb * 1000), offset + i + k), priority: "backfill" as const };
    });
    for (const j of jobs) {
      const json = JSON.stringify(j);
      sizes.json += json.length;
      sizes.gzip += gzipSync(json).length;
    }
    if (compact) await enqueueJudgeJobs(queue, jobs);
    else await queue.addBulk(jobs.map((data) => ({ name: "judge", data, opts: judgeJobOptions(data) })));
  }
  return sizes;
}

/** Drain workers: decode the job and record it in the result index, as the judge worker does. */
const seen = new Map<string, number>();
function startDrain(): Worker {
  return new Worker(
    "judge",
    async (job) => {
      const decoded = decodeJudgeJob(job.data);
      if (!decoded.ok) throw new Error(decoded.error);
      const { conversation, version, source, priority } = decoded.job;
      seen.set(conversation.id, (seen.get(conversation.id) ?? 0) + 1);
      const result: JudgedResult = {
        schema_version: 1,
        result_id: judgedResultId(conversation.id, version, judge),
        status: "judged",
        conversation_id: conversation.id,
        conversation_version: version,
        metadata: conversation.metadata,
        source,
        priority,
        verdict: { perceived_error: false, reason: "bench" },
        judge,
        usage: { prompt_tokens: 1, cached_prompt_tokens: 0, completion_tokens: 1, total_tokens: 2 },
        cost_usd: 0,
        latency_ms: 0,
        attempts: 1,
        judged_at: new Date().toISOString(),
      };
      // The index entry a judged conversation leaves behind (ids only, with the index's TTL).
      await redis.set(`bench:results:${result.result_id}`, "1", "EX", 90 * 86_400);
    },
    { connection: createRedis(url, "worker"), prefix: "bench", concurrency: flags.concurrency },
  );
}
const waitDrained = async () => {
  for (;;) {
    const c = await queue.getJobCounts("wait", "prioritized", "active", "delayed");
    if (Object.values(c).every((v) => v === 0)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
};

// Phase 0: per-job cost of v1 (uncompressed) vs v2 (compact) jobs on a sample, for the comparison.
const rows: [string, string][] = [];
const figures: Record<string, unknown> = { flags };
const perJob = async (kb: number, n: number, compact: boolean) => {
  const before = await usedMemory();
  const s = await fill(n, kb, compact ? 1e8 : 2e8, compact);
  const bytes = ((await usedMemory()) - before) / n;
  await queue.obliterate({ force: true });
  return { bytes, json: s.json / n, gzip: s.gzip / n };
};
for (const kb of [flags["small-kb"], flags["large-kb"]]) {
  const v1 = await perJob(kb, kb >= 20 ? 1_000 : 5_000, false);
  rows.push([`before: v1 (uncompressed) job, ${kb} KB`, `${v1.bytes.toFixed(0)} B (${(v1.bytes / v1.json).toFixed(2)}× JSON ${v1.json.toFixed(0)} B)`]);
  figures[`v1_${kb}kb`] = v1;
}
// Fill the queue's fixed keys (meta, the events stream up to its cap) so they are not charged to jobs.
await fill(10_000, 1, 3e8);
await queue.drain(true);

// Phase 1: the backlog, workers stopped.
const baseline = await usedMemory();
const t0 = Date.now();
const small = await fill(flags.small, flags["small-kb"], 0);
const afterSmall = await usedMemory();
const large = await fill(flags.large, flags["large-kb"], flags.small);
const peak = await usedMemory();
const fillSeconds = (Date.now() - t0) / 1000;
const perSmall = (afterSmall - baseline) / flags.small;
const perLarge = (peak - afterSmall) / flags.large;
const line = (per: number, s: Sizes) =>
  `${per.toFixed(0)} B = ${(per / (s.json / s.n)).toFixed(2)}× JSON (${(s.json / s.n).toFixed(0)} B), ${(per / (s.gzip / s.n)).toFixed(2)}× gzip (${(s.gzip / s.n).toFixed(0)} B); target gzip + 1.5 KB = ${(s.gzip / s.n + 1536).toFixed(0)} B`;
rows.push([`Redis per queued ${flags["small-kb"]} KB conversation`, line(perSmall, small)]);
rows.push([`Redis per queued ${flags["large-kb"]} KB conversation`, line(perLarge, large)]);

// Drain.
const tDrain = Date.now();
const worker = startDrain();
await waitDrained();
const drainSeconds = (Date.now() - tDrain) / 1000;
await worker.close();
const total = flags.small + flags.large;
const resultKeys = Number((await redis.eval("return #redis.call('keys', 'bench:results:*')", 0)) ?? 0);
const afterDrain = await usedMemory();
// What the result index alone costs: written to a scratch prefix and measured, then removed.
const indexBefore = await usedMemory();
for (let i = 0; i < total; i += 1000) {
  const p = redis.pipeline();
  for (let k = i; k < Math.min(total, i + 1000); k++) p.set(`bench:probe:${judgedResultId(`probe-${k}`, { message_count: 9, content_hash: "0123456789abcdef" }, judge)}`, "1", "EX", 86_400);
  await p.exec();
}
const indexBytes = (await usedMemory()) - indexBefore;
let cursor = "0";
do {
  const [next, keys] = await redis.scan(cursor, "MATCH", "bench:probe:*", "COUNT", 5000);
  if (keys.length > 0) await redis.del(...keys);
  cursor = next;
} while (cursor !== "0");
const overBaseline = afterDrain - baseline - indexBytes;
rows.push(["baseline (empty queue)", mb(baseline)]);
rows.push([`peak (${total} queued)`, `${mb(peak)} (+${mb(peak - baseline)}); filled in ${fillSeconds.toFixed(0)} s`]);
rows.push(["after drain", `${mb(afterDrain)}: baseline + result index (${mb(indexBytes)} for ${resultKeys} ids) ${overBaseline >= 0 ? "+" : "−"} ${mb(Math.abs(overBaseline))} (${((overBaseline / baseline) * 100).toFixed(1)}% of baseline)`]);
rows.push(["drain rate (decode + index, no model)", `${(total / drainSeconds).toFixed(0)} conversations/s (${total} in ${drainSeconds.toFixed(1)} s, concurrency ${flags.concurrency})`]);
rows.push(["processed twice / lost", `${[...seen.values()].filter((v) => v > 1).length} / ${total - seen.size}`]);
Object.assign(figures, { baseline, peak, afterDrain, indexBytes, perSmall, perLarge, small, large, drainSeconds });

// Phase 2: maxmemory just above use; the producer runs under backpressure while workers drain.
if (flags["full-n"] > 0) {
  seen.clear();
  const used = await usedMemory();
  const headroom = 12 * 1024 * 1024;
  await redis.config("SET", "maxmemory", String(used + headroom));
  const marks = { memoryHigh: 0.75, memoryLow: 0.6, queueHigh: 0, queueLow: 0 };
  let pauses = 0;
  let resumes = 0;
  let oom = 0;
  const watch = watchBackpressure({ redis, queue, marks, intervalMs: 200, onChange: (s) => (s.paused ? pauses++ : resumes++) });
  let worker2: Worker | undefined;
  // Workers start late: the producer must first hit the high mark, pause, and resume on its own.
  const starter = setTimeout(() => {
    worker2 = startDrain();
  }, 3_000);
  let produced = 0;
  let peakFull = 0;
  const offset = 5e8;
  while (produced < flags["full-n"]) {
    await watch.whenClear();
    const n = Math.min(200, flags["full-n"] - produced);
    try {
      await fill(n, flags["large-kb"], offset + produced);
      produced += n;
    } catch {
      // Refused for memory: the same chunk is produced again once memory frees (same job ids).
      oom++;
      await watch.check();
      if (!watch.state().paused) await new Promise((r) => setTimeout(r, 200));
    }
    peakFull = Math.max(peakFull, await usedMemory());
  }
  clearTimeout(starter);
  worker2 ??= startDrain();
  await waitDrained();
  await worker2.close();
  watch.stop();
  const twice = [...seen.values()].filter((v) => v > 1).length;
  const lost = flags["full-n"] - seen.size;
  rows.push([
    `full Redis (maxmemory = use + 12 MB, pause at 75%, resume below 60%)`,
    `${flags["full-n"]} × ${flags["large-kb"]} KB produced: ${lost} lost, ${twice} processed twice, ${pauses} pauses / ${resumes} automatic resumes, ${oom} writes refused for memory, peak ${((peakFull / (used + headroom)) * 100).toFixed(0)}% of maxmemory`,
  ]);
  Object.assign(figures, { full: { produced, lost, twice, pauses, resumes, oom, peakFull, maxmemory: used + headroom } });
}

printTable("bench/backlog: Redis cost of a backfill", rows);
writeFigures(flags.tag ? `backlog-${flags.tag}` : "backlog", figures);
await queue.close();
await redis.quit();
stopServer();
process.exit(0);

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
