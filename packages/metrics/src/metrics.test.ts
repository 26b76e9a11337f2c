import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { ingestMetrics, initJudgeSeries, judgeMetrics, WAIT_BUCKETS, ZeroFirstCounter } from "./index.ts";

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
