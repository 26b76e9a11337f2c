/**
 * Every CLI command run the way a person runs it (`scripts/dev.sh cli …`) against something broken
 * around it: one short line on stderr naming what is unreachable or missing, a non-zero exit, and
 * both within a bound. Also Ctrl-C through the wrapper, the long-lived fleet, and redrive's once-per-event.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { createKafka, ensureTopics, type Kafka } from "@tracesift/kafka";
import { createLogger } from "@tracesift/runtime";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { REPO_ROOT } from "../services/cli/src/fleet.ts";
import { dropKeys } from "../services/cli/src/replay.ts";
import { freePort, KAFKA_BROKERS, openaiEvent, REDIS_URL } from "./helpers/fleet.ts";

type Exit = { code: number | null; stdout: string; stderr: string; ms: number };

/** `scripts/dev.sh cli <args>` in its own process group, as a terminal runs it (Ctrl-C goes to the group). */
function cli(args: string[], env: { [k: string]: string } = {}): { child: ChildProcess; exited: Promise<Exit>; output: () => string } {
  const started = Date.now();
  const child = spawn("bash", [join(REPO_ROOT, "scripts/dev.sh"), "cli", ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, KAFKA_BROKERS, REDIS_URL, LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => {
    stdout += d;
  });
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<Exit>((resolve) => child.once("exit", (code) => resolve({ code, stdout, stderr, ms: Date.now() - started })));
  return { child, exited, output: () => stdout };
}

/** The failure contract: exit 1, exactly one stderr line matching `line`, within `withinMs` (tsx start-up included). */
async function expectFailure(args: string[], env: { [k: string]: string }, line: RegExp, withinMs: number): Promise<void> {
  const run = cli(args, env);
  const timer = setTimeout(() => run.child.pid && process.kill(-run.child.pid, "SIGKILL"), withinMs + 10_000);
  const r = await run.exited;
  clearTimeout(timer);
  const lines = r.stderr.trim().split("\n");
  expect(lines, `${args.join(" ")}\n${r.stderr}`).toHaveLength(1);
  expect(lines[0]).toMatch(line);
  expect(r.code, r.stderr).toBe(1);
  expect(r.ms, args.join(" ")).toBeLessThan(withinMs);
}

function summary(stdout: string, tag: string): { events_read: number; [k: string]: number } {
  const found = stdout.split("\n").find((l) => l.startsWith(`${tag} `));
  if (!found) throw new Error(`no ${tag} line in:\n${stdout}`);
  return JSON.parse(found.slice(tag.length + 1));
}

const listen = (server: Server, port = 0) =>
  new Promise<number>((resolve) =>
    server.listen(port, "127.0.0.1", () => {
      const a = server.address();
      resolve(typeof a === "object" && a ? a.port : 0);
    }),
  );

describe("CLI failures: one line, non-zero, bounded", () => {
  const id = randomUUID().slice(0, 8);
  const topic = `cli-${id}-traces`;
  const dlq = `cli-${id}-dlq`;
  const prefix = `cli-${id}`;
  let kafka: Kafka;
  let redis: Redis;
  let deadPort: number;
  let silent: Server;
  let silentPort: number;
  const base = () => ({ QUEUE_PREFIX: prefix, DEAD_LETTER_TOPIC: dlq, OUTPUT_TOPIC: `cli-${id}-judged` });

  beforeAll(async () => {
    kafka = createKafka({ KAFKA_BROKERS, KAFKA_SSL: false }, `test-cli-${id}`, createLogger({ service: "test", level: "error" }));
    await ensureTopics(kafka, [{ topic, numPartitions: 3 }, { topic: dlq, numPartitions: 1 }, { topic: `cli-${id}-judged` }, { topic: `cli-${id}-redriven`, numPartitions: 1 }]);
    redis = new Redis(REDIS_URL);
    deadPort = await freePort();
    // Accepts connections and never answers: what a firewalled or hung broker looks like.
    silent = createServer(() => undefined);
    silentPort = await listen(silent);
  });
  afterAll(async () => {
    silent?.close();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic, dlq, `cli-${id}-judged`, `cli-${id}-redriven`] }).catch(() => undefined);
    await admin.disconnect();
    await dropKeys(redis, prefix);
    await redis.quit();
  });

  it("names an unreachable Kafka broker in one line within seconds, for every Kafka command", async () => {
    const env = { ...base(), KAFKA_BROKERS: `127.0.0.1:${deadPort}` };
    const line = new RegExp(`^tracesift \\S+: cannot reach Kafka at 127\\.0\\.0\\.1:${deadPort} \\(.*ECONNREFUSED`);
    const [basePort, simPort] = [await freePort(), await freePort()];
    await Promise.all([
      expectFailure(["replay", "--topic", topic, "--from", "0:0"], env, line, 15_000),
      expectFailure(["replay", "--topic", topic, "--from", "0:0", "--dry-run"], env, line, 15_000),
      expectFailure(["redrive"], env, line, 15_000),
      expectFailure(["demo"], env, line, 15_000),
      expectFailure(["fleet", "--base-port", String(basePort), "--sim-port", String(simPort)], env, line, 15_000),
    ]);
  });

  it("gives up on a broker that accepts connections but never answers after CONNECT_TIMEOUT_MS", async () => {
    const env = { ...base(), KAFKA_BROKERS: `127.0.0.1:${silentPort}`, CONNECT_TIMEOUT_MS: "1500" };
    await expectFailure(["replay", "--topic", topic, "--from", "0:0"], env, /^tracesift replay: cannot reach Kafka at .*\(no answer within 1500 ms; CONNECT_TIMEOUT_MS sets the limit\)$/, 1_500 + 4_000);
  });

  it("names an unreachable Redis in one line (a dry run no longer estimates without it)", async () => {
    const env = { ...base(), REDIS_URL: `redis://127.0.0.1:${deadPort}` };
    const line = new RegExp(`^tracesift \\S+: cannot reach Redis at redis://127\\.0\\.0\\.1:${deadPort} \\(.*ECONNREFUSED`);
    await Promise.all([
      expectFailure(["replay", "--topic", topic, "--from", "0:0", "--dry-run"], env, line, 15_000),
      expectFailure(["replay", "--topic", topic, "--from", "0:0"], env, line, 15_000),
      expectFailure(["redrive"], env, line, 15_000),
    ]);
  });

  it("names a missing topic", async () => {
    await Promise.all([
      expectFailure(["replay", "--topic", `${topic}-missing`, "--from", "0:0"], base(), new RegExp(`^tracesift replay: topic "${topic}-missing" not found on Kafka at `), 15_000),
      expectFailure(["redrive"], { ...base(), DEAD_LETTER_TOPIC: `${dlq}-missing` }, new RegExp(`^tracesift redrive: topic "${dlq}-missing" not found`), 15_000),
    ]);
  });

  it("refuses busy ports for the fleet instead of running beside whatever holds them", async () => {
    const busy = createServer();
    const port = await listen(busy);
    try {
      await expectFailure(["fleet", "--base-port", String(port), "--sim-port", String(await freePort())], base(), new RegExp(`^tracesift fleet: port ${port} \\(collector\\) is in use`), 10_000);
    } finally {
      busy.close();
    }
  });

  it("names an unreachable model endpoint for eval instead of counting failed calls, and a missing review queue", async () => {
    const sample = join(REPO_ROOT, "services/cli/samples/eval/sample.jsonl");
    await expectFailure(
      ["eval", "--model", "m", "--base-url", `http://127.0.0.1:${deadPort}/v1`, "--dataset", sample, "--out", join(REPO_ROOT, ".cache", `eval-${id}`)],
      base(),
      new RegExp(`^tracesift eval: cannot reach the model endpoint http://127\\.0\\.0\\.1:${deadPort}/v1 of judge "m" \\(`),
      15_000,
    );
    const review = await cli(["review", "--out", `/nonexistent-${id}`]).exited;
    expect(review.code).toBe(2);
    expect(review.stderr.trim()).toBe(`tracesift review: no review queue at /nonexistent-${id}/review-queue.jsonl (tracesift label --out <dir> writes it)`);
  });

  it("prints an unknown command as such, exits 2, and --help of demo does not run the demo", async () => {
    const unknown = await cli(["frobnicate"]).exited;
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.split("\n")[0]).toBe('tracesift: unknown command "frobnicate"');
    const help = await cli(["demo", "--help"], { KAFKA_BROKERS: `127.0.0.1:${deadPort}` }).exited;
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^tracesift demo/);
  });

  it("Ctrl-C through scripts/dev.sh stops replay with its totals, and a re-run at once resumes", async () => {
    const events = [...Array(300)].map((_, i) =>
      openaiEvent(`ctrlc-${id}-${i}`, [
        ["user", `Question ${i}`],
        ["assistant", `Answer ${i}`],
        ["user", "Thanks"],
      ]),
    );
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: events });
    await producer.disconnect();
    const name = `ctrlc-${id}`;
    const args = ["replay", "--topic", topic, "--from", "0:0,1:0,2:0", "--rate", "100", "--no-wait", "--name", name, "--metrics-port", "0"];
    const admin = kafka.admin();
    await admin.connect();

    const first = cli(args, base());
    await vi.waitFor(
      async () => {
        const committed = await admin.fetchOffsets({ groupId: `tracesift-replay-${name}`, topics: [topic] });
        expect(committed[0]?.partitions.some((p) => Number(p.offset) > 0)).toBe(true);
      },
      { timeout: 30_000, interval: 100 },
    );
    const signalled = Date.now();
    if (first.child.pid) process.kill(-first.child.pid, "SIGINT");
    const stopped = await first.exited;
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(Date.now() - signalled, "stops after the current chunk").toBeLessThan(10_000);
    const partial = summary(stopped.stdout, "REPLAY");
    expect(partial.events_read).toBeGreaterThan(0);
    expect(partial.events_read).toBeLessThan(events.length);
    expect(stopped.stdout).toContain("(interrupted: run the same command to resume)");

    // At once: a consumer that left its group cleanly lets the next run reposition the group.
    const again = await cli(args, base()).exited;
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/running instances|at .*\.(js|ts):\d+/);
    const resumed = summary(again.stdout, "REPLAY").events_read;
    // Only what the first run had not committed is read again (at most one chunk per partition twice).
    expect(resumed).toBeLessThanOrEqual(events.length - partial.events_read + 3 * 25);
    expect(partial.events_read + resumed).toBeGreaterThanOrEqual(events.length);
    // The resumed bar counts from where the first run stopped, so it ends at the whole range.
    expect(again.stderr).toMatch(new RegExp(`reading +${events.length}/${events.length} .*finished`));
    // The range is done: its assembly buffer (a copy of every conversation) is gone from Redis.
    expect((await redis.scan("0", "MATCH", `${prefix}:replay:${name}:*`, "COUNT", 10_000))[1]).toEqual([]);
    await admin.disconnect();
  });

  it("scripts/dev.sh cli fleet runs the fleet until Ctrl-C, printing ports and logs, and stops cleanly", async () => {
    const topics = { INPUT_TOPICS: `${topic}-fleet-in`, OUTPUT_TOPIC: `${topic}-fleet-out`, DEAD_LETTER_TOPIC: `${topic}-fleet-dlq` };
    const [basePort, simPort] = [await freePort(), await freePort()];
    const fleet = cli(["fleet", "--workers", "1", "--base-port", String(basePort), "--sim-port", String(simPort)], {
      ...topics,
      QUEUE_PREFIX: `${prefix}-fleet`,
      CONSUMER_GROUP: `${prefix}-fleet-ingest`,
      LOG_LEVEL: "info",
    });
    const admin = kafka.admin();
    try {
      await vi.waitFor(() => expect(fleet.output()).toContain("Ctrl-C stops the fleet"), { timeout: 90_000, interval: 250 });
      expect(fleet.output()).toContain(`http://127.0.0.1:${basePort + 2}/metrics`);
      expect(fleet.output()).toMatch(/judge-worker-1 .*\.cache\/fleet\/.*judge-worker-1\.log/);
      const producer = kafka.producer();
      await producer.connect();
      const event = openaiEvent(`fleet-${id}`, [
        ["user", "Book Dana on Tuesday"],
        ["assistant", "Booked Wednesday"],
        ["user", "No, I said Tuesday"],
      ]);
      await producer.send({ topic: topics.INPUT_TOPICS, messages: [event] });
      await producer.disconnect();
      await admin.connect();
      await vi.waitFor(
        async () => expect((await admin.fetchTopicOffsets(topics.OUTPUT_TOPIC)).reduce((n, p) => n + Number(p.high), 0)).toBe(1),
        { timeout: 60_000, interval: 250 },
      );
      const signalled = Date.now();
      if (fleet.child.pid) process.kill(-fleet.child.pid, "SIGINT");
      const stopped = await fleet.exited;
      expect(stopped.code, stopped.stderr).toBe(0);
      expect(stopped.stdout).toContain("fleet stopped");
      expect(Date.now() - signalled).toBeLessThan(35_000);
    } finally {
      if (fleet.child.exitCode === null && fleet.child.pid) process.kill(-fleet.child.pid, "SIGKILL");
      await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  it("a replay killed without leaving its group makes the next run say so in one line, not a stack", async () => {
    const killedTopic = `${topic}-killed`;
    await ensureTopics(kafka, [{ topic: killedTopic, numPartitions: 1 }]);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: killedTopic, messages: [...Array(1000)].map((_, i) => openaiEvent(`killed-${id}-${i}`, [["user", `Q${i}`], ["assistant", `A${i}`], ["user", "ok"]])) });
    await producer.disconnect();
    const name = `killed-${id}`;
    const args = ["replay", "--topic", killedTopic, "--from", "0:0", "--rate", "50", "--no-wait", "--name", name, "--metrics-port", "0"];
    const admin = kafka.admin();
    await admin.connect();
    try {
      const first = cli(args, base());
      await vi.waitFor(
        async () => {
          const committed = await admin.fetchOffsets({ groupId: `tracesift-replay-${name}`, topics: [killedTopic] });
          expect(committed[0]?.partitions.some((p) => Number(p.offset) > 0)).toBe(true);
        },
        { timeout: 30_000, interval: 100 },
      );
      if (first.child.pid) process.kill(-first.child.pid, "SIGKILL");
      await first.exited;
      await expectFailure(args, base(), new RegExp(`^tracesift replay: consumer group tracesift-replay-${name} still has a member .* run the same command again then$`), 15_000);
    } finally {
      await admin.deleteTopics({ topics: [killedTopic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  it("replay stops with one line when Redis goes away mid-run", async () => {
    // A proxy in front of the shared Redis, closed mid-run: Redis dies for the replay, not for the others.
    const sockets = new Set<Socket>();
    const redisPort = Number(new URL(REDIS_URL).port || 6379);
    const proxy = createServer((client) => {
      const upstream = connect(redisPort, new URL(REDIS_URL).hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("error", () => undefined);
        s.on("close", () => sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
    });
    const port = await listen(proxy);
    const events = [...Array(300)].map((_, i) => openaiEvent(`lost-${id}-${i}`, [["user", `Q${i}`], ["assistant", `A${i}`], ["user", "ok"]]));
    const lostTopic = `${topic}-lost`;
    await ensureTopics(kafka, [{ topic: lostTopic, numPartitions: 1 }]);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: lostTopic, messages: events });
    await producer.disconnect();
    const name = `lost-${id}`;
    const run = cli(["replay", "--topic", lostTopic, "--from", "0:0", "--rate", "50", "--no-wait", "--name", name, "--metrics-port", "0"], {
      ...base(),
      REDIS_URL: `redis://127.0.0.1:${port}`,
    });
    const admin = kafka.admin();
    await admin.connect();
    try {
      await vi.waitFor(
        async () => {
          const committed = await admin.fetchOffsets({ groupId: `tracesift-replay-${name}`, topics: [lostTopic] });
          expect(committed[0]?.partitions.some((p) => Number(p.offset) > 0)).toBe(true);
        },
        { timeout: 30_000, interval: 100 },
      );
      const lostAt = Date.now();
      proxy.close();
      for (const s of sockets) s.destroy();
      const r = await run.exited;
      // Progress lines (non-terminal: one every 5 s) may come first; the failure is one line.
      const lines = r.stderr
        .trim()
        .split("\n")
        .filter((l) => !/^reading /.test(l));
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^tracesift replay: (lost|cannot reach) Redis at redis://127\\.0\\.0\\.1:${port} `));
      expect(r.code).toBe(1);
      expect(Date.now() - lostAt).toBeLessThan(15_000);
    } finally {
      if (run.child.exitCode === null && run.child.pid) process.kill(-run.child.pid, "SIGKILL");
      await admin.deleteTopics({ topics: [lostTopic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  it("the demo runs on free ports of its own while the default ones are busy, and checks its services", { timeout: 240_000 }, async () => {
    // Whatever already listens on a default port (another fleet) is as good as our blocker.
    const blockers = await Promise.all(
      [8787, 9465, 9466, 9467].map(
        (port) =>
          new Promise<Server | null>((resolve) => {
            const s = createServer();
            s.once("error", () => resolve(null));
            s.listen(port, () => resolve(s));
          }),
      ),
    );
    const topics = { INPUT_TOPICS: `${topic}-demo-in`, OUTPUT_TOPIC: `${topic}-demo-out`, DEAD_LETTER_TOPIC: `${topic}-demo-dlq` };
    try {
      const demo = cli(["demo"], { ...topics, QUEUE_PREFIX: `${prefix}-demo`, CONSUMER_GROUP: `${prefix}-demo-ingest` });
      const timer = setTimeout(() => demo.child.pid && process.kill(-demo.child.pid, "SIGKILL"), 220_000);
      const r = await demo.exited;
      clearTimeout(timer);
      expect(r.code, `${r.stderr}\n${r.stdout.slice(-2000)}`).toBe(0);
      expect(r.stdout).toMatch(/\d+ events: [1-9]\d* judged/);
      expect(r.stdout).toContain("PERCEIVED ERROR");
    } finally {
      for (const b of blockers) b?.close();
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  it("redrive re-injects a source event once however many dead letters it has", async () => {
    const letter = (n: number) => ({
      key: "garbage",
      value: JSON.stringify({
        schema_version: 1,
        reason_code: "invalid_json",
        reason: "Unexpected token",
        stage: "ingest",
        source: { topic, partition: 0, offset: "7" },
        original_key: "garbage",
        original_base64: Buffer.from(`not json ${id}`).toString("base64"),
        failed_at: new Date(Date.now() + n).toISOString(),
      }),
    });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: dlq, messages: [letter(0), letter(1), letter(2)] });
    await producer.disconnect();
    const target = `cli-${id}-redriven`;

    const first = await cli(["redrive", "--to", target], base()).exited;
    expect(first.code, first.stderr).toBe(0);
    expect(summary(first.stdout, "REDRIVE")).toMatchObject({ read: 3, matched: 3, reinjected: 1, already: 2 });
    const second = await cli(["redrive", "--to", target], base()).exited;
    expect(summary(second.stdout, "REDRIVE")).toMatchObject({ reinjected: 0, already: 3 });

    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(target);
    await admin.disconnect();
    expect(offsets.reduce((n, p) => n + Number(p.high), 0)).toBe(1);
  });
});
