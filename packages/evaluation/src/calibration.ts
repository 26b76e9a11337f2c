/**
 * Is the judge's confidence worth trusting? Reliability table and expected calibration error
 * (ECE) over the verdicts that carry a `confidence`, and what escalating the uncertain band
 * would do to accuracy. Pure functions.
 */
import { z } from "zod";

/** `UNCERTAIN_BAND`: verdicts whose confidence lies in [low, high] get a second look. */
export const UncertainBand = z
  .string()
  .regex(/^\s*(0(\.\d+)?|1(\.0+)?)\s*[-–,]\s*(0(\.\d+)?|1(\.0+)?)\s*$/, "expected LOW-HIGH, e.g. 0.35-0.65")
  .transform((s) => {
    const [low, high] = s.split(/[-–,]/).map((x) => Number(x.trim())) as [number, number];
    return { low, high };
  })
  .refine((b) => b.low <= b.high, "LOW must not exceed HIGH");
export type UncertainBand = z.output<typeof UncertainBand>;

export const DEFAULT_BAND: UncertainBand = { low: 0.35, high: 0.65 };

export function inBand(confidence: number | undefined, band: UncertainBand): boolean {
  return confidence !== undefined && confidence >= band.low && confidence <= band.high;
}

export type ScoredVerdict = { conversation_id: string; label: boolean; predicted: boolean; confidence?: number };

export type ReliabilityBin = { low: number; high: number; n: number; mean_confidence: number | null; accuracy: number | null };

export type Calibration = {
  /** Verdicts with a confidence (the only ones calibration speaks about). */
  n: number;
  bins: ReliabilityBin[];
  /** Σ_bins (n_b / n) · |accuracy_b − mean confidence_b|. */
  ece: number | null;
};

/** Equal-width bins over [0, 1]; confidence 1 falls in the last bin. */
export function calibrationOf(verdicts: readonly ScoredVerdict[], binCount = 10): Calibration {
  const sums = Array.from({ length: binCount }, () => ({ n: 0, conf: 0, correct: 0 }));
  let n = 0;
  for (const v of verdicts) {
    if (v.confidence === undefined) continue;
    const bin = sums[Math.min(binCount - 1, Math.floor(v.confidence * binCount))]!;
    bin.n++;
    bin.conf += v.confidence;
    if (v.predicted === v.label) bin.correct++;
    n++;
  }
  const bins = sums.map((b, i) => ({
    low: i / binCount,
    high: (i + 1) / binCount,
    n: b.n,
    mean_confidence: b.n === 0 ? null : b.conf / b.n,
    accuracy: b.n === 0 ? null : b.correct / b.n,
  }));
  const ece = n === 0 ? null : bins.reduce((s, b) => s + (b.n === 0 ? 0 : (b.n / n) * Math.abs((b.accuracy ?? 0) - (b.mean_confidence ?? 0))), 0);
  return { n, bins, ece };
}

export type Escalation = {
  band: UncertainBand;
  /** Verdicts inside the band, and their share of all scored verdicts. */
  in_band: number;
  in_band_share: number | null;
  accuracy: number | null;
  accuracy_in_band: number | null;
  accuracy_outside_band: number | null;
  /** Upper bound: every in-band verdict sent to review and corrected there. */
  accuracy_if_reviewed: number | null;
  /** In-band verdicts replaced by another judge's verdict on the same conversation (when it has one). */
  accuracy_if_escalated_to: { judge: string; accuracy: number | null }[];
};

const ratio = (num: number, den: number): number | null => (den === 0 ? null : num / den);

export function escalationOf(
  verdicts: readonly ScoredVerdict[],
  band: UncertainBand,
  others: readonly { judge: string; verdicts: ReadonlyMap<string, boolean> }[] = [],
): Escalation {
  const uncertain = verdicts.filter((v) => inBand(v.confidence, band));
  const sure = verdicts.filter((v) => !inBand(v.confidence, band));
  const correct = (vs: readonly ScoredVerdict[]) => vs.filter((v) => v.predicted === v.label).length;
  const n = verdicts.length;
  return {
    band,
    in_band: uncertain.length,
    in_band_share: ratio(uncertain.length, n),
    accuracy: ratio(correct(verdicts), n),
    accuracy_in_band: ratio(correct(uncertain), uncertain.length),
    accuracy_outside_band: ratio(correct(sure), sure.length),
    accuracy_if_reviewed: ratio(correct(sure) + uncertain.length, n),
    accuracy_if_escalated_to: others.map(({ judge, verdicts: second }) => {
      // The first verdict stands where the second judge has none.
      const escalated = uncertain.filter((v) => (second.get(v.conversation_id) ?? v.predicted) === v.label).length;
      return { judge, accuracy: ratio(correct(sure) + escalated, n) };
    }),
  };
}
