/**
 * `tracesift review`: a person settles the conversations `tracesift label` could not. Reads
 * answers line by line (a terminal or a pipe), and appends each label to labels.jsonl as soon as it
 * is given: the queue file is never rewritten, and a conversation counts as settled once the labels
 * file has it, so quitting at any point and running again continues with the rest.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { conversationVersion } from "@tracesift/schemas";
import { itemKey, JsonlAppender, LabelLine, QueueLine, readJsonl, type Vote } from "@tracesift/evaluation";
import type { Command } from "./main.ts";
import { parseCommandArgs, stringArg, UsageError } from "./usage.ts";

const HELP = `tracesift review --out <dir> [--reviewer <name>]
tracesift review --queue <review-queue.jsonl> --labels <labels.jsonl> [--reviewer <name>]

Shows each conversation of the review queue that has no label yet, with the panel's and the
arbiters' verdicts, and asks: perceived error? y(es) / n(o) / s(kip for now) / q(uit), then a
reason (Enter keeps the suggested one: the reason of a model that gave your answer). Each answer
is appended to the labels file at once (provenance "human"); run again to continue.
Reads answers from stdin line by line, so it also works with piped input.

  --out <dir>         the directory of tracesift label (review-queue.jsonl, labels.jsonl)
  --queue, --labels   the two files, instead of --out
  --reviewer <name>   stored with each label (default: $USER)
`;

const OPTIONS = { out: { type: "string" }, queue: { type: "string" }, labels: { type: "string" }, reviewer: { type: "string" } } as const;

export type ReviewIo = { stdin: Readable; stdout: Writable; env: Record<string, string | undefined> };

const keyOf = (event: LabelLine["event"]) => itemKey(event.id, conversationVersion(event));

function indent(text: string, prefix: string): string {
  return text
    .split("\n")
    .map((l, i) => (i === 0 ? l : `${" ".repeat(prefix.length)}${l}`))
    .join("\n");
}

function describeVote(v: Vote): string {
  if (v.error !== undefined || v.perceived_error === undefined) return `${v.judge} (${v.model}): no valid answer (${v.error ?? "?"})`;
  return `${v.judge} (${v.model}): ${v.perceived_error ? "ERROR" : "no error"} — ${v.reason ?? ""}`;
}

function render(entry: QueueLine, position: number, total: number): string {
  const out = [`\n=== ${position}/${total}: ${entry.event.id} ===`];
  for (const m of entry.event.messages) {
    const prefix = `  ${m.role.padEnd(9)} `;
    out.push(`${prefix}${indent(m.content, prefix)}`);
  }
  out.push("  panel:");
  for (const v of entry.panel) out.push(`    ${describeVote(v)}`);
  if (entry.arbiters.length > 0) {
    out.push("  arbiters:");
    for (const v of entry.arbiters) out.push(`    ${describeVote(v)}`);
  }
  return `${out.join("\n")}\n`;
}

export async function runReviewCommand(argv: string[], io: ReviewIo): Promise<number> {
  const args = parseCommandArgs(argv, OPTIONS, HELP);
  if (!args) return 0;
  const out = stringArg(args, "out");
  const queuePath = stringArg(args, "queue") ?? (out !== undefined ? join(out, "review-queue.jsonl") : undefined);
  const labelsPath = stringArg(args, "labels") ?? (out !== undefined ? join(out, "labels.jsonl") : undefined);
  if (queuePath === undefined || labelsPath === undefined) throw new UsageError(`give --out, or --queue and --labels\n\n${HELP}`);
  const reviewer = stringArg(args, "reviewer") ?? io.env.USER ?? "unknown";
  // A mistyped --out is not "nothing to review".
  if (!existsSync(queuePath)) throw new UsageError(`no review queue at ${queuePath} (tracesift label --out <dir> writes it)`);

  const queue = readJsonl(queuePath, QueueLine).records;
  const settled = new Set(readJsonl(labelsPath, LabelLine).records.map((l) => keyOf(l.event)));
  const seen = new Set<string>();
  const pending = queue.filter((q) => {
    const key = keyOf(q.event);
    if (settled.has(key) || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  if (pending.length === 0) {
    io.stdout.write(`Nothing to review: ${queue.length} conversation(s) in ${queuePath}, all settled in ${labelsPath}.\n`);
    return 0;
  }

  const labels = new JsonlAppender(labelsPath);
  const rl = createInterface({ input: io.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  const lines = rl[Symbol.asyncIterator]();
  const ask = async (prompt: string): Promise<string | null> => {
    io.stdout.write(prompt);
    const next = await lines.next();
    if (next.done) {
      io.stdout.write("\n");
      return null;
    }
    return next.value.trim();
  };

  let saved = 0;
  let skipped = 0;
  try {
    review: for (const [i, entry] of pending.entries()) {
      io.stdout.write(render(entry, i + 1, pending.length));
      let answer: boolean | undefined;
      for (;;) {
        const a = (await ask("Perceived error? [y]es / [n]o / [s]kip / [q]uit: "))?.toLowerCase();
        if (a === undefined || a === "q" || a === "quit") break review;
        if (a === "s" || a === "skip") {
          skipped++;
          continue review;
        }
        if (a === "y" || a === "yes" || a === "n" || a === "no") {
          answer = a.startsWith("y");
          break;
        }
        io.stdout.write("Please answer y, n, s or q.\n");
      }
      if (answer === undefined) break;
      const suggestion = [...entry.arbiters, ...entry.panel].find((v) => v.error === undefined && v.perceived_error === answer && v.reason)?.reason;
      let reason: string | undefined;
      while (reason === undefined) {
        const r = await ask(suggestion ? `Reason [Enter: "${suggestion}"]: ` : "Reason (one sentence naming the evidence): ");
        if (r === null) break review;
        if (r !== "") reason = r;
        else if (suggestion) reason = suggestion;
      }
      const line: LabelLine = {
        event: entry.event,
        label: {
          perceived_error: answer,
          reason,
          provenance: "human",
          panel: entry.panel,
          arbiters: entry.arbiters,
          reviewer,
          labelled_at: new Date().toISOString(),
        },
      };
      labels.append(line);
      saved++;
      io.stdout.write(`Saved to ${labelsPath}.\n`);
    }
  } finally {
    rl.close();
  }
  const left = pending.length - saved;
  io.stdout.write(`\nReviewed ${saved}${skipped > 0 ? `, skipped ${skipped}` : ""}; ${left} left in the queue.${left > 0 ? " Run again to continue." : ""}\n`);
  return 0;
}

export const command: Command = {
  summary: "settle the labels the model panels disagreed on, in the terminal",
  run: ({ argv }) => runReviewCommand(argv, { stdin: process.stdin, stdout: process.stdout, env: process.env }),
};
