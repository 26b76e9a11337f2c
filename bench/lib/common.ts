/**
 * Shared pieces of the benchmarks: flags, workload generation, process CPU accounting, Kafka and
 * Redis helpers, and the figures table each script prints and writes to `bench/out/<name>.json`.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Admin, Kafka } from "@tracesift/kafka";
import { type Conversation, conversationVersion, type JudgeJob } from "@tracesift/schemas";
import { Redis } from "ioredis";
import { REPO_ROOT } from "../../services/cli/src/fleet.ts";

export { REPO_ROOT };
export const KAFKA_BROKERS = process.env.KAFKA_BROKERS ?? "127.0.0.1:9092";
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

// ---------------------------------------------------------------------------------------------
// Flags

export type FlagSpec = { [name: string]: { default: number | string | boolean; help: string } };
export type Flags<S extends FlagSpec> = { [K in keyof S]: S[K]["default"] extends boolean ? boolean : S[K]["default"] extends number ? number : string };

/** `--name value`, `--name=value`, `--flag` / `--no-flag` for booleans; `--help` prints the spec. */
export function parseFlags<S extends FlagSpec>(script: string, spec: S, argv = process.argv.slice(2)): Flags<S> {
  const out: Record<string, number | string | boolean> = {};
  for (const [k, v] of Object.entries(spec)) out[k] = v.default;
  const usage = () =>
    `usage: ${script} [flags]\n${Object.entries(spec)
      .map(([k, v]) => `  --${k.padEnd(18)} ${v.help} (default ${JSON.stringify(v.default)})`)
      .join("\n")}`;
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i] ?? "";
    if (arg === "--") continue;
    if (arg === "--help" || arg === "-h") {
      console.log(usage());
      process.exit(0);
    }
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${arg}\n${usage()}`);
    arg = arg.slice(2);
    let value: string | undefined;
    const eq = arg.indexOf("=");
    if (eq >= 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    let name = arg;
    let negated = false;
    if (!(name in spec) && name.startsWith("no-") && name.slice(3) in spec) {
      name = name.slice(3);
      negated = true;
    }
    const def = spec[name];
    if (!def) throw new Error(`unknown flag --${arg}\n${usage()}`);
    if (typeof def.default === "boolean") {
      out[name] = value === undefined ? !negated : value === "true" || value === "1";
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value`);
    }
    if (typeof def.default === "number") {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${value}`);
      out[name] = n;
    } else out[name] = value;
  }
  return out as Flags<S>;
}

// ---------------------------------------------------------------------------------------------
// Workload

/** The same seed gives the same workload (mulberry32, shared with the simulator's fault draws). */
export { seededRandom as rng } from "@tracesift/fireworks-sim";

const WORDS = (
  "the meeting calendar invoice report customer order shipping refund account password schedule " +
  "Tuesday Wednesday tomorrow morning afternoon please could you book cancel move update send draft " +
  "email summary table chart numbers total budget quarter review team project deadline ticket bug " +
  "deploy server database query results error message file folder document attach share link open " +
  "close again thanks great sure here is what I found let me check that for you done booked sent"
).split(" ");

const CORRECTIONS = ["No, I said Tuesday, not Wednesday.", "That is wrong, the total should be 42.", "Not that file, the other one."];

function text(random: () => number, bytes: number): string {
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    const w = WORDS[Math.floor(random() * WORDS.length)] ?? "word";
    parts.push(w);
    n += w.length + 1;
  }
  return parts.join(" ");
}

/**
 * A judgeable multi-turn conversation whose message contents add up to about `bytes`: turns of
 * 150-1000 bytes alternating user/assistant, ending with a user reply (a third of them a correction).
 */
export function makeMessages(random: () => number, bytes: number): { role: "user" | "assistant"; content: string }[] {
  const messages: { role: "user" | "assistant"; content: string }[] = [];
  let left = Math.max(64, Math.round(bytes));
  let role: "user" | "assistant" = "user";
  while (left > 0 || messages.length < 3 || messages.at(-1)?.role !== "user") {
    const isLast = left <= 0;
    let content: string;
    if (isLast && role === "user" && random() < 1 / 3) content = CORRECTIONS[Math.floor(random() * CORRECTIONS.length)] ?? "No.";
    else content = text(random, Math.max(20, Math.min(left, 150 + Math.floor(random() * 850))));
    messages.push({ role, content });
    left -= content.length;
    role = role === "user" ? "assistant" : "user";
  }
  return messages;
}

export function makeConversation(id: string, random: () => number, bytes: number): Conversation {
  return { id, source: "openai", messages: makeMessages(random, bytes), metadata: { app: "bench" } };
}

export function makeJudgeJob(conversation: Conversation, offset: number, topic = "bench"): JudgeJob {
  return {
    conversation,
    version: conversationVersion(conversation),
    source: { topic, partition: 0, offset: String(offset), event_time: new Date().toISOString() },
    priority: "live",
    enqueued_at: new Date().toISOString(),
  };
}

/** An OpenAI-format trace event (what apps put on the `traces` topic). */
export function makeEvent(id: string, random: () => number, bytes: number): { key: string; value: string } {
  return { key: id, value: JSON.stringify({ id, metadata: { app: "bench" }, messages: makeMessages(random, bytes) }) };
}

// ---------------------------------------------------------------------------------------------
// Processes

export { freePort } from "../../services/cli/src/fleet.ts";

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** pid → [ppid, utime + stime in ticks] for every process (Linux /proc). */
function processTable(): Map<number, [number, number]> {
  const table = new Map<number, [number, number]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Fields after the command name, which is in parentheses and may contain spaces.
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ppid = Number(rest[1]);
      const cpu = Number(rest[11]) + Number(rest[12]); // utime, stime (fields 14 and 15)
      table.set(Number(entry), [ppid, cpu]);
    } catch {
      // the process exited while we looked
    }
  }
  return table;
}

/**
 * CPU ms (user + system) used so far by each root process and all its descendants: services run as
 * `tsx` wrappers whose child node process does the work, so the whole tree counts.
 */
export function treeCpuMs(roots: number[]): number {
  const table = processTable();
  const children = new Map<number, number[]>();
  for (const [pid, [ppid]] of table) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  let ticks = 0;
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    if (seen.has(pid)) continue;
    seen.add(pid);
    ticks += table.get(pid)?.[1] ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return (ticks * 1000) / ticksPerSecond();
}

/** Machine-wide CPU ms so far: [busy, total] summed over all cores (/proc/stat, idle + iowait = not busy). */
export function machineCpuMs(): [busy: number, total: number] {
  const first = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const f = first.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + (b || 0), 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const k = 1000 / ticksPerSecond();
  return [(total - idle) * k, total * k];
}

/** The pid of the local process listening on a TCP port (e.g. the Redis server or Kafka broker), if any. */
export function pidListeningOn(port: number): number[] {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      const local = f[1];
      if (!local || f[3] !== "0A") continue; // 0A = LISTEN
      if (Number.parseInt(local.split(":").at(-1) ?? "", 16) === port && f[9]) inodes.add(f[9]);
    }
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      for (const fd of readdirSync(`/proc/${entry}/fd`)) {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/fd/${fd}`));
        if (m?.[1] && inodes.has(m[1])) {
          pids.push(Number(entry));
          break;
        }
      }
    } catch {
      // not ours to read, or gone
    }
  }
  return pids;
}

/** Waits (at most `maxWaitMs`) until the machine is less than `maxBusy` busy over a 2 s sample; returns the last share. */
export async function waitForQuiet(maxBusy: number, maxWaitMs: number): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const [b0, t0] = machineCpuMs();
    await sleep(2000);
    const [b1, t1] = machineCpuMs();
    const busy = (b1 - b0) / Math.max(1, t1 - t0);
    if (busy < maxBusy || Date.now() > deadline) return busy;
  }
}

/** This process's CPU ms so far (user + system). */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

// ---------------------------------------------------------------------------------------------
// Kafka and Redis

/** Produces events in requests of at most ~900 KB (the broker takes 4 MB batches, kafkajs one per partition). */
export async function produceAll(kafka: Kafka, topic: string, events: { key: string; value: string }[]): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    let batch: { key: string; value: string }[] = [];
    let bytes = 0;
    for (const e of events) {
      if (batch.length > 0 && bytes + e.value.length > 900_000) {
        await producer.send({ topic, acks: -1, messages: batch });
        batch = [];
        bytes = 0;
      }
      batch.push(e);
      bytes += e.value.length;
    }
    if (batch.length > 0) await producer.send({ topic, acks: -1, messages: batch });
  } finally {
    await producer.disconnect();
  }
}

/**
 * Polls `count()` every `pollMs` until it reaches `target`; returns the count and when it was read
 * (performance.now()). Throws after `timeoutMs`, naming `what`.
 */
export async function waitForCount(what: string, target: number, count: () => Promise<number>, timeoutMs: number, pollMs = 20): Promise<{ count: number; at: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await count();
    if (c >= target) return { count: c, at: performance.now() };
    if (Date.now() > deadline) throw new Error(`${what}: ${c}/${target} after ${timeoutMs / 1000} s`);
    await sleep(pollMs);
  }
}

/** Records on each topic (sum over partitions of high - low watermark; no transactions here). */
export async function topicCounts(admin: Admin, topics: string[]): Promise<number[]> {
  return Promise.all(
    topics.map(async (topic) => {
      const offsets = await admin.fetchTopicOffsets(topic);
      return offsets.reduce((sum, p) => sum + (Number(p.high) - Number(p.low)), 0);
    }),
  );
}

/** Reads a whole topic (up to its current end) and returns the values; bounded by `timeoutMs`. */
export async function readTopic(kafka: Kafka, topic: string, timeoutMs = 20_000): Promise<{ key: string | null; value: string; headers: Record<string, string> }[]> {
  const admin = kafka.admin();
  await admin.connect();
  const [expected = 0] = await topicCounts(admin, [topic]);
  await admin.disconnect();
  if (expected === 0) return [];
  const groupId = `bench-read-${Math.random().toString(36).slice(2, 10)}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  const out: { key: string | null; value: string; headers: Record<string, string> }[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let done: () => void = () => undefined;
    const finished = new Promise<void>((r) => {
      done = r;
    });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = Array.isArray(v) ? String(v[0]) : String(v);
        out.push({ key: message.key?.toString("utf8") ?? null, value: message.value?.toString("utf8") ?? "", headers });
        if (out.length >= expected) done();
      },
    });
    await Promise.race([finished, new Promise((r) => setTimeout(r, timeoutMs))]);
  } finally {
    await consumer.disconnect();
    const a = kafka.admin();
    await a.connect();
    await a.deleteGroups([groupId]).catch(() => undefined);
    await a.disconnect();
  }
  return out;
}

export async function deleteTopicsAndGroups(kafka: Kafka, topics: string[], groups: string[] = []): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 10_000 }).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
}

/** Deletes every key under `prefix:` (SCAN, not KEYS). Returns how many. */
export async function deleteRedisPrefix(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  let deleted = 0;
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== "0");
  } finally {
    await redis.quit();
  }
  return deleted;
}

// ---------------------------------------------------------------------------------------------
// Prometheus text (the workers' /metrics)

/** Sums a histogram's cumulative buckets over every series and endpoint: le → count. */
export async function scrapeHistogram(urls: string[], name: string): Promise<Map<number, number>> {
  const buckets = new Map<number, number>();
  for (const url of urls) {
    const text = await fetch(url)
      .then((r) => r.text())
      .catch(() => "");
    for (const line of text.split("\n")) {
      if (!line.startsWith(`${name}_bucket{`)) continue;
      const le = /le="([^"]+)"/.exec(line)?.[1];
      const value = Number(line.slice(line.lastIndexOf(" ") + 1));
      if (le === undefined || !Number.isFinite(value)) continue;
      const bound = le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le);
      buckets.set(bound, (buckets.get(bound) ?? 0) + value);
    }
  }
  return buckets;
}

/** A histogram's `_sum` and `_count`, summed over every series and endpoint. */
export async function scrapeSum(urls: string[], name: string): Promise<{ sum: number; count: number }> {
  const out = { sum: 0, count: 0 };
  for (const url of urls) {
    const text = await fetch(url)
      .then((r) => r.text())
      .catch(() => "");
    for (const line of text.split("\n")) {
      const value = Number(line.slice(line.lastIndexOf(" ") + 1));
      if (!Number.isFinite(value)) continue;
      if (line.startsWith(`${name}_sum`)) out.sum += value;
      else if (line.startsWith(`${name}_count`)) out.count += value;
    }
  }
  return out;
}

/** Upper bound of the bucket holding quantile q (Prometheus-style, no interpolation). */
export function histogramQuantile(buckets: Map<number, number>, q: number): number | null {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total === 0) return null;
  for (const [le, count] of sorted) if (count >= q * total) return le;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Figures

export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? null;
}

export type Row = [label: string, value: string, note?: string];

export function printTable(title: string, rows: Row[]): void {
  const w0 = Math.max(...rows.map((r) => r[0].length), 6);
  const w1 = Math.max(...rows.map((r) => r[1].length), 5);
  const line = `+${"-".repeat(w0 + 2)}+${"-".repeat(w1 + 2)}+`;
  console.log(`\n${title}`);
  console.log(line);
  for (const [label, value, note] of rows) {
    console.log(`| ${label.padEnd(w0)} | ${value.padStart(w1)} |${note ? ` ${note}` : ""}`);
  }
  console.log(line);
}

export function writeFigures(name: string, figures: unknown): string {
  const dir = join(REPO_ROOT, "bench/out");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(figures, null, 2)}\n`);
  return file;
}

export const fmt = {
  pct: (x: number | null) => (x === null || !Number.isFinite(x) ? "n/a" : `${(x * 100).toFixed(1)}%`),
  n: (x: number | null, digits = 0) => (x === null || !Number.isFinite(x) ? "n/a" : x.toFixed(digits)),
  s: (ms: number | null) => (ms === null || !Number.isFinite(ms) ? "n/a" : `${(ms / 1000).toFixed(2)} s`),
};

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `cleanup` once on SIGINT/SIGTERM or when `deadlineMs` passes, then exits non-zero. */
export function guard(deadlineMs: number, cleanup: () => Promise<void>): { dispose: () => void } {
  let running = false;
  const bail = async (why: string) => {
    if (running) return;
    running = true;
    console.error(`\n${why}: cleaning up`);
    await cleanup().catch((err) => console.error("cleanup failed:", err));
    process.exit(1);
  };
  const onSignal = (sig: NodeJS.Signals) => void bail(`got ${sig}`);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const timer = setTimeout(() => void bail(`time limit of ${Math.round(deadlineMs / 1000)} s reached`), deadlineMs);
  timer.unref();
  return {
    dispose() {
      clearTimeout(timer);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
