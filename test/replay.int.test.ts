import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { ensureTopics } from "@tracesift/kafka";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { REPO_ROOT } from "../services/cli/src/fleet.ts";
import { KAFKA_BROKERS, openaiEvent, REDIS_URL, startTestFleet, type TestFleet } from "./helpers/fleet.ts";

const WAIT = { timeout: 120_000, interval: 250 };

/** Runs `tracesift replay` as a user would, with the fleet's topics and queue. */
function replay(fleet: TestFleet, args: string[]) {
  const child: ChildProcess = spawn(join(REPO_ROOT, "node_modules/.bin/tsx"), [join(REPO_ROOT, "services/cli/src/main.ts"), "replay", ...args], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      KAFKA_BROKERS,
      REDIS_URL,
      QUEUE_PREFIX: fleet.queuePrefix,
      OUTPUT_TOPIC: fleet.topics.output,
      DEAD_LETTER_TOPIC: fleet.topics.dlq,
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => {
    stdout += d;
  });
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once("exit", (code) => resolve({ code, stdout, stderr })),
  );
  return { child, exited };
}

function summary(stdout: string, tag: "REPLAY" | "DRY-RUN"): Record<string, number> {
  const line = stdout.split("\n").find((l) => l.startsWith(`${tag} `));
  if (!line) throw new Error(`no ${tag} line in:\n${stdout}`);
  return JSON.parse(line.slice(tag.length + 1));
}

const conversation = (id: string, i: number) =>
  openaiEvent(id, [["user", `Question ${i}: what is ${i} squared?`], ["assistant", `It is ${i * i + (i % 4 === 0 ? 1 : 0)}.`], ["user", i % 4 === 0 ? "That's wrong." : "Thanks!"]], {
    app: "history",
  });

describe("replay a topic for backfill", () => {
  let fleet: TestFleet;
  let historyTopic: string;
  beforeAll(async () => {
    fleet = await startTestFleet({ workers: 2, workerEnv: { JUDGE_CONCURRENCY: "4" } });
    historyTopic = `${fleet.topics.input}-history`;
    await ensureTopics(fleet.kafka, [{ topic: historyTopic, numPartitions: 3 }]);
  });
  afterAll(async () => {
    const admin = fleet.kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [historyTopic] }).catch(() => undefined);
    await admin.disconnect();
    await fleet?.stop();
  });

  it("costs zero model calls for conversations already judged live, and a second replay too", async () => {
    const events = [...Array(12)].map((_, i) => conversation(`live-${i}`, i));
    const since = new Date(Date.now() - 1_000).toISOString();
    await fleet.produce(events);
    await vi.waitFor(() => expect(fleet.records.length).toBe(events.length), WAIT);
    const calls = fleet.sim.stats().requests;

    const first = await replay(fleet, ["--topic", fleet.topics.input, "--from", since, "--metrics-port", "0"]).exited;
    expect(first.code, first.stderr).toBe(0);
    expect(summary(first.stdout, "REPLAY")).toMatchObject({ events_read: events.length, judged: 0, skipped_already_judged: events.length });
    const again = await replay(fleet, ["--topic", fleet.topics.input, "--from", since, "--name", "second", "--metrics-port", "0"]).exited;
    expect(again.code, again.stderr).toBe(0);
    expect(summary(again.stdout, "REPLAY")).toMatchObject({ judged: 0 });
    expect(fleet.sim.stats().requests).toBe(calls);
    expect(fleet.records.length).toBe(events.length);
  });

  it("estimates in a dry run within 10% of what the replay then reports, without calling the model", async () => {
    const events = [...Array(30)].map((_, i) => conversation(`estimate-${i}`, i + 100));
    const producer = fleet.kafka.producer();
    await producer.connect();
    await producer.send({ topic: historyTopic, messages: events });
    await producer.disconnect();
    const calls = fleet.sim.stats().requests;
    const tokensBefore = fleet.sim.stats().tokens;

    const dry = await replay(fleet, ["--topic", historyTopic, "--from", "0:0,1:0,2:0", "--dry-run", "--metrics-port", "0"]).exited;
    expect(dry.code, dry.stderr).toBe(0);
    const estimate = summary(dry.stdout, "DRY-RUN");
    expect(estimate.conversations_to_judge).toBe(events.length);
    expect(fleet.sim.stats().requests).toBe(calls);

    const real = await replay(fleet, ["--topic", historyTopic, "--from", "0:0,1:0,2:0", "--metrics-port", "0"]).exited;
    expect(real.code, real.stderr).toBe(0);
    const totals = summary(real.stdout, "REPLAY");
    expect(totals.judged).toBe(events.length);
    const promptTokens = fleet.sim.stats().tokens.prompt - tokensBefore.prompt;
    expect(Math.abs(estimate.estimated_prompt_tokens! - promptTokens) / promptTokens).toBeLessThan(0.1);
    expect(Math.abs(estimate.estimated_cost_usd! - totals.cost_usd!) / totals.cost_usd!).toBeLessThan(0.1);
    const backfill = fleet.records.filter((r) => r.key?.startsWith("estimate-"));
    expect(backfill).toHaveLength(events.length);
    expect(backfill.every((r) => r.topic === "output" && r.result.priority === "backfill")).toBe(true);
  });

  it("stopped midway and run again, judges every conversation of the range exactly once", async () => {
    const events = [...Array(300)].map((_, i) => conversation(`resume-${i}`, i + 1000));
    const producer = fleet.kafka.producer();
    await producer.connect();
    const admin = fleet.kafka.admin();
    await admin.connect();
    const start = await admin.fetchTopicOffsets(historyTopic);
    await producer.send({ topic: historyTopic, messages: events });
    await producer.disconnect();
    const from = start.map((p) => `${p.partition}:${p.high}`).join(",");
    const args = ["--topic", historyTopic, "--from", from, "--rate", "100", "--name", `resume-${fleet.id}`, "--metrics-port", "0"];

    const first = replay(fleet, args);
    // Stop once the replay has committed part of the range, as Ctrl-C would.
    await vi.waitFor(async () => {
      const committed = await admin.fetchOffsets({ groupId: `tracesift-replay-resume-${fleet.id}`, topics: [historyTopic] });
      const moved = committed[0]?.partitions.filter((p) => Number(p.offset) > Number(start.find((s) => s.partition === p.partition)?.high ?? 0));
      expect(moved?.length ?? 0).toBeGreaterThan(0);
    }, WAIT);
    first.child.kill("SIGINT");
    const stopped = await first.exited;
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(summary(stopped.stdout, "REPLAY").events_read).toBeLessThan(events.length);

    const second = await replay(fleet, args).exited;
    expect(second.code, second.stderr).toBe(0);
    await vi.waitFor(() => {
      const counts = fleet.countsByKey();
      for (const e of events) expect(counts.get(e.key), e.key).toBe(1);
    }, WAIT);
    await admin.disconnect();
  });

  it("serves live traffic first while a backfill runs", async () => {
    const backlog = [...Array(150)].map((_, i) => conversation(`bulk-${i}`, i + 5000));
    const producer = fleet.kafka.producer();
    await producer.connect();
    await producer.send({ topic: historyTopic, messages: backlog });
    await producer.disconnect();
    fleet.sim.configure({ latencyMs: 150 });
    const bulk = replay(fleet, ["--topic", historyTopic, "--from", new Date(Date.now() - 60_000).toISOString(), "--name", `bulk-${fleet.id}`, "--force", "--no-wait", "--metrics-port", "0"]);
    expect((await bulk.exited).code).toBe(0);
    // Live traffic arrives while ~150 backfill jobs (several seconds of work) are queued.
    const live = [...Array(10)].map((_, i) => conversation(`live-during-${i}`, i));
    for (const e of live) {
      await fleet.produce([e]);
      await new Promise((r) => setTimeout(r, 200));
    }
    await vi.waitFor(() => expect(fleet.records.filter((r) => r.key?.startsWith("bulk-")).length).toBeGreaterThanOrEqual(backlog.length), WAIT);
    const wait = (prefix: string) =>
      fleet.records
        .filter((r) => r.key?.startsWith(prefix))
        .map((r) => (r.topic === "output" && r.result.status === "judged" ? (r.result.queue_wait_ms ?? 0) : 0))
        .sort((a, b) => a - b);
    const liveWaits = wait("live-during-");
    const bulkWaits = wait("bulk-");
    expect(liveWaits).toHaveLength(live.length);
    // Stated bound: a live job waits at most about one model call (150 ms) plus scheduling, under 1 s,
    // while a backfill job waits for the queue ahead of it: its median wait is longer than the
    // longest live wait (how much longer depends on how fast this machine drains the backfill).
    expect(liveWaits.at(-1)).toBeLessThan(1_000);
    expect(bulkWaits[Math.floor(bulkWaits.length / 2)]).toBeGreaterThan(Math.max(500, liveWaits.at(-1) ?? 0));
  });
});
