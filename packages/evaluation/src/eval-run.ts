/**
 * One evaluation run: every judge configuration over every labelled dataset, resumable. Each
 * outcome is appended to the run's progress file as soon as it is known; on start the file is
 * re-read and only what is missing is judged (and that mostly from the result cache when the same
 * configuration judged it before, in any run).
 */
import { z } from "zod";
import { calibrationOf, DEFAULT_BAND, escalationOf, type ScoredVerdict, type UncertainBand } from "./calibration.ts";
import type { Dataset, DatasetItem } from "./dataset.ts";
import { JsonlAppender, readJsonl } from "./jsonl.ts";
import { type EvalRecord, summarizeEval } from "./metrics.ts";
import { VerdictOutcome } from "./outcome.ts";
import { runPool } from "./pool.ts";
import type { Disagreement, EvalReport, EvalRow } from "./report.ts";
import { type CachedJudge, JudgeUnavailableError } from "./runner.ts";

export const EvalProgressRecord = z.object({
  v: z.literal(1),
  judge: z.string(),
  model: z.string(),
  prompt_version: z.string(),
  dataset: z.string(),
  conversation_id: z.string(),
  content_hash: z.string(),
  outcome: VerdictOutcome,
  recorded_at: z.string(),
});
export type EvalProgressRecord = z.infer<typeof EvalProgressRecord>;

export type EvalDataset = { path: string; dataset: Dataset };

export type EvalRunOptions = {
  datasets: EvalDataset[];
  judges: CachedJudge[];
  progressPath: string;
  concurrency: number;
  signal?: AbortSignal;
  /** Confidence band whose verdicts would be escalated (default 0.35–0.65). */
  uncertainBand?: UncertainBand;
  /** Called after each newly recorded outcome. */
  onProgress?: (done: number, total: number) => void;
};

/** A judge whose calls failed for this many conversations in a row is given up on for the run. */
const MAX_CONSECUTIVE_FAILURES = 3;

type Task = { judge: CachedJudge; dataset: string; item: DatasetItem; key: string };

function progressKey(judge: CachedJudge, dataset: string, item: Pick<DatasetItem, "conversation" | "version">): string {
  return [judge.config.name, judge.config.model, judge.promptVersion, dataset, item.conversation.id, item.version.content_hash].join("\u0000");
}

const scorable = (item: DatasetItem) => item.label !== undefined && item.judgeable;

export async function runEvaluation(options: EvalRunOptions): Promise<EvalReport> {
  const { records } = readJsonl(options.progressPath, EvalProgressRecord);
  const outcomes = new Map<string, VerdictOutcome>();
  for (const r of records) {
    outcomes.set([r.judge, r.model, r.prompt_version, r.dataset, r.conversation_id, r.content_hash].join("\u0000"), r.outcome);
  }
  const progress = new JsonlAppender(options.progressPath);
  const errors: string[] = [];
  const unusable = new Set<string>();
  const failuresInARow = new Map<string, number>();
  for (const judge of options.judges) {
    try {
      await judge.assertUsable();
    } catch (err) {
      errors.push((err as Error).message);
      unusable.add(judge.config.name);
    }
  }

  // Conversation-major order spreads the load over the models.
  const tasks: Task[] = [];
  let resumed = 0;
  for (const { dataset } of options.datasets) {
    for (const item of dataset.items.filter(scorable)) {
      for (const judge of options.judges) {
        const key = progressKey(judge, dataset.name, item);
        if (outcomes.has(key)) resumed++;
        else if (!unusable.has(judge.config.name)) tasks.push({ judge, dataset: dataset.name, item, key });
      }
    }
  }
  const callsBefore = options.judges.reduce((n, j) => n + j.stats.modelCalls, 0);
  const hitsBefore = options.judges.reduce((n, j) => n + j.stats.cacheHits, 0);
  let done = 0;
  await runPool(
    tasks,
    options.concurrency,
    async (task) => {
      if (unusable.has(task.judge.config.name)) return;
      let outcome: VerdictOutcome;
      try {
        outcome = await task.judge.judge({
          conversation: task.item.conversation,
          version: task.item.version,
          source: { topic: `eval:${task.dataset}`, partition: 0, offset: String(task.item.line) },
        });
      } catch (err) {
        if (options.signal?.aborted) return;
        if (!(err instanceof JudgeUnavailableError)) throw err;
        // A fatal answer (bad key, unknown model) ends this judge's run, and so does an endpoint
        // that keeps failing; an occasional failure just leaves a gap that a re-run fills.
        const name = task.judge.config.name;
        const inARow = (failuresInARow.get(name) ?? 0) + 1;
        failuresInARow.set(name, inARow);
        if (err.fatal || inARow >= MAX_CONSECUTIVE_FAILURES) unusable.add(name);
        if (!errors.includes(err.message)) errors.push(err.message);
        return;
      }
      failuresInARow.set(task.judge.config.name, 0);
      outcomes.set(task.key, outcome);
      progress.append({
        v: 1,
        judge: task.judge.config.name,
        model: task.judge.config.model,
        prompt_version: task.judge.promptVersion,
        dataset: task.dataset,
        conversation_id: task.item.conversation.id,
        content_hash: task.item.version.content_hash,
        outcome,
        recorded_at: new Date().toISOString(),
      } satisfies EvalProgressRecord);
      options.onProgress?.(++done, tasks.length);
    },
    options.signal,
  );

  const rows: EvalRow[] = [];
  const scored = new Map<string, ScoredVerdict[]>();
  for (const judge of options.judges) {
    for (const { dataset } of options.datasets) {
      const evalRecords: (EvalRecord & { item: DatasetItem })[] = [];
      for (const item of dataset.items.filter(scorable)) {
        const outcome = outcomes.get(progressKey(judge, dataset.name, item));
        if (outcome) evalRecords.push({ conversation_id: item.conversation.id, label: item.label!.perceived_error, outcome, item });
      }
      const verdicts = evalRecords.flatMap(({ conversation_id, label, outcome }): ScoredVerdict[] =>
        outcome.status === "judged"
          ? [{ conversation_id, label, predicted: outcome.verdict.perceived_error, ...(outcome.verdict.confidence === undefined ? {} : { confidence: outcome.verdict.confidence }) }]
          : [],
      );
      scored.set(`${judge.config.name}\u0000${dataset.name}`, verdicts);
      rows.push({
        judge: judge.config.name,
        model: judge.config.model,
        prompt_version: judge.promptVersion,
        dataset: dataset.name,
        summary: summarizeEval(evalRecords, judge.price),
        calibration: calibrationOf(verdicts),
        // Filled below, once every judge's verdicts are known.
        escalation: escalationOf(verdicts, options.uncertainBand ?? DEFAULT_BAND),
        disagreements: evalRecords.flatMap(({ item, label, outcome }): Disagreement[] =>
          outcome.status === "judged" && outcome.verdict.perceived_error !== label
            ? [
                {
                  conversation_id: item.conversation.id,
                  line: item.line,
                  label,
                  label_reason: item.label?.reason ?? null,
                  predicted: outcome.verdict.perceived_error,
                  model_reason: outcome.verdict.reason,
                },
              ]
            : [],
        ),
        unresolved: evalRecords.flatMap(({ item, outcome }) =>
          outcome.status === "invalid" ? [{ conversation_id: item.conversation.id, line: item.line, error: outcome.error }] : [],
        ),
      });
    }
  }
  // What escalating a judge's uncertain verdicts to each other judge of the run would give.
  for (const row of rows) {
    const others = rows
      .filter((r) => r.dataset === row.dataset && r.judge !== row.judge)
      .map((r) => ({ judge: r.judge, verdicts: new Map((scored.get(`${r.judge}\u0000${r.dataset}`) ?? []).map((v) => [v.conversation_id, v.predicted])) }));
    row.escalation = escalationOf(scored.get(`${row.judge}\u0000${row.dataset}`) ?? [], options.uncertainBand ?? DEFAULT_BAND, others);
  }
  const expected = options.datasets.reduce((n, d) => n + d.dataset.items.filter(scorable).length, 0) * options.judges.length;
  return {
    generated_at: new Date().toISOString(),
    datasets: options.datasets.map(({ path, dataset }) => ({
      name: dataset.name,
      path,
      conversations: dataset.items.length,
      scored_conversations: dataset.items.filter(scorable).length,
      not_judgeable: dataset.items.filter((i) => !i.judgeable).length,
      unlabelled: dataset.items.filter((i) => i.label === undefined).length,
    })),
    judges: options.judges.map((j) => ({
      name: j.config.name,
      model: j.config.model,
      base_url: j.config.baseURL,
      prompt_version: j.promptVersion,
      price: j.price,
    })),
    rows,
    run: {
      model_calls: options.judges.reduce((n, j) => n + j.stats.modelCalls, 0) - callsBefore,
      cache_hits: options.judges.reduce((n, j) => n + j.stats.cacheHits, 0) - hitsBefore,
      resumed,
      complete: rows.reduce((n, r) => n + r.summary.conversations, 0) === expected,
      errors,
    },
  };
}
