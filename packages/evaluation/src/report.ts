/**
 * Rendering of evaluation and labelling results: terminal tables and Markdown. Pure: strings in,
 * strings out.
 */
import type { Price } from "@tracesift/judge";
import type { FleissResult, PairAgreement } from "./agreement.ts";
import type { Calibration, Escalation } from "./calibration.ts";
import type { EvalSummary } from "./metrics.ts";

export type Disagreement = {
  conversation_id: string;
  line: number;
  label: boolean;
  label_reason: string | null;
  predicted: boolean;
  model_reason: string;
};

export type EvalRow = {
  judge: string;
  model: string;
  prompt_version: string;
  dataset: string;
  summary: EvalSummary;
  /** Over the verdicts that carry a confidence (none unless the judge asks for logprobs). */
  calibration: Calibration;
  escalation: Escalation;
  disagreements: Disagreement[];
  unresolved: { conversation_id: string; line: number; error: string }[];
};

export type EvalReport = {
  generated_at: string;
  datasets: { name: string; path: string; conversations: number; scored_conversations: number; not_judgeable: number; unlabelled: number }[];
  judges: { name: string; model: string; base_url: string; prompt_version: string; price: Price }[];
  rows: EvalRow[];
  /** This invocation only: calls made now, verdicts from the cache, records resumed from the progress file. */
  run: { model_calls: number; cache_hits: number; resumed: number; complete: boolean; errors: string[] };
};

export const fmt = {
  pct: (x: number | null, digits = 1): string => (x === null ? "–" : `${(x * 100).toFixed(digits)}%`),
  num: (x: number | null, digits = 3): string => (x === null ? "–" : x.toFixed(digits)),
  int: (x: number | null): string => (x === null ? "–" : Math.round(x).toLocaleString("en-US")),
  usd: (x: number | null): string => (x === null ? "–" : `$${x < 0.01 ? x.toFixed(6) : x.toFixed(4)}`),
  verdict: (pe: boolean): string => (pe ? "error" : "no error"),
};

/** Left-aligned first columns, right-aligned numbers, two spaces between columns. */
export function renderTable(headers: string[], rows: string[][], leftColumns = 1): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

export function renderMarkdownTable(headers: string[], rows: string[][]): string {
  const esc = (s: string) => s.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
  return [`| ${headers.map(esc).join(" | ")} |`, `|${headers.map(() => " --- ").join("|")}|`, ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`)].join("\n");
}

const QUALITY_HEADERS = ["judge", "dataset", "n", "accuracy", "precision", "recall", "F1", "kappa", "acc(always no)", "TP", "FP", "FN", "TN"];
const OPS_HEADERS = ["judge", "dataset", "unresolved", "invalid output", "tokens/1k conv", "cost/1k conv", "latency p50 ms", "latency p99 ms", "from cache"];

function qualityRows(rows: readonly EvalRow[]): string[][] {
  return rows.map(({ judge, dataset, summary: s }) => [
    judge,
    dataset,
    String(s.scored),
    fmt.pct(s.metrics.accuracy),
    fmt.pct(s.metrics.precision),
    fmt.pct(s.metrics.recall),
    fmt.num(s.metrics.f1),
    fmt.num(s.metrics.kappa),
    fmt.pct(s.metrics.always_no_error_accuracy),
    String(s.confusion.tp),
    String(s.confusion.fp),
    String(s.confusion.fn),
    String(s.confusion.tn),
  ]);
}

function opsRows(rows: readonly EvalRow[]): string[][] {
  return rows.map(({ judge, dataset, summary: s }) => [
    judge,
    dataset,
    String(s.unresolved),
    fmt.pct(s.invalid_output_rate),
    fmt.int(s.tokens_per_1k),
    fmt.usd(s.cost_per_1k_usd),
    fmt.int(s.latency_ms.p50),
    fmt.int(s.latency_ms.p99),
    `${s.cache_hits}/${s.conversations}`,
  ]);
}

function quote(s: string | null): string {
  return s === null ? "(no reason given)" : `"${s}"`;
}

export function renderEvalTerminal(report: EvalReport, maxDisagreements = 10): string {
  const out: string[] = [];
  out.push("Judge quality against the labels (positive class: perceived error; n = conversations with a valid verdict)");
  out.push(renderTable(QUALITY_HEADERS, qualityRows(report.rows), 2));
  out.push("");
  const calibration = renderCalibration(report, false);
  if (calibration) out.push(calibration);
  out.push("Cost and operations (invalid output = invalid answers / all answers; cost at each judge's prices)");
  out.push(renderTable(OPS_HEADERS, opsRows(report.rows), 2));
  for (const row of report.rows) {
    if (row.disagreements.length === 0) continue;
    out.push("");
    out.push(`Disagreements: ${row.judge} on ${row.dataset} (${row.disagreements.length})`);
    for (const d of row.disagreements.slice(0, maxDisagreements)) {
      out.push(`  ${d.conversation_id} (line ${d.line})`);
      out.push(`    label: ${fmt.verdict(d.label)}, ${quote(d.label_reason)}`);
      out.push(`    model: ${fmt.verdict(d.predicted)}, ${quote(d.model_reason)}`);
    }
    if (row.disagreements.length > maxDisagreements) out.push(`  … ${row.disagreements.length - maxDisagreements} more in report.md / report.json`);
  }
  return `${out.join("\n")}\n`;
}

export function renderEvalMarkdown(report: EvalReport): string {
  const out: string[] = [`# Judge evaluation`, "", `Generated ${report.generated_at}.`, ""];
  out.push("## Judges", "");
  out.push(
    renderMarkdownTable(
      ["judge", "model", "endpoint", "prompt", "price"],
      report.judges.map((j) => [j.name, j.model, j.base_url, j.prompt_version, describePrice(j.price)]),
    ),
  );
  out.push("", "## Datasets", "");
  out.push(
    renderMarkdownTable(
      ["dataset", "file", "conversations", "scored", "not judgeable", "unlabelled"],
      report.datasets.map((d) => [d.name, d.path, String(d.conversations), String(d.scored_conversations), String(d.not_judgeable), String(d.unlabelled)]),
    ),
  );
  out.push("", "## Quality", "", "Positive class: perceived error. n counts conversations with a valid verdict.", "");
  out.push(renderMarkdownTable(QUALITY_HEADERS, qualityRows(report.rows)));
  const calibration = renderCalibration(report, true);
  if (calibration) out.push("", calibration.trimEnd());
  out.push("", "## Cost and operations", "");
  out.push(renderMarkdownTable(OPS_HEADERS, opsRows(report.rows)));
  for (const row of report.rows) {
    out.push("", `## Disagreements: ${row.judge} on ${row.dataset}`, "");
    if (row.disagreements.length === 0) out.push("None.");
    else {
      out.push(
        renderMarkdownTable(
          ["conversation", "line", "label", "label reason", "model", "model reason"],
          row.disagreements.map((d) => [d.conversation_id, String(d.line), fmt.verdict(d.label), d.label_reason ?? "", fmt.verdict(d.predicted), d.model_reason]),
        ),
      );
    }
    if (row.unresolved.length > 0) {
      out.push("", "No valid verdict:", "");
      out.push(renderMarkdownTable(["conversation", "line", "last error"], row.unresolved.map((u) => [u.conversation_id, String(u.line), u.error])));
    }
  }
  return `${out.join("\n")}\n`;
}

export function describePrice(price: Price): string {
  if ("usd_per_gpu_hour" in price) return `$${price.usd_per_gpu_hour}/GPU-hour × ${price.gpus} GPU, ${price.parallelism} requests at once`;
  return `$${price.input} in / $${price.cached_input ?? price.input / 2} cached / $${price.output} out per 1M tokens`;
}

export type LabelStats = {
  input: number;
  unanimous: number;
  arbitrated: number;
  human_review: number;
  /** Of those, settled by a person since (tracesift review). */
  human_settled: number;
  not_judgeable: number;
  /** Not decided this run (model unavailable, interrupted): rerun to finish. */
  pending: number;
  panel: { judges: string[]; positive_rate: Record<string, number | null>; invalid: Record<string, number>; pairwise: PairAgreement[]; fleiss: FleissResult };
  arbiters: { judges: string[]; asked: number; pairwise: PairAgreement[] };
};

export function renderLabelStats(stats: LabelStats): string {
  const out: string[] = [];
  out.push(
    `Labels: ${stats.input} input = ${stats.unanimous} unanimous + ${stats.arbitrated} arbitrated + ${stats.human_review} to human review (${stats.human_settled} settled) + ${stats.not_judgeable} not judgeable + ${stats.pending} pending`,
  );
  out.push("");
  out.push(
    `First panel: Fleiss' kappa ${fmt.num(stats.panel.fleiss.kappa)} over ${stats.panel.fleiss.subjects} conversations (observed agreement ${fmt.pct(stats.panel.fleiss.observed)}, chance ${fmt.pct(stats.panel.fleiss.expected)})`,
  );
  out.push(
    renderTable(
      ["judge", "said error", "invalid"],
      stats.panel.judges.map((j) => [j, fmt.pct(stats.panel.positive_rate[j] ?? null), String(stats.panel.invalid[j] ?? 0)]),
    ),
  );
  out.push("");
  out.push(renderTable(["pair", "", "n", "agreement", "Cohen's kappa"], pairRows(stats.panel.pairwise), 2));
  if (stats.arbiters.judges.length > 1) {
    out.push("", `Arbiters (asked on ${stats.arbiters.asked} conversations):`);
    out.push(renderTable(["pair", "", "n", "agreement", "Cohen's kappa"], pairRows(stats.arbiters.pairwise), 2));
  }
  return `${out.join("\n")}\n`;
}

function pairRows(pairs: readonly PairAgreement[]): string[][] {
  return pairs.map((p) => [p.a, p.b, String(p.n), fmt.pct(p.agreement), fmt.num(p.kappa)]);
}

const CALIBRATION_HEADERS = ["judge", "dataset", "with confidence", "ECE", "in band", "acc in band", "acc outside", "acc if reviewed", "acc if escalated"];

function calibrationRows(rows: readonly EvalRow[]): string[][] {
  return rows.map(({ judge, dataset, calibration: c, escalation: e }) => [
    judge,
    dataset,
    String(c.n),
    fmt.num(c.ece),
    `${e.in_band} (${fmt.pct(e.in_band_share)})`,
    fmt.pct(e.accuracy_in_band),
    fmt.pct(e.accuracy_outside_band),
    fmt.pct(e.accuracy_if_reviewed),
    e.accuracy_if_escalated_to.map((x) => `${x.judge}: ${fmt.pct(x.accuracy)}`).join(", ") || "–",
  ]);
}

/** Reliability table of one row: per confidence bin, how often the judge was right. */
function reliabilityRows(c: Calibration): string[][] {
  return c.bins.filter((b) => b.n > 0).map((b) => [`${b.low.toFixed(1)}–${b.high.toFixed(1)}`, String(b.n), fmt.num(b.mean_confidence), fmt.pct(b.accuracy)]);
}

/** Calibration beside the quality table; empty when no judge returned confidences. */
export function renderCalibration(report: EvalReport, markdown: boolean): string {
  const withConfidence = report.rows.filter((r) => r.calibration.n > 0);
  if (withConfidence.length === 0) return "";
  const table = markdown ? renderMarkdownTable : (h: string[], r: string[][]) => renderTable(h, r, 2);
  const band = withConfidence[0]!.escalation.band;
  const out = [
    markdown ? "## Calibration" : `Calibration (ECE = expected calibration error over 10 bins; in band = confidence in ${band.low}–${band.high})`,
    "",
  ];
  if (markdown) out.push(`ECE = expected calibration error over 10 bins; band = confidence in ${band.low}–${band.high}; "if reviewed" assumes review corrects every in-band verdict.`, "");
  out.push(table(CALIBRATION_HEADERS, calibrationRows(withConfidence)));
  for (const row of withConfidence) {
    out.push("", `Reliability: ${row.judge} on ${row.dataset}`, "");
    out.push(table(["confidence", "n", "mean confidence", "accuracy"], reliabilityRows(row.calibration)));
  }
  return `${out.join("\n")}\n`;
}
