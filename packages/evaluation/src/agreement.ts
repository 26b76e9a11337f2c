/**
 * Agreement between raters (models) on binary verdicts. Pure. A rating matrix has one row per
 * conversation and one column per rater; `null` is "no valid verdict", and a statistic only uses
 * the rows where the raters it compares all answered.
 */
import { cohenKappa, confusionOf } from "./metrics.ts";

export type Ratings = readonly (readonly (boolean | null)[])[];

export type PairAgreement = { a: string; b: string; n: number; agreement: number | null; kappa: number | null };

export function pairwiseAgreement(ratings: Ratings, raters: readonly string[]): PairAgreement[] {
  const out: PairAgreement[] = [];
  for (let i = 0; i < raters.length; i++) {
    for (let j = i + 1; j < raters.length; j++) {
      const pairs: { label: boolean; predicted: boolean }[] = [];
      for (const row of ratings) {
        const x = row[i];
        const y = row[j];
        if (typeof x === "boolean" && typeof y === "boolean") pairs.push({ label: x, predicted: y });
      }
      const agree = pairs.filter((p) => p.label === p.predicted).length;
      out.push({
        a: raters[i]!,
        b: raters[j]!,
        n: pairs.length,
        agreement: pairs.length === 0 ? null : agree / pairs.length,
        kappa: cohenKappa(confusionOf(pairs)),
      });
    }
  }
  return out;
}

export type FleissResult = {
  /** Rows where every rater answered. */
  subjects: number;
  raters: number;
  /** P̄: mean per-subject agreement. */
  observed: number | null;
  /** P̄e: agreement expected by chance from the category shares. */
  expected: number | null;
  kappa: number | null;
};

/**
 * Fleiss' kappa for k raters and two categories. Per subject i with n_ij ratings in category j:
 * P_i = (Σ_j n_ij² − k) / (k(k − 1)); P̄ = mean P_i; p_j = Σ_i n_ij / (N·k); P̄e = Σ_j p_j²;
 * κ = (P̄ − P̄e) / (1 − P̄e).
 */
export function fleissKappa(ratings: Ratings): FleissResult {
  const k = ratings[0]?.length ?? 0;
  const complete = ratings.filter((row) => row.length === k && row.every((v) => typeof v === "boolean"));
  const n = complete.length;
  if (k < 2 || n === 0) return { subjects: n, raters: k, observed: null, expected: null, kappa: null };
  let sumP = 0;
  let positives = 0;
  for (const row of complete) {
    const yes = row.filter((v) => v === true).length;
    const no = k - yes;
    positives += yes;
    sumP += (yes * yes + no * no - k) / (k * (k - 1));
  }
  const observed = sumP / n;
  const pYes = positives / (n * k);
  const expected = pYes * pYes + (1 - pYes) * (1 - pYes);
  return { subjects: n, raters: k, observed, expected, kappa: expected === 1 ? null : (observed - expected) / (1 - expected) };
}
