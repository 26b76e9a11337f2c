/**
 * One labelling run (see labeling.ts for the rule). Each decided conversation is appended at once
 * to the labels file or the review queue; both are re-read on start, so an interrupted run resumes
 * where it stopped. Statistics are computed from those files for the run's input, so they are the
 * same whether the run was interrupted or not.
 */
import { conversationVersion } from "@tracesift/schemas";
import { fleissKappa, pairwiseAgreement } from "./agreement.ts";
import { conversationToEvent, type DatasetItem, itemKey } from "./dataset.ts";
import { JsonlAppender, readJsonl } from "./jsonl.ts";
import { decide, LabelLine, QueueLine, type Vote, voteVerdict } from "./labeling.ts";
import type { VerdictOutcome } from "./outcome.ts";
import { runPool } from "./pool.ts";
import type { LabelStats } from "./report.ts";
import { type CachedArbiter, type CachedJudge, JudgeUnavailableError } from "./runner.ts";

export type LabelInput = { dataset: string; item: DatasetItem };

export type LabelRunOptions = {
  inputs: LabelInput[];
  panel: CachedJudge[];
  arbiters: CachedArbiter[];
  labelsPath: string;
  queuePath: string;
  concurrency: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
};

export type LabelRunResult = { stats: LabelStats; modelCalls: number; cacheHits: number; resumed: number; errors: string[] };

function toVote(name: string, model: string, outcome: VerdictOutcome): Vote {
  return outcome.status === "judged"
    ? { judge: name, model, perceived_error: outcome.verdict.perceived_error, reason: outcome.verdict.reason }
    : { judge: name, model, error: outcome.error };
}

/** Written events hold the normalized messages, so this is the version the dataset reader computed. */
function keyOfEvent(event: LabelLine["event"]): string {
  return itemKey(event.id, conversationVersion(event));
}

export async function runLabelling(options: LabelRunOptions): Promise<LabelRunResult> {
  const labelled = new Map<string, LabelLine>();
  for (const l of readJsonl(options.labelsPath, LabelLine).records) labelled.set(keyOfEvent(l.event), l);
  const queued = new Map<string, QueueLine>();
  for (const q of readJsonl(options.queuePath, QueueLine).records) queued.set(keyOfEvent(q.event), q);
  const labels = new JsonlAppender(options.labelsPath);
  const queue = new JsonlAppender(options.queuePath);
  const all = [...options.panel, ...options.arbiters];
  const callsBefore = all.reduce((n, j) => n + j.stats.modelCalls, 0);
  const hitsBefore = all.reduce((n, j) => n + j.stats.cacheHits, 0);
  for (const j of all) await j.assertUsable();

  const errors: string[] = [];
  let resumed = 0;
  const tasks: LabelInput[] = [];
  for (const input of options.inputs) {
    if (!input.item.judgeable) continue;
    const key = itemKey(input.item.conversation.id, input.item.version);
    if (labelled.has(key) || queued.has(key)) resumed++;
    else tasks.push(input);
  }
  let done = 0;
  let failuresInARow = 0;
  let fatal: JudgeUnavailableError | undefined;
  const abort = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, abort.signal]) : abort.signal;

  await runPool(
    tasks,
    options.concurrency,
    async ({ dataset, item }) => {
      const input = {
        conversation: item.conversation,
        version: item.version,
        source: { topic: `label:${dataset}`, partition: 0, offset: String(item.line) },
      };
      const key = itemKey(item.conversation.id, item.version);
      const event = conversationToEvent(item.conversation);
      try {
        const panel = await Promise.all(options.panel.map(async (j) => toVote(j.config.name, j.config.model, await j.judge(input))));
        let decision = decide(panel);
        let arbiters: Vote[] = [];
        if (decision.kind === "needs_arbiters") {
          const shown = panel.map(voteVerdict);
          arbiters = await Promise.all(options.arbiters.map(async (a) => toVote(a.config.name, a.config.model, await a.arbitrate(input, shown))));
          decision = decide(panel, arbiters);
        }
        const now = new Date().toISOString();
        if (decision.kind === "unanimous" || decision.kind === "arbitrated") {
          const line: LabelLine = {
            event,
            label: { ...decision.verdict, provenance: decision.kind, panel, arbiters, labelled_at: now },
          };
          labels.append(line);
          labelled.set(key, line);
        } else {
          const line: QueueLine = { event, panel, arbiters, queued_at: now };
          queue.append(line);
          queued.set(key, line);
        }
        failuresInARow = 0;
        options.onProgress?.(++done, tasks.length);
      } catch (err) {
        if (signal.aborted) return;
        if (!(err instanceof JudgeUnavailableError)) throw err;
        if (!errors.includes(err.message)) errors.push(err.message);
        // Every model is needed for every conversation: one that refuses or keeps failing stops the run.
        if (err.fatal || ++failuresInARow >= 3) {
          fatal ??= err;
          abort.abort(err);
        }
      }
    },
    signal,
  );
  if (fatal) throw fatal;

  return {
    stats: labelStats(options, labelled, queued),
    modelCalls: all.reduce((n, j) => n + j.stats.modelCalls, 0) - callsBefore,
    cacheHits: all.reduce((n, j) => n + j.stats.cacheHits, 0) - hitsBefore,
    resumed,
    errors,
  };
}

function labelStats(options: LabelRunOptions, labelled: Map<string, LabelLine>, queued: Map<string, QueueLine>): LabelStats {
  const panelNames = options.panel.map((j) => j.config.name);
  const arbiterNames = options.arbiters.map((a) => a.config.name);
  const stats: LabelStats = {
    input: options.inputs.length,
    unanimous: 0,
    arbitrated: 0,
    human_review: 0,
    human_settled: 0,
    not_judgeable: 0,
    pending: 0,
    panel: { judges: panelNames, positive_rate: {}, invalid: {}, pairwise: [], fleiss: fleissKappa([]) },
    arbiters: { judges: arbiterNames, asked: 0, pairwise: [] },
  };
  const panelRatings: (boolean | null)[][] = [];
  const arbiterRatings: (boolean | null)[][] = [];
  const rate = (votes: Vote[], names: string[]) => names.map((n) => votes.find((v) => v.judge === n)?.perceived_error ?? null);
  for (const { item } of options.inputs) {
    if (!item.judgeable) {
      stats.not_judgeable++;
      continue;
    }
    const key = itemKey(item.conversation.id, item.version);
    const q = queued.get(key);
    const l = labelled.get(key);
    // Queued once means "went to human review", whether or not a person has settled it since.
    const votes = q ? { panel: q.panel, arbiters: q.arbiters } : l ? { panel: l.label.panel, arbiters: l.label.arbiters } : undefined;
    if (l?.label.provenance === "human") stats.human_settled++;
    if (q || l?.label.provenance === "human") stats.human_review++;
    else if (l?.label.provenance === "unanimous") stats.unanimous++;
    else if (l?.label.provenance === "arbitrated") stats.arbitrated++;
    else stats.pending++;
    if (!votes) continue;
    panelRatings.push(rate(votes.panel, panelNames));
    for (const v of votes.panel) if (v.error !== undefined) stats.panel.invalid[v.judge] = (stats.panel.invalid[v.judge] ?? 0) + 1;
    if (votes.arbiters.length > 0) {
      stats.arbiters.asked++;
      arbiterRatings.push(rate(votes.arbiters, arbiterNames));
    }
  }
  panelNames.forEach((name, i) => {
    const answered = panelRatings.map((r) => r[i]).filter((v): v is boolean => typeof v === "boolean");
    stats.panel.positive_rate[name] = answered.length === 0 ? null : answered.filter(Boolean).length / answered.length;
  });
  stats.panel.pairwise = pairwiseAgreement(panelRatings, panelNames);
  stats.panel.fleiss = fleissKappa(panelRatings);
  stats.arbiters.pairwise = pairwiseAgreement(arbiterRatings, arbiterNames);
  return stats;
}
