/**
 * How far a dashboard's p99 (PromQL histogram_quantile: linear interpolation inside the bucket
 * the rank falls in) can be from the true p99, with the wait/end-to-end buckets before and after
 * the change in packages/metrics. Pure computation on synthetic samples; prints a table.
 *
 *   pnpm exec tsx bench/render-dashboard/p99-buckets.ts
 */
import { WAIT_BUCKETS } from "../../packages/metrics/src/index.ts";

const OLD_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 3600, 14400];

/** Prometheus' histogram_quantile over cumulative bucket counts (the +Inf bucket last). */
function histogramQuantile(q: number, bounds: number[], samples: number[]): number {
  const counts = bounds.map((b) => samples.filter((s) => s <= b).length);
  const total = samples.length;
  const rank = q * total;
  const i = counts.findIndex((c) => c >= rank);
  if (i === -1) return bounds.at(-1)!; // in +Inf: Prometheus returns the highest finite bound
  const lower = i === 0 ? 0 : bounds[i - 1]!;
  const below = i === 0 ? 0 : counts[i - 1]!;
  return lower + ((bounds[i]! - lower) * (rank - below)) / (counts[i]! - below);
}

function trueQuantile(q: number, samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

// A fixed-seed PRNG, so every run prints the same figures.
let seed = 42;
const random = () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
  return seed / 2 ** 31;
};
const uniform = (lo: number, hi: number, n = 20_000) => [...Array(n)].map(() => lo + random() * (hi - lo));

const scenarios: [string, number[]][] = [
  ["queue/limiter waits 0-70 s (issue: p99 shown 290 s)", uniform(0, 70)],
  ["end-to-end of events 10-11 min old (issue: 894 s)", uniform(600, 660)],
  ["waits 0-20 s", uniform(0, 20)],
  ["waits 100-200 s", uniform(100, 200)],
  ["end-to-end 20-30 min", uniform(1200, 1800)],
];

const rows = scenarios.map(([name, samples]) => {
  const truth = trueQuantile(0.99, samples);
  const before = histogramQuantile(0.99, OLD_BUCKETS, samples);
  const after = histogramQuantile(0.99, WAIT_BUCKETS, samples);
  return { scenario: name, true_p99_s: truth.toFixed(1), old_buckets_s: before.toFixed(1), old_x: (before / truth).toFixed(2), new_buckets_s: after.toFixed(1), new_x: (after / truth).toFixed(2) };
});
console.table(rows);

// Worst case over narrow distributions anywhere in 1 s .. 30 min: all samples at one value v, the
// estimate is the bucket's upper part; the ratio is bounded by the bucket width.
let worstOld = 0;
let worstNew = 0;
for (let v = 1; v <= 1800; v *= 1.01) {
  const samples = uniform(v * 0.98, v, 200);
  const truth = trueQuantile(0.99, samples);
  worstOld = Math.max(worstOld, histogramQuantile(0.99, OLD_BUCKETS, samples) / truth);
  worstNew = Math.max(worstNew, histogramQuantile(0.99, WAIT_BUCKETS, samples) / truth);
}
console.log(`worst p99 overstatement for a tight distribution between 1 s and 30 min: old buckets ${worstOld.toFixed(2)}x, new buckets ${worstNew.toFixed(2)}x`);
console.log(`buckets: old ${OLD_BUCKETS.length}, new ${WAIT_BUCKETS.length} (+Inf each)`);
