/**
 * Labelled datasets: JSONL, one conversation per line, in any input format the fleet reads
 * (`@tracesift/normalize`), with the label beside it. Two spellings of a line:
 *
 *   {"event": <event in any format>, "label": {"perceived_error": true, "reason": "…"}}
 *   {"id": "c1", "messages": [...], "label": {"perceived_error": false}}   (label inline)
 *
 * The wrapper form is recognised by its keys: only `event` and optionally `label`. Otherwise a
 * top-level `label` key is taken off the event before it is normalized. `label` may be absent
 * (unlabelled input for `tracesift label`); extra label fields (provenance, panel verdicts) pass
 * through, so `tracesift label`'s output is itself a dataset.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { isJudgeable, mergeFragments, NormalizeError, normalizeEvent, type TraceFragment } from "@tracesift/normalize";
import { type Conversation, type ConversationVersion, conversationVersion, type Message } from "@tracesift/schemas";
import { z } from "zod";

export const Label = z.looseObject({
  perceived_error: z.boolean(),
  reason: z.string().min(1).optional(),
  provenance: z.string().optional(),
});
export type Label = z.infer<typeof Label>;

export type DatasetItem = {
  /** 1-based line number in the file. */
  line: number;
  conversation: Conversation;
  version: ConversationVersion;
  label?: Label;
  /** False when no user message follows an assistant message: the fleet never judges those. */
  judgeable: boolean;
};

export type DatasetProblem = { line: number; message: string };

export type Dataset = { name: string; items: DatasetItem[]; problems: DatasetProblem[] };

/** Reads a dataset's text. Never throws: unreadable lines become problems with their line number. */
export function parseDataset(name: string, text: string): Dataset {
  const items: DatasetItem[] = [];
  const problems: DatasetProblem[] = [];
  const seen = new Map<string, number>();
  text.split("\n").forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === "") return;
    try {
      const item = parseDatasetLine(raw, line);
      const first = seen.get(item.conversation.id);
      if (first !== undefined) throw new Error(`conversation id "${item.conversation.id}" already used on line ${first}`);
      seen.set(item.conversation.id, line);
      items.push(item);
    } catch (err) {
      problems.push({ line, message: err instanceof Error ? err.message : String(err) });
    }
  });
  return { name, items, problems };
}

/** Reads dataset files, named after their file names; throws listing every unreadable line. */
export function readDatasetFiles(paths: readonly string[]): { path: string; dataset: Dataset }[] {
  const out = paths.map((path) => {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new DatasetError(`cannot read dataset ${path}: ${(err as Error).message}`);
    }
    return { path, dataset: parseDataset(basename(path).replace(/\.jsonl?$/, ""), text) };
  });
  const problems = out.flatMap(({ path, dataset }) => dataset.problems.map((p) => `  ${path}:${p.line}: ${p.message}`));
  if (problems.length > 0) throw new DatasetError(`${problems.length} unreadable line(s):\n${problems.slice(0, 20).join("\n")}${problems.length > 20 ? "\n  …" : ""}`);
  const names = out.map((d) => d.dataset.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new DatasetError(`two datasets are named "${dup}" (from their file names); rename one`);
  return out;
}

export class DatasetError extends Error {
  override name = "DatasetError";
}

export function parseDatasetLine(raw: string, line: number): DatasetItem {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new Error("not valid JSON");
  }
  const { event, label } = splitLine(value);
  let parsedLabel: Label | undefined;
  if (label !== undefined) {
    const parsed = Label.safeParse(label);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`invalid label: ${issue?.path.join(".") || "(root)"} ${issue?.message ?? ""}`.trim());
    }
    parsedLabel = parsed.data;
  }
  let fragments: TraceFragment[];
  try {
    fragments = normalizeEvent(event);
  } catch (err) {
    if (err instanceof NormalizeError) throw new Error(`${err.code}: ${err.message}`);
    throw err;
  }
  const keys = [...new Set(fragments.map((f) => f.conversation_key))];
  if (keys.length !== 1) {
    throw new Error(keys.length === 0 ? "the event holds no conversation" : `the event holds ${keys.length} conversations; put one per line`);
  }
  const conversation = mergeFragments(fragments);
  return {
    line,
    conversation,
    version: conversationVersion(conversation),
    ...(parsedLabel ? { label: parsedLabel } : {}),
    judgeable: isJudgeable(conversation),
  };
}

function splitLine(value: unknown): { event: unknown; label: unknown } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { event: value, label: undefined };
  const rec = value as Record<string, unknown>;
  const keys = Object.keys(rec);
  if ("event" in rec && keys.every((k) => k === "event" || k === "label")) return { event: rec.event, label: rec.label };
  if (!("label" in rec)) return { event: value, label: undefined };
  const { label, ...event } = rec;
  return { event, label };
}

/**
 * A conversation as the simplest input event (`{id, messages, metadata}`), so files written by
 * the tools (labels, review queue) read back through the same normalizer with the same version.
 */
export function conversationToEvent(conversation: Conversation): { id: string; messages: Pick<Message, "role" | "content">[]; metadata: Conversation["metadata"] } {
  return {
    id: conversation.id,
    messages: conversation.messages.map((m) => ({ role: m.role, content: m.content })),
    metadata: conversation.metadata,
  };
}

/** Identity of a conversation state across files: id plus content hash. */
export function itemKey(conversationId: string, version: ConversationVersion): string {
  return `${conversationId}\u0000${version.content_hash}`;
}
