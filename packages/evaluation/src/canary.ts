/**
 * Live quality canaries: labelled conversations fed into the input stream, marked in their
 * metadata so the judge workers publish their results to a canary topic (never to the users'
 * output topic), and scored there against their labels over a rolling window, per judge version.
 * The judge never sees the marker: it reads only the messages.
 */
import type { JudgedResult, ConversationMetadata } from "@tracesift/schemas";
import type { DatasetItem } from "./dataset.ts";
import { type BinaryMetrics, binaryMetrics, confusionOf } from "./metrics.ts";

/** Metadata keys of a canary: the feeding run, and the label as "true"/"false". */
export const CANARY_KEY = "tracesift_canary";
export const CANARY_LABEL_KEY = "tracesift_canary_label";

export type CanaryMark = { run: string; label: boolean };

export function canaryMarkOf(metadata: ConversationMetadata | undefined): CanaryMark | undefined {
  const run = metadata?.[CANARY_KEY];
  const label = metadata?.[CANARY_LABEL_KEY];
  if (typeof run !== "string" || run === "") return undefined;
  if (label === true || label === "true") return { run, label: true };
  if (label === false || label === "false") return { run, label: false };
  return undefined;
}

/** Routes a canary's result to the canary topic; undefined leaves it on the output topic. */
export function canaryTopicFor(canaryTopic: string) {
  return (job: { conversation: { metadata: ConversationMetadata } }): string | undefined =>
    canaryMarkOf(job.conversation.metadata) ? canaryTopic : undefined;
}

/**
 * One labelled conversation as an OpenAI-format input event. Each feeding gets its own id, so
 * the fleet's dedupe (which would skip a conversation it already judged) judges it again.
 */
export function canaryEvent(item: DatasetItem, run: string, seq: number): { key: string; value: string } {
  if (!item.label) throw new Error(`canary ${item.conversation.id}: unlabelled`);
  const id = `canary:${run}:${seq}:${item.conversation.id}`;
  const event = {
    id,
    messages: item.conversation.messages.map((m) => ({ role: m.role, content: m.content })),
    metadata: { ...item.conversation.metadata, [CANARY_KEY]: run, [CANARY_LABEL_KEY]: String(item.label.perceived_error) },
  };
  return { key: id, value: JSON.stringify(event) };
}

/** A judge version: the model and the prompt, as the result names them. */
export const judgeVersionOf = (r: Pick<JudgedResult, "judge">) => `${r.judge.model}|${r.judge.prompt_version}`;

export type CanaryScore = BinaryMetrics & { model: string; prompt_version: string };

/**
 * Rolling score per judge version over the last `windowMs` (by judged time) and at most
 * `maxPerVersion` verdicts. Redelivered results (same result_id) count once.
 */
export class RollingCanaryScore {
  private readonly byVersion = new Map<string, { at: number; id: string; label: boolean; predicted: boolean }[]>();
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    private readonly maxPerVersion = 1_000,
  ) {}

  /** Returns false for a result that is not a canary, or one already counted. */
  add(result: JudgedResult): boolean {
    const mark = canaryMarkOf(result.metadata);
    if (!mark || this.seen.has(result.result_id)) return false;
    const at = Date.parse(result.judged_at);
    this.seen.set(result.result_id, at);
    const key = judgeVersionOf(result);
    const list = this.byVersion.get(key) ?? [];
    list.push({ at, id: result.result_id, label: mark.label, predicted: result.verdict.perceived_error });
    this.byVersion.set(key, list);
    return true;
  }

  scores(now = Date.now()): CanaryScore[] {
    const out: CanaryScore[] = [];
    for (const [key, list] of this.byVersion) {
      const kept = list.filter((v) => now - v.at <= this.windowMs).slice(-this.maxPerVersion);
      for (const gone of list.slice(0, list.length - kept.length)) this.seen.delete(gone.id);
      this.byVersion.set(key, kept);
      const [model = "", prompt_version = ""] = key.split("|");
      out.push({ model, prompt_version, ...binaryMetrics(confusionOf(kept)) });
    }
    return out;
  }
}
