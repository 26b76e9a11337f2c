/**
 * Labelling by model panels, then people. A first panel judges; if every member answers and they
 * agree, that is the label (`unanimous`). Otherwise arbiters see the conversation and every panel
 * verdict; if every arbiter answers and they agree, that is the label (`arbitrated`). Otherwise the
 * conversation goes to human review (`human` once settled). The decision rule is pure, here.
 */
import { Role, type Verdict } from "@tracesift/schemas";
import { z } from "zod";

/** One model's answer on one conversation, as written to the label and review files. */
export const Vote = z.object({
  judge: z.string(),
  model: z.string(),
  perceived_error: z.boolean().optional(),
  reason: z.string().optional(),
  /** Set when the model gave no valid verdict. */
  error: z.string().optional(),
});
export type Vote = z.infer<typeof Vote>;

export const Provenance = z.enum(["unanimous", "arbitrated", "human"]);
export type Provenance = z.infer<typeof Provenance>;

/** The conversation as an input event (`{id, messages, metadata}`): a label file is a dataset. */
export const EventRecord = z.object({
  id: z.string(),
  messages: z.array(z.object({ role: Role, content: z.string() })),
  metadata: z.record(z.string(), z.unknown()).default({}),
});

export const LabelLine = z.object({
  event: EventRecord,
  label: z.object({
    perceived_error: z.boolean(),
    reason: z.string().min(1),
    provenance: Provenance,
    panel: z.array(Vote),
    arbiters: z.array(Vote),
    reviewer: z.string().optional(),
    labelled_at: z.string(),
  }),
});
export type LabelLine = z.infer<typeof LabelLine>;

export const QueueLine = z.object({
  event: EventRecord,
  panel: z.array(Vote),
  arbiters: z.array(Vote),
  queued_at: z.string(),
});
export type QueueLine = z.infer<typeof QueueLine>;

export function voteVerdict(vote: Vote): Verdict | null {
  return vote.perceived_error !== undefined && vote.reason !== undefined && vote.error === undefined
    ? { perceived_error: vote.perceived_error, reason: vote.reason }
    : null;
}

/** The shared verdict when every vote is valid and they agree (the first voter's reason), else null. */
export function agreedVerdict(votes: readonly Vote[]): Verdict | null {
  const verdicts = votes.map(voteVerdict);
  const first = verdicts[0];
  if (!first || verdicts.some((v) => v === null || v.perceived_error !== first.perceived_error)) return null;
  return first;
}

export type Decision =
  | { kind: "unanimous"; verdict: Verdict }
  | { kind: "arbitrated"; verdict: Verdict }
  | { kind: "needs_arbiters" }
  | { kind: "human_review" };

/** Where a conversation stands given the panel's votes and, once asked, the arbiters'. */
export function decide(panel: readonly Vote[], arbiters?: readonly Vote[]): Decision {
  const unanimous = agreedVerdict(panel);
  if (unanimous) return { kind: "unanimous", verdict: unanimous };
  if (arbiters === undefined) return { kind: "needs_arbiters" };
  const arbitrated = arbiters.length > 0 ? agreedVerdict(arbiters) : null;
  return arbitrated ? { kind: "arbitrated", verdict: arbitrated } : { kind: "human_review" };
}
