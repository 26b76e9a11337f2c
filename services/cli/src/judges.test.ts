import { shadowAgreement } from "@tracesift/judge-registry";
import { describe, expect, it } from "vitest";
import { evaluateGate, GateConfig } from "./judges.ts";

const candidate = { model: "accounts/me/models/tuned", prompt_version: "pe-1" };
const report = (accuracy: number, kappa: number) => ({
  rows: [{ model: candidate.model, prompt_version: "pe-1", dataset: "holdout", summary: { scored: 50, metrics: { accuracy, kappa, f1: 0.9 } } }],
});
const shadow = (tp: number, fp: number, fn: number, tn: number) =>
  shadowAgreement({ tp, fp, fn, tn, live_cost_usd: 0, candidate_cost_usd: 0, live_latency_ms: 0, candidate_latency_ms: 0 });
const gate = GateConfig.parse({ holdout: { min_accuracy: 0.85, min_kappa: 0.6 }, shadow: { min_samples: 100, min_kappa: 0.7, max_positive_rate_diff: 0.03 } });

describe("promotion gate", () => {
  it("passes when every threshold holds", () => {
    const r = evaluateGate(gate, candidate, report(0.9, 0.8), shadow(40, 1, 1, 58));
    expect(r.checks.filter((c) => c.startsWith("FAIL"))).toEqual([]);
    expect(r.pass).toBe(true);
  });

  it("names each failed threshold", () => {
    const r = evaluateGate(gate, candidate, report(0.8, 0.8), shadow(40, 10, 0, 50));
    expect(r.pass).toBe(false);
    expect(r.checks.filter((c) => c.startsWith("FAIL"))).toEqual(["FAIL: holdout accuracy 0.800 ≥ 0.85", "FAIL: |positive-rate difference| 0.100 ≤ 0.03"]);
  });

  it("refuses without a holdout evaluation of this candidate", () => {
    const other = { rows: report(0.99, 0.99).rows.map((r) => ({ ...r, model: "accounts/fireworks/models/base" })) };
    expect(evaluateGate(gate, candidate, other, shadow(50, 0, 0, 50)).pass).toBe(false);
    expect(evaluateGate(gate, candidate, null, shadow(50, 0, 0, 50)).pass).toBe(false);
  });
});
