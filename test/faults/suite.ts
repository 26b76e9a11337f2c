/**
 * The fault suite: proves that every consumed event ends as exactly one judged, skipped or
 * dead-lettered record, and that no verdict is paid twice, under the faults production meets.
 *
 * It runs its own Kafka broker and Redis (own ports, own data: faults here must not disturb
 * anything else), a fleet (ingest, two judge workers) supervised as Kubernetes would (a process
 * that exits is started again), and the simulated Fireworks behind a counting proxy that sees
 * every model call and whether its answer reached a worker. One phase per fault; after each, the
 * fleet drains and the phase's events are matched against the output and dead-letter topics.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";
import { promisify } from "node:util";
import { createSimulator, type Simulator } from "@tracesift/fireworks-sim";
import { createKafka, ensureTopics, type Kafka, type Producer } from "@tracesift/kafka";
import { createLogger } from "@tracesift/runtime";
import { DeadLetter, JudgeResult } from "@tracesift/schemas";
import { Redis } from "ioredis";
import { freePort, REPO_ROOT, type RunningService, startService, waitForHttp } from "../../services/cli/src/fleet.ts";

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type PhaseRow = {
  phase: string;
  eventsIn: number;
  judged: number;
  skipped: number;
  deadLettered: number;
  lost: number;
  duplicateRecords: number;
  /** Paid calls (answer delivered) beyond one per conversation version, excluding malformed answers. */
  paidTwice: number;
  /** Paid calls whose answer was malformed (the model's fault, retried by design). */
  paidMalformedRetries: number;
  /** Calls whose answer never reached a worker (it was killed mid-call). */
  abandonedCalls: number;
  /** Dead letters without a reason code and text. */
  lettersWithoutReason: number;
  seconds: number;
  notes: string[];
};

type Expected = { kind: "conversation"; id: string } | { kind: "garbage"; key: string };

type Options = {
  short: boolean;
  log: (line: string) => void;
};

/** Per run: the suite's broker keeps its data between runs, and records of an earlier run must not count. */
let TOPICS = { input: "faults.traces", output: "faults.judged", dlq: "faults.dlq" };

export async function runFaultSuite(options: Options): Promise<PhaseRow[]> {
  const { log } = options;
  const runId = randomUUID().slice(0, 8);
  TOPICS = { input: `faults-${runId}.traces`, output: `faults-${runId}.judged`, dlq: `faults-${runId}.dlq` };
  const home = join(REPO_ROOT, ".cache/faults");
  const logDir = join(home, "logs", runId);
  mkdirSync(logDir, { recursive: true });
  const [kafkaPort, controllerPort, redisPort] = [await freePort(), await freePort(), await freePort()];
  const broker = new Broker(join(home, "kafka"), kafkaPort, controllerPort);
  const redisServer = new RedisServer(join(home, `redis-${runId}`), redisPort, logDir);
  const cleanups: (() => Promise<void>)[] = [];
  try {
    log(`faults: starting Kafka on 127.0.0.1:${kafkaPort} and Redis on 127.0.0.1:${redisPort} (logs: ${logDir})`);
    await Promise.all([broker.up(), redisServer.start()]);
    cleanups.push(() => broker.down(), () => redisServer.stop());
    const brokers = `127.0.0.1:${kafkaPort}`;
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    const kafka = createKafka({ KAFKA_BROKERS: brokers, KAFKA_SSL: false }, `faults-${runId}`, createLogger({ service: "faults", level: "fatal" }));
    await ensureTopics(kafka, [{ topic: TOPICS.input, numPartitions: 3 }, { topic: TOPICS.output }, { topic: TOPICS.dlq }]);

    const sim = createSimulator({ latencyMs: options.short ? 150 : 300, seed: 7 });
    const { url: simUrl } = await sim.listen(0, "127.0.0.1");
    cleanups.push(() => sim.close());
    const proxy = await CountingProxy.start(simUrl);
    cleanups.push(() => proxy.close());

    const fleet = new Fleet(logDir, {
      KAFKA_BROKERS: brokers,
      REDIS_URL: redisUrl,
      QUEUE_PREFIX: "faults",
      INPUT_TOPICS: TOPICS.input,
      OUTPUT_TOPIC: TOPICS.output,
      DEAD_LETTER_TOPIC: TOPICS.dlq,
      CONSUMER_GROUP: `faults-${runId}-ingest`,
      IDLE_WINDOW_MS: "2000",
      LOG_LEVEL: "info",
      KAFKAJS_NO_PARTITIONER_WARNING: "1",
      FIREWORKS_API_KEY: "sim-key",
      JUDGE_BASE_URL: proxy.url,
      JUDGE_CONCURRENCY: "8",
      // Above the slow conversation's 5 s, so only injected timeouts time out.
      JUDGE_TIMEOUT_MS: "8000",
      JOB_LOCK_MS: "4000",
      STALLED_CHECK_MS: "2000",
      // One recovery from a dead worker, then a dead letter: the suite kills twice to reach it.
      MAX_STALLED_COUNT: "1",
      FAILED_SWEEP_MS: "1000",
      REDIS_STATE_CHECK_MS: "1000",
    });
    cleanups.push(() => fleet.stopAll());
    await fleet.start();

    const records = await RecordReader.start(kafka);
    cleanups.push(() => records.stop());
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    cleanups.push(() => producer.disconnect());

    const perPhase = options.short ? 60 : 300;
    const rows: PhaseRow[] = [];
    const ctx: PhaseContext = { kafka, producer, proxy, sim, fleet, broker, redisServer, records, perPhase, log, brokers, redisUrl };
    const phases: [string, (p: PhaseTools) => Promise<void>][] = [
      ["clean run, with 3-4 MB events", phaseClean],
      ["kill -9 ingest", phaseKillIngest],
      ["kill -9 a worker, and twice on one job", phaseKillWorker],
      ["Redis restart (kill -9) with a backlog", phaseRedisRestart],
      ...(options.short ? [] : ([["broker stop and start with a backlog", phaseBrokerRestart]] as [string, (p: PhaseTools) => Promise<void>][])),
      ["provider 429, 5xx, timeouts, malformed output", phaseProviderFaults],
      ["Redis loses everything, then tracesift recover", phaseRedisLoss],
    ];
    for (const [i, [name, body]] of phases.entries()) {
      log(`faults: phase ${i + 1}/${phases.length}: ${name}`);
      rows.push(await runPhase(ctx, `p${i + 1}`, name, body));
      log(formatRow(rows[rows.length - 1]!));
    }
    return rows;
  } finally {
    for (const c of cleanups.reverse()) await c().catch((err) => log(`faults: cleanup: ${err instanceof Error ? err.message : String(err)}`));
  }
}

type PhaseContext = {
  kafka: Kafka;
  producer: Producer;
  proxy: CountingProxy;
  sim: Simulator;
  fleet: Fleet;
  broker: Broker;
  redisServer: RedisServer;
  records: RecordReader;
  perPhase: number;
  log: (line: string) => void;
  brokers: string;
  redisUrl: string;
};

type PhaseTools = PhaseContext & {
  /** Produces `n` events of this phase (conversations, ~5% garbage, ~5% exact duplicates). */
  produceMix: (n: number, extra?: { big?: boolean; slowConversation?: boolean }) => Promise<void>;
  note: (text: string) => void;
  phaseStart: number;
  /** Conversation ids of this phase that carry `[sim:slow:…]`. */
  slowIds: string[];
};

async function runPhase(ctx: PhaseContext, tag: string, name: string, body: (p: PhaseTools) => Promise<void>): Promise<PhaseRow> {
  const started = Date.now();
  const expected: Expected[] = [];
  const notes: string[] = [];
  const slowIds: string[] = [];
  let eventsIn = 0;
  let seq = 0;
  const paidBefore = ctx.proxy.snapshot();
  const produceMix: PhaseTools["produceMix"] = async (n, extra = {}) => {
    const events: { key: string; value: string }[] = [];
    for (let i = 0; i < n; i++) {
      const k = seq++;
      if (k % 20 === 7) {
        const key = `${tag}-garbage-${k}`;
        events.push({ key, value: `not json {${k}` });
        expected.push({ kind: "garbage", key });
      } else if (k % 20 === 13 && events.length > 0) {
        // An exact duplicate of an earlier event of this batch: it must not cost a second record or call.
        const earlier = events[Math.floor(events.length / 2)]!;
        events.push({ ...earlier });
      } else {
        const id = `${tag}-c${k}`;
        events.push({ key: id, value: JSON.stringify(conversation(id, k)) });
        expected.push({ kind: "conversation", id });
      }
    }
    if (extra.big) {
      const key = `${tag}-big-garbage`;
      events.push({ key, value: `not json ${"x".repeat(3_200_000)}` });
      expected.push({ kind: "garbage", key });
      const id = `${tag}-big-conversation`;
      const huge = { id, messages: [{ role: "user", content: `[conv:${id}] ${"y".repeat(3_900_000)}` }, { role: "assistant", content: "ok" }, { role: "user", content: "wrong" }] };
      events.push({ key: id, value: JSON.stringify(huge) });
      expected.push({ kind: "conversation", id });
    }
    if (extra.slowConversation) {
      const id = `${tag}-slow`;
      slowIds.push(id);
      events.push({ key: id, value: JSON.stringify({ id, messages: [{ role: "user", content: `[conv:${id}] [sim:slow:5000] Book Dana on Tuesday` }, { role: "assistant", content: "Booked Wednesday." }, { role: "user", content: "No, I said Tuesday." }] }) });
      expected.push({ kind: "conversation", id });
    }
    eventsIn += events.length;
    // Small batches: several produce requests, as a real producer sends them.
    for (let i = 0; i < events.length; i += 50) {
      const slice = events.slice(i, i + 50);
      const bytes = slice.reduce((s, e) => s + e.value.length, 0);
      if (bytes > 3_000_000) for (const e of slice) await ctx.producer.send({ topic: TOPICS.input, acks: -1, messages: [e] });
      else await ctx.producer.send({ topic: TOPICS.input, acks: -1, messages: slice });
    }
  };
  await body({ ...ctx, produceMix, note: (t) => notes.push(t), phaseStart: started, slowIds });
  const drained = await drain(ctx, expected, ctx.perPhase > 100 ? 240_000 : 120_000);
  if (!drained) notes.push("did not drain within the time limit");
  // A settle period: late duplicates (redeliveries) must show in this phase's count.
  await sleep(1_500);
  return tally(name, eventsIn, expected, ctx, paidBefore, started, notes);
}

function conversation(id: string, k: number) {
  const corrected = k % 3 === 0;
  const nullTurn = k % 17 === 5;
  return {
    id,
    metadata: { app: "faults" },
    messages: [
      { role: "user", content: `[conv:${id}] Book a table for ${2 + (k % 5)} people on day ${k % 28}` },
      { role: "assistant", content: nullTurn ? null : `Booked a table for ${2 + (k % 5)} on day ${(k % 28) + (corrected ? 1 : 0)}.` },
      { role: "user", content: corrected ? "No, that is the wrong day, I said the other one." : "Thanks, that works." },
    ],
  };
}

async function drain(ctx: PhaseContext, expected: Expected[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (expected.every((e) => ctx.records.has(e))) return true;
    await sleep(500);
  }
  return false;
}

function tally(phase: string, eventsIn: number, expected: Expected[], ctx: PhaseContext, paidBefore: ProxyCounts, started: number, notes: string[]): PhaseRow {
  let judged = 0;
  let skipped = 0;
  let dead = 0;
  let lost = 0;
  let duplicates = 0;
  let lettersWithoutReason = 0;
  const examples: string[] = [];
  for (const e of expected) {
    const found = ctx.records.find(e);
    if (found.length === 0) {
      lost++;
      continue;
    }
    const byId = new Map<string, number>();
    for (const r of found) byId.set(r.id, (byId.get(r.id) ?? 0) + 1);
    const before = duplicates;
    for (const n of byId.values()) duplicates += n - 1;
    // Distinct records for one event beyond one (e.g. judged and dead-lettered) are duplicates too.
    duplicates += byId.size - 1;
    if (duplicates > before && examples.length < 3) examples.push(`${e.kind === "conversation" ? e.id : e.key}: ${found.map((f) => `${f.kind}:${f.id.slice(-24)}`).join(", ")}`);
    const first = found[0]!;
    if (first.kind === "judged") judged++;
    else if (first.kind === "skipped") skipped++;
    else {
      dead++;
      if (!first.reasonCode || !first.reason) lettersWithoutReason++;
    }
  }
  if (examples.length > 0) notes.push(`duplicates, e.g. ${examples.join(" | ")}`);
  const paid = ctx.proxy.snapshot();
  const extra = (counts: ProxyCounts) => [...counts.ok.values()].reduce((s, n) => s + Math.max(0, n - 1), 0);
  const sum = (m: Map<string, number>) => [...m.values()].reduce((s, n) => s + n, 0);
  return {
    phase,
    eventsIn,
    judged,
    skipped,
    deadLettered: dead,
    lost,
    duplicateRecords: duplicates,
    paidTwice: extra(paid) - extra(paidBefore),
    paidMalformedRetries: sum(paid.malformed) - sum(paidBefore.malformed),
    abandonedCalls: paid.abandoned - paidBefore.abandoned,
    lettersWithoutReason,
    seconds: Math.round((Date.now() - started) / 1000),
    notes,
  };
}

// ---------------------------------------------------------------- phases

async function phaseClean(p: PhaseTools): Promise<void> {
  await p.produceMix(p.perPhase, { big: true });
}

async function phaseKillIngest(p: PhaseTools): Promise<void> {
  const half = Math.floor(p.perPhase / 2);
  await p.produceMix(half);
  await sleep(300);
  await p.fleet.kill("ingest", "SIGKILL");
  await p.produceMix(p.perPhase - half);
  const restarted = Date.now();
  await p.fleet.waitReady("ingest");
  p.note(`ingest ready again ${((Date.now() - restarted) / 1000).toFixed(1)} s after its restart`);
}

async function phaseKillWorker(p: PhaseTools): Promise<void> {
  await p.produceMix(p.perPhase, { slowConversation: true });
  // The slow conversation's call takes 5 s: kill its worker twice while it holds the job.
  const killed = new Set<number>();
  for (let round = 1; round <= 2; round++) {
    const holder = await p.proxy.waitForCallHolder(p.slowIds[0]!, 30_000, killed);
    const victim = p.fleet.workerWithPid(holder);
    if (!victim) {
      p.note(`round ${round}: could not tell which worker held the slow job`);
      continue;
    }
    await sleep(500);
    killed.add(holder);
    await p.fleet.kill(victim, "SIGKILL");
    p.note(`round ${round}: killed ${victim} while it held the slow job`);
  }
}

async function phaseRedisRestart(p: PhaseTools): Promise<void> {
  await p.produceMix(p.perPhase);
  await sleep(1_000);
  await p.redisServer.kill();
  await sleep(2_000);
  await p.redisServer.start();
  p.note("Redis killed with -9 and restarted from its AOF");
}

async function phaseBrokerRestart(p: PhaseTools): Promise<void> {
  await p.produceMix(p.perPhase);
  await sleep(1_500);
  const stopped = Date.now();
  await p.broker.down();
  await sleep(20_000);
  await p.broker.up();
  p.note(`broker down for ${((Date.now() - stopped) / 1000).toFixed(0)} s`);
}

async function phaseProviderFaults(p: PhaseTools): Promise<void> {
  p.sim.configure({ faults: { rate429: 0.1, rate500: 0.05, rate503: 0.05, rateTimeout: 0.03, rateMalformed: 0.05 } });
  try {
    await p.produceMix(p.perPhase);
    await sleep(p.perPhase > 100 ? 15_000 : 6_000);
  } finally {
    p.sim.configure({ faults: { rate429: 0, rate500: 0, rate503: 0, rateTimeout: 0, rateMalformed: 0 } });
  }
}

async function phaseRedisLoss(p: PhaseTools): Promise<void> {
  const since = new Date(Date.now() - 1_000).toISOString();
  await p.produceMix(p.perPhase);
  await sleep(1_500);
  await p.redisServer.kill();
  p.redisServer.wipe();
  await p.redisServer.start();
  p.note("Redis killed and its data deleted");
  // The fleet notices within REDIS_STATE_CHECK_MS and logs the command to run; run it.
  await sleep(2_500);
  const started = Date.now();
  const { stdout } = await run(join(REPO_ROOT, "node_modules/.bin/tsx"), [join(REPO_ROOT, "services/cli/src/main.ts"), "recover", "--since", since], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...p.fleet.env, LOG_LEVEL: "warn" },
    timeout: 180_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  p.note(`recover took ${((Date.now() - started) / 1000).toFixed(0)} s: ${stdout.split("\n").filter((l) => l.startsWith("recover:")).join("; ")}`);
  const lost = await p.fleet.logsMention("Redis lost the fleet's state");
  p.note(lost ? "the fleet logged that Redis lost its state" : "no service logged that Redis lost its state");
}

// ---------------------------------------------------------------- the pieces

/** Kafka for the suite alone, through the project's own script (second home, own ports; no JMX
 * exporter, whose port the shared broker holds). */
class Broker {
  constructor(
    private readonly home: string,
    private readonly port: number,
    private readonly controllerPort: number,
  ) {}

  private env() {
    return { ...process.env, TRACESIFT_KAFKA_HOME: this.home, TRACESIFT_KAFKA_DATA: join(this.home, "data"), KAFKA_PORT: String(this.port), KAFKA_CONTROLLER_PORT: String(this.controllerPort), KAFKA_HEAP: "384m", KAFKA_JMX_EXPORTER_PORT: "0" };
  }

  async up(): Promise<void> {
    await run(join(REPO_ROOT, "scripts/services.sh"), ["up", "kafka"], { env: this.env(), timeout: 240_000 });
  }

  async down(): Promise<void> {
    await run(join(REPO_ROOT, "scripts/services.sh"), ["down", "kafka"], { env: this.env(), timeout: 120_000 });
  }
}

/** redis-server with AOF everysec, as production is documented, on the suite's own port and dir. */
class RedisServer {
  private child: ChildProcess | null = null;
  constructor(
    private readonly dir: string,
    private readonly port: number,
    private readonly logDir: string,
  ) {}

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    this.child = spawn(
      "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", "--dir", this.dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction", "--logfile", join(this.logDir, "redis.log")],
      { stdio: "ignore" },
    );
    const redis = new Redis({ port: this.port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    redis.on("error", () => undefined);
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await redis.connect();
        await redis.ping();
        redis.disconnect();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not start`);
        await sleep(100);
      }
    }
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  }

  wipe(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  async stop(): Promise<void> {
    await this.kill();
    this.wipe();
  }
}

/** The fleet, supervised: a service that exits is started again after a second, as Kubernetes would. */
class Fleet {
  private readonly running = new Map<string, { service: RunningService; port: number }>();
  private stopping = false;
  readonly env: Record<string, string>;

  constructor(
    private readonly logDir: string,
    env: Record<string, string>,
  ) {
    this.env = env;
  }

  async start(): Promise<void> {
    await Promise.all([this.launch("ingest"), this.launch("judge-worker-1"), this.launch("judge-worker-2")]);
  }

  private async launch(name: string): Promise<void> {
    const port = this.running.get(name)?.port ?? (await freePort());
    const service = startService({
      service: name === "ingest" ? "ingest" : "judge-worker",
      name,
      env: { ...this.env, METRICS_PORT: String(port) },
      logDir: this.logDir,
    });
    this.running.set(name, { service, port });
    void service.exited.then(async () => {
      if (this.stopping || this.running.get(name)?.service !== service) return;
      await sleep(1_000);
      if (!this.stopping) await this.launch(name);
    });
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000, service).catch(() => undefined);
  }

  async waitReady(name: string): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const entry = this.running.get(name);
      if (entry) {
        const ok = await fetch(`http://127.0.0.1:${entry.port}/readyz`).then((r) => r.ok, () => false);
        if (ok) return;
      }
      await sleep(200);
    }
    throw new Error(`${name} not ready after 60 s`);
  }

  /** Kills the service's whole process tree (tsx runs the service in a child node process). */
  async kill(name: string, signal: NodeJS.Signals): Promise<void> {
    const entry = this.running.get(name);
    const root = entry?.service.child.pid;
    if (!entry || !root) return;
    for (const pid of [...descendants(root), root]) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
    await entry.service.exited;
  }

  /** Which service a process (or one of its ancestors) is. */
  workerWithPid(pid: number): string | undefined {
    for (const [name, { service }] of this.running) {
      const root = service.child.pid;
      if (root && (root === pid || descendants(root).includes(pid))) return name;
    }
    return undefined;
  }

  async logsMention(text: string): Promise<boolean> {
    const { readFile } = await import("node:fs/promises");
    for (const { service } of this.running.values()) {
      const body = await readFile(service.logFile, "utf8").catch(() => "");
      if (body.includes(text)) return true;
    }
    return false;
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.running.values()].map(({ service }) => service.stop("SIGTERM")));
  }
}

type ProxyCounts = { ok: Map<string, number>; malformed: Map<string, number>; abandoned: number };

/**
 * Sits between the workers and the simulator and counts, per conversation (the `[conv:<id>]`
 * marker in its first message), the calls whose answer reached the worker: valid verdicts and
 * malformed ones apart. A call whose worker was killed before the answer is "abandoned".
 */
class CountingProxy {
  private readonly ok = new Map<string, number>();
  private readonly malformed = new Map<string, number>();
  private abandoned = 0;
  /** Conversation id → pid of the worker process holding a call for it right now. */
  private readonly holders = new Map<string, number>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: string): Promise<CountingProxy> {
    const holder: { proxy?: CountingProxy } = {};
    const server = createServer((req, res) => void holder.proxy?.handle(req, res, target));
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address();
    const port = typeof addr === "object" && addr ? addr.port : 0;
    holder.proxy = new CountingProxy(server, `http://127.0.0.1:${port}/inference/v1`);
    return holder.proxy;
  }

  private async handle(req: IncomingMessage, res: ServerResponse, target: string): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const conv = /\[conv:([^\]\s]+)\]/.exec(body.toString("utf8"))?.[1];
    // Which worker holds a slow call (the one the suite kills): one `ss` call, only for those.
    if (conv && body.includes("[sim:slow:")) {
      const pid = await pidOfPeer(req.socket.remotePort ?? 0);
      if (pid) this.holders.set(conv, pid);
    }
    let closed = false;
    res.once("close", () => {
      closed = !res.writableFinished;
    });
    try {
      const upstream = await fetch(`${target.replace(/\/inference\/v1$/, "")}${req.url}`, {
        method: req.method ?? "POST",
        headers: Object.fromEntries(Object.entries(req.headers).filter(([k, v]) => typeof v === "string" && !["host", "connection", "content-length"].includes(k)) as [string, string][]),
        ...(body.length > 0 ? { body } : {}),
      });
      const text = await upstream.text();
      if (conv) this.holders.delete(conv);
      if (closed || req.socket.destroyed) {
        if (upstream.status === 200) this.abandoned++;
        return;
      }
      if (conv && upstream.status === 200) {
        const valid = isVerdict(text);
        const map = valid ? this.ok : this.malformed;
        map.set(conv, (map.get(conv) ?? 0) + 1);
      }
      const headers: Record<string, string> = {};
      upstream.headers.forEach((v, k) => {
        if (!["content-length", "transfer-encoding", "connection", "content-encoding"].includes(k)) headers[k] = v;
      });
      res.writeHead(upstream.status, headers);
      res.end(text);
    } catch {
      if (!res.headersSent && !closed) {
        res.writeHead(502);
        res.end();
      }
    }
  }

  snapshot(): ProxyCounts {
    return { ok: new Map(this.ok), malformed: new Map(this.malformed), abandoned: this.abandoned };
  }

  /** The pid of the process that holds a call for `conv` now, other than `exclude` (already killed). */
  async waitForCallHolder(conv: string, timeoutMs: number, exclude: ReadonlySet<number>): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const pid = this.holders.get(conv);
      if (pid && !exclude.has(pid)) return pid;
      await sleep(100);
    }
    throw new Error(`no call for ${conv} within ${timeoutMs} ms`);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

function isVerdict(body: string): boolean {
  try {
    const content = JSON.parse(body)?.choices?.[0]?.message?.content;
    const v = JSON.parse(String(content));
    return typeof v?.perceived_error === "boolean" && typeof v?.reason === "string" && Object.keys(v).length === 2;
  } catch {
    return false;
  }
}

/** Every process below `root`, from /proc (Linux). */
function descendants(root: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after the command name (which may hold spaces) start after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(Number(entry), ppid);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const [child, parent] of parents) {
      if (parent === pid) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(root);
  return out;
}

/** The process on the other end of a local TCP connection, from /proc (Linux). */
async function pidOfPeer(port: number): Promise<number | undefined> {
  try {
    const { stdout } = await run("ss", ["-tnpH", "sport", `= :${port}`]);
    const m = /pid=(\d+)/.exec(stdout);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

type FoundRecord = { id: string; kind: "judged" | "skipped" | "dead"; reasonCode?: string; reason?: string };

/** Everything on the output and dead-letter topics, indexed by conversation id and original key. */
class RecordReader {
  private readonly byConversation = new Map<string, FoundRecord[]>();
  private readonly byKey = new Map<string, FoundRecord[]>();
  private constructor(private readonly stopFn: () => Promise<void>) {}

  static async start(kafka: Kafka): Promise<RecordReader> {
    const consumer = kafka.consumer({ groupId: `faults-reader-${randomUUID().slice(0, 8)}`, maxWaitTimeInMs: 200, maxBytesPerPartition: 10 * 1024 * 1024 });
    const reader = new RecordReader(async () => {
      await consumer.disconnect();
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [TOPICS.output, TOPICS.dlq], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, message }) => {
        const value = JSON.parse(message.value?.toString("utf8") ?? "null");
        if (topic === TOPICS.output) {
          const r = JudgeResult.parse(value);
          reader.add(reader.byConversation, r.conversation_id, { id: r.result_id, kind: r.status === "judged" ? "judged" : "skipped" });
        } else {
          const l = DeadLetter.parse(value);
          const rec: FoundRecord = { id: l.dead_letter_id ?? `no-id-${randomUUID()}`, kind: "dead", reasonCode: l.reason_code, reason: l.reason };
          if (l.conversation_id) reader.add(reader.byConversation, l.conversation_id, rec);
          else if (l.original_key) reader.add(reader.byKey, l.original_key, rec);
        }
      },
    });
    return reader;
  }

  private add(map: Map<string, FoundRecord[]>, key: string, rec: FoundRecord): void {
    const list = map.get(key) ?? [];
    list.push(rec);
    map.set(key, list);
  }

  find(e: Expected): FoundRecord[] {
    return e.kind === "conversation" ? (this.byConversation.get(e.id) ?? []) : (this.byKey.get(e.key) ?? []);
  }

  has(e: Expected): boolean {
    return this.find(e).length > 0;
  }

  stop(): Promise<void> {
    return this.stopFn();
  }
}

export const TABLE_HEADER =
  "phase                                           | in   | judged | skipped | dead | lost | dup records | paid twice | malformed paid | abandoned | s";

export function formatRow(r: PhaseRow): string {
  const cells = [
    r.phase.padEnd(47),
    String(r.eventsIn).padStart(4),
    String(r.judged).padStart(6),
    String(r.skipped).padStart(7),
    String(r.deadLettered).padStart(4),
    String(r.lost).padStart(4),
    String(r.duplicateRecords).padStart(11),
    String(r.paidTwice).padStart(10),
    String(r.paidMalformedRetries).padStart(14),
    String(r.abandonedCalls).padStart(9),
    String(r.seconds).padStart(3),
  ];
  return `${cells.join(" | ")}${r.notes.length ? `\n    ${r.notes.join("\n    ")}` : ""}`;
}

/** A phase passes when nothing is lost, nothing is paid twice and every letter has its reason. */
export function phasePassed(r: PhaseRow): boolean {
  return r.lost === 0 && r.paidTwice === 0 && r.lettersWithoutReason === 0;
}
