import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { ingestMetrics, initJudgeSeries, judgeMetrics, replayMetrics, startReplayPush, WAIT_BUCKETS, ZeroFirstCounter } from "./index.ts";

async function valuesOf(counter: ZeroFirstCounter<string>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await counter.get()).values) out[Object.values(v.labels).join("/")] = v.value;
  return out;
}

describe("ZeroFirstCounter", () => {
  it("counts at once before the first scrape", async () => {
    const c = new ZeroFirstCounter({ name: "t_before", help: "h", labelNames: ["app"], registers: [] });
    c.inc({ app: "a" }, 3);
    expect(await valuesOf(c)).toEqual({ a: 3 });
  });

  it("exports a series born after a scrape at 0 first, then its count", async () => {
    const c = new ZeroFirstCounter({ name: "t_after", help: "h", labelNames: ["app"], registers: [] });
    c.inc({ app: "a" });
    await c.get();
    c.inc({ app: "b" }, 2);
    c.inc({ app: "b" });
    c.inc({ app: "a" }, 4);
    // The scrape after b appeared sees b at 0 (its baseline) and a's increment at once.
    expect(await valuesOf(c)).toEqual({ a: 5, b: 0 });
    expect(await valuesOf(c)).toEqual({ a: 5, b: 3 });
    c.inc({ app: "b" });
    expect(await valuesOf(c)).toEqual({ a: 5, b: 4 });
  });

  it("is what the fleet's counters are, in the text a scrape returns", async () => {
    const registry = new Registry();
    const m = ingestMetrics(registry);
    await registry.metrics();
    m.verdicts.inc({ app: "new-app", verdict: "skipped", priority: "live" });
    expect(await registry.metrics()).toContain('tracesift_verdicts_total{app="new-app",verdict="skipped",priority="live"} 0');
    expect(await registry.metrics()).toContain('tracesift_verdicts_total{app="new-app",verdict="skipped",priority="live"} 1');
  });
});

describe("series and buckets", () => {
  it("wait buckets step at most 1.34x between 1 s and 30 min", () => {
    const range = WAIT_BUCKETS.filter((b) => b >= 1 && b <= 1800);
    expect(range[0]).toBe(1);
    expect(range.at(-1)).toBe(1800);
    for (let i = 1; i < range.length; i++) expect(range[i]! / range[i - 1]!).toBeLessThanOrEqual(1.34);
  });

  it("judge histograms exist from start-up for every known label set", async () => {
    const registry = new Registry();
    initJudgeSeries(judgeMetrics(registry), "m");
    const text = await registry.metrics();
    for (const priority of ["live", "backfill"]) {
      expect(text).toContain(`tracesift_queue_wait_seconds_count{priority="${priority}"} 0`);
      expect(text).toContain(`tracesift_end_to_end_seconds_count{priority="${priority}"} 0`);
      expect(text).toContain(`tracesift_rate_limit_wait_seconds_count{model="m",priority="${priority}"} 0`);
    }
    expect(text).toContain('tracesift_judge_request_duration_seconds_count{model="m"} 0');
  });
});

describe("replay push", () => {
  it("PUTs the registry under job tracesift-replay and the replay's name, and once more when stopped", async () => {
    const received: { method: string; url: string; body: string }[] = [];
    let status = 200;
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => {
        body += c.toString("utf8");
      });
      req.on("end", () => {
        received.push({ method: req.method ?? "", url: req.url ?? "", body });
        res.writeHead(status).end(status === 200 ? "" : "bad push");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const registry = new Registry();
      const m = replayMetrics(registry);
      m.remaining.set({ replay: "nov 1" }, 40);
      const errors: unknown[] = [];
      const pusher = startReplayPush({ registry, url, replay: "nov 1", intervalMs: 60_000, onError: (e) => errors.push(e) });
      await pusher.push();
      m.remaining.set({ replay: "nov 1" }, 0);
      m.finished.set({ replay: "nov 1" }, 1);
      await pusher.stop();
      expect(received.map((r) => `${r.method} ${r.url}`)).toEqual([
        "PUT /metrics/job/tracesift-replay/replay/nov%201",
        "PUT /metrics/job/tracesift-replay/replay/nov%201",
      ]);
      expect(received[0]!.body).toContain('tracesift_replay_messages_remaining{replay="nov 1"} 40');
      expect(received[1]!.body).toContain('tracesift_replay_finished{replay="nov 1"} 1');
      expect(received[1]!.body).toMatch(/tracesift_replay_last_push_timestamp_seconds\{replay="nov 1"\} \d+/);
      expect(errors).toEqual([]);

      // A failing gateway is reported, never thrown: progress reporting must not stop a replay.
      status = 500;
      await pusher.push();
      expect(String(errors[0])).toContain("HTTP 500");
    } finally {
      server.close();
    }
  });
});
