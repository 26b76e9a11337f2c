import { describe, expect, it } from "vitest";
import { binaryMetrics, confusionOf, type EvalRecord, percentile, summarizeEval } from "./metrics.ts";

const T = true;
const F = false;

describe("binary metrics on a tiny hand-computed dataset", () => {
  // Ten conversations, (label, judge):
  //   TP: 3 (label error, judge error)   FP: 1 (label ok, judge error)
  //   FN: 2 (label error, judge ok)      TN: 4 (label ok, judge ok)
  const pairs = [
    [T, T], [T, T], [T, T],
    [F, T],
    [T, F], [T, F],
    [F, F], [F, F], [F, F], [F, F],
  ].map(([label, predicted]) => ({ label: label!, predicted: predicted! }));

  it("counts the confusion matrix", () => {
    expect(confusionOf(pairs)).toEqual({ tp: 3, fp: 1, fn: 2, tn: 4 });
  });

  it("matches the arithmetic", () => {
    const m = binaryMetrics(confusionOf(pairs));
    expect(m.n).toBe(10);
    // accuracy = (TP + TN) / N = (3 + 4) / 10 = 0.7
    expect(m.accuracy).toBeCloseTo(0.7, 12);
    // precision = TP / (TP + FP) = 3 / 4 = 0.75
    expect(m.precision).toBeCloseTo(0.75, 12);
    // recall = TP / (TP + FN) = 3 / 5 = 0.6
    expect(m.recall).toBeCloseTo(0.6, 12);
    // F1 = 2PR / (P + R) = 2 · 0.75 · 0.6 / 1.35 = 0.9 / 1.35 = 2/3  (= 2TP / (2TP + FP + FN) = 6/9)
    expect(m.f1).toBeCloseTo(2 / 3, 12);
    // kappa: po = 0.7; judge says error 4/10, labels say error 5/10;
    // pe = (4·5 + 6·5) / 100 = 0.5; kappa = (0.7 − 0.5) / (1 − 0.5) = 0.4
    expect(m.kappa).toBeCloseTo(0.4, 12);
    // always answering "no error" is right on every negative label: (TN + FP) / N = 5/10
    expect(m.always_no_error_accuracy).toBeCloseTo(0.5, 12);
    expect(m.label_positive_rate).toBeCloseTo(0.5, 12);
    expect(m.predicted_positive_rate).toBeCloseTo(0.4, 12);
  });

  it("reports undefined ratios as null, not 0 or NaN", () => {
    const m = binaryMetrics({ tp: 0, fp: 0, fn: 0, tn: 5 });
    expect(m.precision).toBeNull(); // no positive verdicts
    expect(m.recall).toBeNull(); // no positive labels
    expect(m.f1).toBeNull();
    expect(m.kappa).toBeNull(); // both constant and equal: pe = 1
    expect(m.accuracy).toBe(1);
    expect(binaryMetrics({ tp: 0, fp: 0, fn: 0, tn: 0 }).accuracy).toBeNull();
  });
});

describe("percentile (nearest rank)", () => {
  it("picks ranks ceil(p/100 · n)", () => {
    const xs = [100, 20, 30, 40, 50, 60, 70, 80, 90, 10];
    expect(percentile(xs, 50)).toBe(50); // rank ceil(5) = 5 of the sorted list
    expect(percentile(xs, 99)).toBe(100); // rank ceil(9.9) = 10
    expect(percentile(xs, 0)).toBe(10);
    expect(percentile([], 50)).toBeNull();
  });
});

describe("summarizeEval", () => {
  const usage = (prompt: number, cached: number, completion: number) => ({
    prompt_tokens: prompt,
    cached_prompt_tokens: cached,
    completion_tokens: completion,
    total_tokens: prompt + completion,
  });
  const records: EvalRecord[] = [
    // label error, judge error, first answer valid
    { conversation_id: "a", label: T, outcome: { status: "judged", verdict: { perceived_error: T, reason: "r" }, usage: usage(1000, 400, 20), latency_ms: 100, answers: 1, cached: false } },
    // label ok, judge error, after one invalid answer
    { conversation_id: "b", label: F, outcome: { status: "judged", verdict: { perceived_error: T, reason: "r" }, usage: usage(1000, 0, 20), latency_ms: 300, answers: 2, cached: false } },
    // label error, three invalid answers: unresolved
    { conversation_id: "c", label: T, outcome: { status: "invalid", answers: 3, error: "not JSON", raw: "hm" } },
    // label ok, judge ok, from the cache
    { conversation_id: "d", label: F, outcome: { status: "judged", verdict: { perceived_error: F, reason: "r" }, usage: usage(1000, 400, 20), latency_ms: 200, answers: 1, cached: true } },
  ];
  const s = summarizeEval(records, { input: 0.5, cached_input: 0.25, output: 2 });

  it("scores only valid verdicts and counts the rest as unresolved", () => {
    expect(s.conversations).toBe(4);
    expect(s.scored).toBe(3);
    expect(s.unresolved).toBe(1);
    expect(s.confusion).toEqual({ tp: 1, fp: 1, fn: 0, tn: 1 });
    // po = 2/3; pe = ((TP+FP)(TP+FN) + (FN+TN)(FP+TN)) / 9 = (2·1 + 1·2) / 9 = 4/9; kappa = (2/9) / (5/9) = 0.4
    expect(s.metrics.kappa).toBeCloseTo(0.4, 12);
    expect(s.metrics.f1).toBeCloseTo(2 / 3, 12); // 2·1 / (2·1 + 1 + 0)
  });

  it("rates invalid output per answer", () => {
    // answers 1 + 2 + 3 + 1 = 7; invalid 0 + 1 + 3 + 0 = 4
    expect(s.answers).toBe(7);
    expect(s.invalid_answers).toBe(4);
    expect(s.invalid_output_rate).toBeCloseTo(4 / 7, 12);
    expect(s.cache_hits).toBe(1);
  });

  it("sums tokens and cost per 1,000 conversations", () => {
    // 3 verdicts × 1,020 tokens = 3,060 over 4 conversations → 765,000 per 1k
    expect(s.tokens).toEqual({ prompt: 3000, cached_prompt: 800, completion: 60, total: 3060 });
    expect(s.tokens_per_1k).toBe(765_000);
    // a: (600·0.5 + 400·0.25 + 20·2) / 1e6 = 440e-6;  b: (1000·0.5 + 20·2) / 1e6 = 540e-6;  d: 440e-6
    expect(s.cost_usd).toBeCloseTo(0.00142, 12);
    expect(s.cost_per_1k_usd).toBeCloseTo(0.355, 12); // 0.00142 / 4 · 1000
    // latencies of the verdicts: 100, 300, 200 → p50 = 200 (rank 2), p99 = 300 (rank 3)
    expect(s.latency_ms).toEqual({ p50: 200, p99: 300 });
  });

  it("prices a dedicated deployment by GPU time", () => {
    // 100 + 300 + 200 ms of one GPU at $8/h, 16 requests at once: 0.6 s · 8 / 3600 / 16 (each call rounded to 1e-9 USD)
    const gpu = summarizeEval(records, { usd_per_gpu_hour: 8, gpus: 1, parallelism: 16 });
    expect(gpu.cost_usd).toBeCloseTo((0.6 * 8) / 3600 / 16, 8);
  });
});
