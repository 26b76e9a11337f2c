/**
 * The dashboards and alert rules in deploy/ against a real Prometheus scraping a real fleet:
 * promtool accepts the shipped files, and after a demo workload every rule and every panel query
 * evaluates without error and every panel query returns data.
 *
 * Then it stops ingest and shows what on-call sees: the broker lag panel growing and
 * TracesiftIngestNotConsuming pending within its window.
 *
 * Needs the Debian packages `prometheus`, `prometheus-pushgateway` (replay progress) and
 * `prometheus-redis-exporter` (scripts/services.sh tools ...). The broker's JMX exporter agent is
 * scraped when it answers on 127.0.0.1:9404 (a broker started by scripts/services.sh has it); a
 * broker started without it leaves the Kafka panels out, said in the test output. With
 * TRACESIFT_RENDER_OVERVIEW=1 it also renders the overview dashboard to docs/overview.png.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ingestMetrics, replayMetrics, startReplayPush } from "@tracesift/metrics";
import { createJudgeQueue, createRedis, enqueueJudgeJobs } from "@tracesift/queue";
import { createRegistry } from "@tracesift/runtime";
import { conversationVersion, type JudgeJob } from "@tracesift/schemas";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { parse, stringify } from "yaml";
import { REPO_ROOT, type RunningService, startService, waitForHttp } from "../services/cli/src/fleet.ts";
import { freePort, KAFKA_BROKERS, openaiEvent, REDIS_URL, startTestFleet, type TestFleet } from "./helpers/fleet.ts";
import {
  dashboardQueries,
  dashboardVariables,
  localConfig,
  PROMETHEUS_DIR,
  promtool,
  readDashboard,
  requireBinary,
  type RunningPrometheus,
  ruleExpressions,
  startExporter,
  startPrometheus,
  substitute,
} from "./helpers/prometheus.ts";

const DASHBOARDS = ["fleet-overview.json", "backfill.json"];
/** What Grafana would put in for "All" and a short range; the fleet's scrape interval is 1s. */
const VARIABLES = { env: ".*", app: ".*", model: ".*", replay: ".*", __rate_interval: "1m", __interval: "5s", __range: "10m" };
const APPS = ["booking", "math", "support"] as const;
const WAIT = { timeout: 60_000, interval: 500 };
const KAFKA_JMX = "127.0.0.1:9404";
/** Panels fed only by the broker's JMX exporter agent. */
const KAFKA_PANELS = ["Kafka broker health", "Kafka messages in / s"];

describe("observability: Grafana dashboards and Prometheus rules", () => {
  it("promtool accepts the shipped config and rules, and the rule unit tests pass", () => {
    requireBinary("promtool");
    const config = promtool(["check", "config", "prometheus.yml"]);
    expect(config.output, config.output).toContain("SUCCESS");
    expect(config.code, config.output).toBe(0);
    const rules = promtool(["check", "rules", "rules/tracesift.rules.yml"]);
    expect(rules.code, rules.output).toBe(0);
    const unit = promtool(["test", "rules", "tests/tracesift.rules.test.yml"]);
    expect(unit.code, unit.output).toBe(0);

    // Debian builds Prometheus without Kubernetes discovery; then everything but the discovery
    // block (relabelling, rule files) is checked with the block swapped for a static target.
    let k8s = promtool(["check", "config", "prometheus.kubernetes.yml"]);
    if (k8s.code !== 0 && k8s.output.includes("field kubernetes_sd_configs not found")) {
      const doc = parse(readFileSync(join(PROMETHEUS_DIR, "prometheus.kubernetes.yml"), "utf8")) as {
        rule_files: string[];
        scrape_configs: { kubernetes_sd_configs?: unknown; static_configs?: unknown }[];
      };
      expect(doc.scrape_configs.every((j) => j.kubernetes_sd_configs)).toBe(true);
      for (const job of doc.scrape_configs) {
        delete job.kubernetes_sd_configs;
        job.static_configs = [{ targets: ["pod:9464"] }];
      }
      doc.rule_files = doc.rule_files.map((f) => join(PROMETHEUS_DIR, f));
      const dir = mkdtempSync(join(tmpdir(), "tracesift-k8s-"));
      writeFileSync(join(dir, "prometheus.yml"), stringify(doc));
      k8s = promtool(["check", "config", join(dir, "prometheus.yml")]);
      rmSync(dir, { recursive: true, force: true });
    }
    expect(k8s.code, k8s.output).toBe(0);
  });

  describe("against a real Prometheus scraping a real fleet", () => {
    let fleet: TestFleet | undefined;
    let prom: RunningPrometheus | undefined;
    let replay: Awaited<ReturnType<typeof startReplay>> | undefined;
    let collector: RunningService | undefined;
    let pushgateway: Awaited<ReturnType<typeof startExporter>> | undefined;
    let redisExporter: Awaited<ReturnType<typeof startExporter>> | undefined;
    let kafkaAgent = false;

    beforeAll(async () => {
      // Fail (not skip) without the binaries: CI installs them.
      requireBinary("prometheus");
      fleet = await startTestFleet({
        workers: 2,
        // Slow enough that waves build a visible backlog, fast enough for a short test.
        sim: { latencyMs: 250, latencyJitterMs: 250 },
        // Budgets far above what the test spends: the spend counters run, nothing pauses.
        workerEnv: { JUDGE_CONCURRENCY: "3", COST_BUDGET_HOURLY_USD: "1000", COST_BUDGET_DAILY_USD: "5000" },
        ingestEnv: { JUDGE_MAX_ATTEMPTS: "2", MAX_EVENT_BYTES: "65536" },
      });
      const logDir = join(REPO_ROOT, ".cache/test-logs", fleet.id);
      // The collector reads the ingest group's lag from the broker: it needs the fleet's topic and group.
      const collectorPort = await freePort();
      collector = startService({
        service: "collector",
        env: {
          KAFKA_BROKERS,
          REDIS_URL,
          QUEUE_PREFIX: fleet.queuePrefix,
          INPUT_TOPICS: fleet.topics.input,
          CONSUMER_GROUP: `test-${fleet.id}-ingest`,
          COLLECT_INTERVAL_MS: "500",
          METRICS_PORT: String(collectorPort),
          COST_BUDGET_HOURLY_USD: "1000",
          COST_BUDGET_DAILY_USD: "5000",
          JUDGE_RPM: "6000",
          LOG_LEVEL: "info",
        },
        logDir,
      });
      await waitForHttp(`http://127.0.0.1:${collectorPort}/readyz`, 60_000, collector);
      pushgateway = await startExporter("prometheus-pushgateway", (port) => [`--web.listen-address=127.0.0.1:${port}`], { logDir });
      redisExporter = await startExporter(
        "prometheus-redis-exporter",
        (port) => [`-web.listen-address=127.0.0.1:${port}`, `-redis.addr=${REDIS_URL}`],
        { logDir },
      );
      kafkaAgent = await fetch(`http://${KAFKA_JMX}/metrics`).then(
        (r) => r.ok,
        () => false,
      );
      if (!kafkaAgent) console.warn(`no JMX exporter on ${KAFKA_JMX} (broker started without it): Kafka panels not checked`);
      replay = await startReplay(fleet, pushgateway.url);
      const ports = fleet.metricsPorts;
      const local = (p: number) => `127.0.0.1:${p}`;
      const config = localConfig(
        {
          "tracesift-ingest": [local(ports.ingest)],
          "tracesift-judge-worker": ports.workers.map(local),
          "tracesift-collector": [local(collectorPort)],
          "tracesift-pushgateway": [local(pushgateway.port)],
          redis: [local(redisExporter.port)],
          kafka: [KAFKA_JMX],
        },
        { scrapeInterval: "1s", omitJobs: kafkaAgent ? [] : ["kafka"] },
      );
      prom = await startPrometheus(config, { logDir });
    });

    afterAll(async () => {
      await prom?.stop();
      await replay?.close();
      await collector?.stop();
      await pushgateway?.stop();
      await redisExporter?.stop();
      await fleet?.stop();
    });

    it("every rule and panel query evaluates, and every panel has data", async () => {
      const f = fleet!;
      const p = prom!;
      const startedAt = Date.now() / 1000;

      // A demo workload in waves (paced so rates and the queue have a shape over time): corrections
      // and fine conversations across three apps, skipped ones, malformed events, invalid model
      // output, 429s and 503s from the model, and a backfill.
      // Rendering the README picture runs the workload longer (about 80 s instead of 15 s).
      const render = Boolean(process.env.TRACESIFT_RENDER_OVERVIEW);
      const waves = render ? [...Array(32)].map((_, i) => 8 + Math.round(12 * (1 + Math.sin(i / 3)))) : [12, 24, 30, 16, 24, 10];
      const expectedKeys = new Set<string>();
      for (const [w, n] of waves.entries()) {
        const events = waveEvents(w, n);
        for (const e of events) expectedKeys.add(e.key);
        if (w % 2 === 1) f.sim.injectNext([{ kind: "429", retryAfterSeconds: 1 }, { kind: "429" }, { kind: "503" }]);
        await f.produce(events);
        // The backfill reads its events in chunks, alongside live traffic.
        if (w >= 2 && w < (render ? 12 : 5)) for (const key of await replay!.backfill(render ? 15 : 10)) expectedKeys.add(key);
        await sleep(2_500);
      }
      await vi.waitFor(() => expect([...expectedKeys].filter((k) => !f.countsByKey().has(k))).toEqual([]), WAIT);

      // Prometheus saw the same totals as the topics (after its next scrapes).
      const judged = f.records.filter((r) => r.topic === "output" && r.result.status === "judged");
      const perceived = judged.filter((r) => r.topic === "output" && r.result.status === "judged" && r.result.verdict.perceived_error);
      const dlq = f.records.filter((r) => r.topic === "dlq");
      const skipped = f.records.filter((r) => r.topic === "output" && r.result.status === "skipped");
      expect(skipped.length).toBeGreaterThan(0);
      await vi.waitFor(async () => {
        expect(await scalar(p, 'sum(tracesift_verdicts_total{verdict=~"perceived_error|no_error"})')).toBe(judged.length);
        expect(await scalar(p, 'sum(tracesift_verdicts_total{verdict="perceived_error"})')).toBe(perceived.length);
        expect(await scalar(p, "sum(tracesift_dead_letters_total)")).toBe(dlq.length);
        // Skipped results (written by ingest) are counted too, from their first one.
        expect(await scalar(p, 'sum(tracesift_verdicts_total{verdict="skipped"})')).toBe(skipped.length);
      }, WAIT);
      expect(replay!.pushErrors).toEqual([]);
      const targets = await p.targets();
      expect(targets.filter((t) => t.health !== "up").map((t) => `${t.labels.job} ${t.labels.instance}: ${t.lastError}`)).toEqual([]);
      expect(targets).toHaveLength(kafkaAgent ? 7 : 6);


      // Every recording and alert rule: evaluated by Prometheus itself without error, and as a query.
      await vi.waitFor(async () => expect((await p.rules()).filter((r) => r.health === "unknown")).toEqual([]), WAIT);
      const ruleProblems = (await p.rules()).filter((r) => r.health !== "ok").map((r) => `${r.name}: ${r.lastError}`);
      expect(ruleProblems).toEqual([]);
      const rules = ruleExpressions();
      expect(rules.filter((r) => r.kind === "alert").length).toBeGreaterThanOrEqual(20);
      for (const r of rules) {
        const res = await p.query(r.expr);
        expect(res.ok ? "ok" : res.error, `${r.kind} ${r.name}`).toBe("ok");
      }

      // Every panel query of every dashboard: no error and at least one series. Polled, as the
      // last scrapes may still be landing.
      const queries = DASHBOARDS.flatMap((file) => dashboardQueries(readDashboard(file))).filter(
        (q) => kafkaAgent || !KAFKA_PANELS.includes(q.panel),
      );
      expect(queries.length).toBeGreaterThan(40);
      const problems = async () => {
        const out: string[] = [];
        for (const q of queries) {
          const res = await p.query(substitute(q.expr, VARIABLES));
          const where = `${q.dashboard} / ${q.panel} [${q.refId}]`;
          if (!res.ok) out.push(`${where}: ${res.error}`);
          else if (res.series.length === 0) out.push(`${where}: no series for ${q.expr}`);
        }
        return out;
      };
      await vi.waitFor(async () => expect(await problems()).toEqual([]), { timeout: 20_000, interval: 1_000 });

      // Template variables have values to pick from.
      for (const file of DASHBOARDS) {
        for (const v of dashboardVariables(readDashboard(file))) {
          const values = await p.labelValues(v.label, substitute(v.selector, VARIABLES));
          expect(values.length, `${file} variable ${v.name}`).toBeGreaterThan(0);
        }
      }

      if (render) {
        const range = ["--from", String(Math.floor(startedAt - 5)), "--to", String(Math.ceil(Date.now() / 1000)), "--rate-interval", "15s"];
        for (const [dashboard, out] of [
          ["fleet-overview.json", "docs/overview.png"],
          ["backfill.json", "docs/backfill.png"],
        ] as const) {
          const args = ["bench/render-dashboard/render.ts", "--prometheus", p.url, "--dashboard", `deploy/grafana/dashboards/${dashboard}`, "--out", out, ...range];
          const run = spawnSync(join(REPO_ROOT, "node_modules/.bin/tsx"), args, { cwd: REPO_ROOT, encoding: "utf8" });
          expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
          expect(run.stdout).not.toContain("no data");
        }
      }
    });

    it("with ingest stopped, the broker lag panel grows and TracesiftIngestNotConsuming is pending within its window", async () => {
      const f = fleet!;
      const p = prom!;
      const panel = dashboardQueries(readDashboard("fleet-overview.json")).find((q) => q.panel === "Consumer lag by topic (broker)");
      expect(panel).toBeDefined();
      const lag = `sum(${substitute(panel!.expr, VARIABLES)})`;
      // Everything read before the stop: no lag, and the alert is not pending.
      await vi.waitFor(async () => expect(await scalar(p, lag)).toBe(0), WAIT);
      const pending = `ALERTS{alertname="TracesiftIngestNotConsuming", alertstate="pending", topic="${f.topics.input}"}`;
      const before = await p.query(pending);
      expect(before.ok ? before.series : before.error).toEqual([]);

      // Ingest goes down while events keep arriving (about 3 a second).
      await f.ingest.stop();
      const stoppedAt = Date.now();
      let produced = 0;
      let pendingAfterMs: number | undefined;
      let alertLabels: Record<string, string> = {};
      // The alert needs 2 minutes without a committed offset moving; give it 4.
      for (let wave = 0; Date.now() - stoppedAt < 240_000; wave++) {
        const events = [...Array(5)].map((_, i) =>
          openaiEvent(`down-${wave}-${i}`, [["user", "Cancel my 3pm."], ["assistant", "Cancelled your 4pm."], ["user", "No, the 3pm!"]], { app: "booking" }),
        );
        await f.produce(events);
        produced += events.length;
        const res = await p.query(pending);
        if (res.ok && res.series.length > 0) {
          pendingAfterMs = Date.now() - stoppedAt;
          alertLabels = res.series[0]!.metric;
          break;
        }
        await sleep(1_500);
      }
      expect(pendingAfterMs, "TracesiftIngestNotConsuming pending after ingest stopped").toBeDefined();
      // 2 minutes of unmoved offsets, plus scrape and evaluation intervals: pending well inside
      // the 5 minutes in which the alert (for: 2m) must fire.
      expect(pendingAfterMs!).toBeLessThan(180_000);
      expect(alertLabels).toMatchObject({ group: `test-${f.id}-ingest`, topic: f.topics.input, severity: "critical" });
      console.log(`TracesiftIngestNotConsuming pending ${(pendingAfterMs! / 1000).toFixed(0)} s after ingest stopped, ${produced} events waiting`);

      // The lag panel, as Grafana would draw it since the stop: it only grows, up to what waits.
      await vi.waitFor(async () => expect(await scalar(p, lag)).toBe(produced), WAIT);
      const range = await p.queryRange(lag, Math.floor(stoppedAt / 1000), Math.ceil(Date.now() / 1000), 5);
      expect(range.ok).toBe(true);
      const values = (range.ok ? (range.series[0]?.values ?? []) : []).map(([, v]) => Number(v));
      expect(values.length).toBeGreaterThan(20);
      for (let i = 1; i < values.length; i++) expect(values[i]!, `lag at step ${i}`).toBeGreaterThanOrEqual(values[i - 1]!);
      expect(values.at(-1)!).toBeGreaterThan(values[0]!);
    });
  });
});

/** A wave of live events: every app gets corrections and fine conversations, plus a few oddities. */
function waveEvents(wave: number, n: number): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  for (let i = 0; i < n; i++) {
    const key = `w${wave}-${i}`;
    const app = APPS[i % APPS.length]!;
    if (i % 10 === 9) {
      out.push(openaiEvent(key, [["user", "Hi"], ["assistant", "Hello! How can I help?"]], { app })); // skipped: no user reply
    } else if (i % 13 === 7) {
      out.push({ key, value: i % 2 ? "{not json" : JSON.stringify({ id: key, messages: "nope" }) }); // dead letter at ingest
    } else {
      // Different perceived-error rates per app, so the by-app panels tell them apart.
      const wrong = app === "booking" ? i % 2 === 0 : app === "math" ? i % 5 === 0 : i % 4 === 0;
      out.push(
        openaiEvent(
          key,
          [
            ["user", `Book a table for ${i + 2} people at 7pm.`],
            ["assistant", `Booked a table for ${wrong ? i + 3 : i + 2} people at 7pm.`],
            ["user", wrong ? `That's wrong, I said ${i + 2} people.` : "Thanks, perfect."],
          ],
          { app },
        ),
      );
    }
  }
  if (wave % 2 === 1) {
    // Invalid model output on every attempt: a judge-stage dead letter.
    out.push(openaiEvent(`w${wave}-invalid`, [["user", "Hi [sim:malformed]"], ["assistant", "Hello"], ["user", "ok"]], { app: "support" }));
  }
  return out;
}

/**
 * Stands in for a replay: enqueues backfill-priority jobs as a replay would and pushes the ingest
 * metrics a replay shares with ingest (events with replay != "live") and its progress to the
 * Pushgateway, with the helper the replay command uses.
 */
async function startReplay(fleet: TestFleet, pushgatewayUrl: string) {
  const registry = createRegistry("replay");
  const metrics = ingestMetrics(registry);
  const progress = replayMetrics(registry);
  const redis = createRedis(REDIS_URL, "producer");
  const queue = createJudgeQueue(redis, { QUEUE_PREFIX: fleet.queuePrefix, JUDGE_QUEUE: "judge" });
  const name = "test-backfill";
  const rangeSize = 120;
  // From zero, so rate() and increase() see the first chunk (a series born at 15 shows no rate).
  const labels = { topic: fleet.topics.input, format: "openai", outcome: "enqueued", replay: name };
  metrics.events.inc(labels, 0);
  progress.total.set({ replay: name }, rangeSize);
  progress.remaining.set({ replay: name }, rangeSize);
  progress.finished.set({ replay: name }, 0);
  const pushErrors: unknown[] = [];
  const pusher = startReplayPush({ registry, url: pushgatewayUrl, replay: name, intervalMs: 500, onError: (err) => pushErrors.push(err) });
  await pusher.push();
  let read = 0;
  return {
    pushErrors,
    async backfill(n: number): Promise<string[]> {
      const jobs: JudgeJob[] = [...Array(n)].map((_, k) => {
        const i = read + k;
        const wrong = i % 4 === 0;
        const conversation = {
          id: `backfill-${i}`,
          source: "openai",
          metadata: { app: APPS[i % APPS.length]! },
          messages: [
            { role: "user" as const, content: `Move my meeting to ${i % 12 + 1}pm.` },
            { role: "assistant" as const, content: "Done, the meeting is moved." },
            { role: "user" as const, content: wrong ? "No, that is not the meeting I meant." : "Great, thanks." },
          ],
        };
        return {
          conversation,
          version: conversationVersion(conversation),
          // Replays re-read old events: their end-to-end latency counts from the original time.
          source: { topic: fleet.topics.input, partition: 0, offset: String(i), event_time: new Date(Date.now() - 10 * 60_000).toISOString() },
          priority: "backfill",
          enqueued_at: new Date().toISOString(),
        };
      });
      await enqueueJudgeJobs(queue, jobs, 2);
      read += n;
      metrics.events.inc(labels, n);
      progress.remaining.set({ replay: name }, Math.max(0, rangeSize - read));
      return jobs.map((j) => j.conversation.id);
    },
    async close(): Promise<void> {
      await pusher.stop();
      await fetch(`${pushgatewayUrl}/metrics/job/tracesift-replay/replay/${name}`, { method: "DELETE" }).catch(() => undefined);
      await queue.close();
      await redis.quit();
    },
  };
}

async function scalar(prom: RunningPrometheus, expr: string): Promise<number> {
  const res = await prom.query(expr);
  if (!res.ok) throw new Error(res.error);
  return Number(res.series[0]?.value?.[1] ?? Number.NaN);
}
