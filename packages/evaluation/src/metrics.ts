/**
 * Judge-quality metrics against labels. Pure functions; the positive class is
 * `perceived_error: true`. Ratios with a zero denominator are `null` (undefined), never 0 or NaN.
 */
import { callCostUsd, type Price } from "@tracesift/judge";
import type { VerdictOutcome } from "./outcome.ts";

export type Confusion = { tp: number; fp: number; fn: number; tn: number };

export type BinaryMetrics = {
  n: number;
  accuracy: number | null;
  precision: number | null;
  recall: number | null;
  f1: number | null;
  /** Cohen's kappa between the labels and the judge. */
  kappa: number | null;
  /** Accuracy of a judge that always answers "no error": the share of negative labels. */
  always_no_error_accuracy: number | null;
  /** Share of labels that are perceived errors. */
  label_positive_rate: number | null;
  /** Share of the judge's verdicts that are perceived errors. */
  predicted_positive_rate: number | null;
};

export function confusionOf(pairs: Iterable<{ label: boolean; predicted: boolean }>): Confusion {
  const c: Confusion = { tp: 0, fp: 0, fn: 0, tn: 0 };
  for (const { label, predicted } of pairs) {
    if (predicted && label) c.tp++;
    else if (predicted) c.fp++;
    else if (label) c.fn++;
    else c.tn++;
  }
  return c;
}

const ratio = (num: number, den: number): number | null => (den === 0 ? null : num / den);

/**
 * accuracy = (TP+TN)/N; precision = TP/(TP+FP); recall = TP/(TP+FN); F1 = 2TP/(2TP+FP+FN);
 * kappa = (po − pe)/(1 − pe) with po = accuracy and
 * pe = ((TP+FP)(TP+FN) + (FN+TN)(FP+TN)) / N² (chance agreement from the two marginals).
 */
export function binaryMetrics(c: Confusion): BinaryMetrics {
  const n = c.tp + c.fp + c.fn + c.tn;
  return {
    n,
    accuracy: ratio(c.tp + c.tn, n),
    precision: ratio(c.tp, c.tp + c.fp),
    recall: ratio(c.tp, c.tp + c.fn),
    f1: ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn),
    kappa: cohenKappa(c),
    always_no_error_accuracy: ratio(c.tn + c.fp, n),
    label_positive_rate: ratio(c.tp + c.fn, n),
    predicted_positive_rate: ratio(c.tp + c.fp, n),
  };
}

export function cohenKappa(c: Confusion): number | null {
  const n = c.tp + c.fp + c.fn + c.tn;
  if (n === 0) return null;
  const po = (c.tp + c.tn) / n;
  const pe = ((c.tp + c.fp) * (c.tp + c.fn) + (c.fn + c.tn) * (c.fp + c.tn)) / (n * n);
  // Both raters constant and equal: agreement is perfect but kappa is 0/0.
  if (pe === 1) return null;
  return (po - pe) / (1 - pe);
}

/** Nearest-rank percentile: the smallest value with at least p% of values at or below it. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export type EvalRecord = { conversation_id: string; label: boolean; outcome: VerdictOutcome };

export type EvalSummary = {
  /** Labelled, judgeable conversations with an outcome. */
  conversations: number;
  /** Those with a valid verdict: the confusion matrix counts these. */
  scored: number;
  /** No valid verdict after every attempt (kept out of the confusion matrix). */
  unresolved: number;
  confusion: Confusion;
  metrics: BinaryMetrics;
  /** Invalid answers / all answers the model gave (retries included). */
  invalid_output_rate: number | null;
  answers: number;
  invalid_answers: number;
  /** Verdicts served from the result cache when they were recorded. */
  cache_hits: number;
  tokens: { prompt: number; cached_prompt: number; completion: number; total: number };
  tokens_per_1k: number | null;
  cost_usd: number;
  cost_per_1k_usd: number | null;
  latency_ms: { p50: number | null; p99: number | null };
};

/**
 * Sums one judge's outcomes on one dataset. Tokens and cost are those of the recorded calls
 * (cached verdicts carry the usage and latency of the call that produced them), so a re-run
 * reports what the configuration costs, not what the re-run cost. Cost is computed here from
 * `price` (per token, or a GPU-hour share by latency), so a pricing change applies to cached
 * verdicts too.
 */
export function summarizeEval(records: readonly EvalRecord[], price: Price): EvalSummary {
  const tokens = { prompt: 0, cached_prompt: 0, completion: 0, total: 0 };
  let cost = 0;
  const pairs: { label: boolean; predicted: boolean }[] = [];
  const latencies: number[] = [];
  let answers = 0;
  let invalid = 0;
  let cacheHits = 0;
  for (const r of records) {
    const o = r.outcome;
    answers += o.answers;
    if (o.status === "judged") {
      invalid += o.answers - 1;
      pairs.push({ label: r.label, predicted: o.verdict.perceived_error });
      latencies.push(o.latency_ms);
      if (o.cached) cacheHits++;
      tokens.prompt += o.usage.prompt_tokens;
      tokens.cached_prompt += o.usage.cached_prompt_tokens;
      tokens.completion += o.usage.completion_tokens;
      tokens.total += o.usage.total_tokens;
      cost += callCostUsd(o.usage, o.latency_ms, price);
    } else {
      invalid += o.answers;
    }
  }
  const confusion = confusionOf(pairs);
  const n = records.length;
  cost = Math.round(cost * 1e9) / 1e9;
  return {
    conversations: n,
    scored: pairs.length,
    unresolved: n - pairs.length,
    confusion,
    metrics: binaryMetrics(confusion),
    invalid_output_rate: ratio(invalid, answers),
    answers,
    invalid_answers: invalid,
    cache_hits: cacheHits,
    tokens,
    tokens_per_1k: n === 0 ? null : (tokens.total / n) * 1000,
    cost_usd: cost,
    cost_per_1k_usd: n === 0 ? null : (cost / n) * 1000,
    latency_ms: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
  };
}
