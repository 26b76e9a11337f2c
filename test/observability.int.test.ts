/**
 * The dashboards and alert rules in deploy/ against a real Prometheus scraping a real fleet:
 * promtool accepts the shipped files, and after a demo workload every rule and every panel query
 * evaluates without error and every panel query returns data.
 *
 * Needs the Debian package `prometheus` (scripts/services.sh tools prometheus). With
 * TRACESIFT_RENDER_OVERVIEW=1 it also renders the overview dashboard to docs/overview.png.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ingestMetrics } from "@tracesift/metrics";
import { createJudgeQueue, createRedis, enqueueJudgeJobs } from "@tracesift/queue";
import { createRegistry, startOpsServer } from "@tracesift/runtime";
import { conversationVersion, type JudgeJob } from "@tracesift/schemas";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { parse, stringify } from "yaml";
import { REPO_ROOT } from "../services/cli/src/fleet.ts";
import { freePort, openaiEvent, REDIS_URL, startTestFleet, type TestFleet } from "./helpers/fleet.ts";
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
  startPrometheus,
  substitute,
} from "./helpers/prometheus.ts";

const DASHBOARDS = ["fleet-overview.json", "backfill.json"];
/** What Grafana would put in for "All" and a short range; the fleet's scrape interval is 1s. */
const VARIABLES = { env: ".*", app: ".*", model: ".*", replay: ".*", __rate_interval: "1m", __interval: "5s", __range: "10m" };
const APPS = ["booking", "math", "support"] as const;
const WAIT = { timeout: 60_000, interval: 500 };

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

    beforeAll(async () => {
      // Fail (not skip) without the binary: CI installs it.
      requireBinary("prometheus");
      fleet = await startTestFleet({
        workers: 2,
        collector: { COLLECT_INTERVAL_MS: "500" },
        // Slow enough that waves build a visible backlog, fast enough for a short test.
        sim: { latencyMs: 250, latencyJitterMs: 250 },
        workerEnv: { JUDGE_CONCURRENCY: "3" },
        ingestEnv: { JUDGE_MAX_ATTEMPTS: "2", MAX_EVENT_BYTES: "65536" },
      });
      replay = await startReplay(fleet);
      const ports = fleet.metricsPorts;
      const local = (p: number) => `127.0.0.1:${p}`;
      const config = localConfig(
        {
          "tracesift-ingest": [local(ports.ingest)],
          "tracesift-judge-worker": ports.workers.map(local),
          "tracesift-collector": [local(ports.collector!)],
        },
        {
          scrapeInterval: "1s",
          // A replay's /metrics: replays are not in the shipped config (no replay service yet).
          extraJobs: [{ job_name: "tracesift-replay", static_configs: [{ targets: [local(replay.port)], labels: { env: "dev" } }] }],
        },
      );
      prom = await startPrometheus(config, { logDir: join(REPO_ROOT, ".cache/test-logs", fleet.id) });
    });

    afterAll(async () => {
      await prom?.stop();
      await replay?.close();
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
      await vi.waitFor(async () => {
        expect(await scalar(p, 'sum(tracesift_verdicts_total{verdict=~"perceived_error|no_error"})')).toBe(judged.length);
        expect(await scalar(p, 'sum(tracesift_verdicts_total{verdict="perceived_error"})')).toBe(perceived.length);
        expect(await scalar(p, "sum(tracesift_dead_letters_total)")).toBe(dlq.length);
      }, WAIT);
      const targets = await p.targets();
      expect(targets.filter((t) => t.health !== "up").map((t) => `${t.labels.job} ${t.labels.instance}: ${t.lastError}`)).toEqual([]);
      expect(targets).toHaveLength(5);

      // Every recording and alert rule: evaluated by Prometheus itself without error, and as a query.
      await vi.waitFor(async () => expect((await p.rules()).filter((r) => r.health === "unknown")).toEqual([]), WAIT);
      const ruleProblems = (await p.rules()).filter((r) => r.health !== "ok").map((r) => `${r.name}: ${r.lastError}`);
      expect(ruleProblems).toEqual([]);
      const rules = ruleExpressions();
      expect(rules.filter((r) => r.kind === "alert").length).toBeGreaterThanOrEqual(7);
      for (const r of rules) {
        const res = await p.query(r.expr);
        expect(res.ok ? "ok" : res.error, `${r.kind} ${r.name}`).toBe("ok");
      }

      // Every panel query of every dashboard: no error and at least one series. Polled, as the
      // last scrapes may still be landing.
      const queries = DASHBOARDS.flatMap((file) => dashboardQueries(readDashboard(file)));
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
 * Stands in for a replay: enqueues backfill-priority jobs as a replay would and exports the
 * ingest metrics a replay shares with ingest (events with replay != "live") on its own /metrics.
 */
async function startReplay(fleet: TestFleet) {
  const registry = createRegistry("replay");
  const metrics = ingestMetrics(registry);
  const redis = createRedis(REDIS_URL, "producer");
  const queue = createJudgeQueue(redis, { QUEUE_PREFIX: fleet.queuePrefix, JUDGE_QUEUE: "judge" });
  const ops = await startOpsServer({ port: await freePort(), host: "127.0.0.1", registry, readiness: [] });
  // From zero, so rate() and increase() see the first chunk (a series born at 15 shows no rate).
  const labels = { topic: fleet.topics.input, format: "openai", outcome: "enqueued", replay: "test-backfill" };
  metrics.events.inc(labels, 0);
  let read = 0;
  return {
    port: ops.port,
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
      return jobs.map((j) => j.conversation.id);
    },
    async close(): Promise<void> {
      await ops.close();
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
