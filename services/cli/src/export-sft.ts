/**
 * `tracesift export-sft`: labelled conversations to Fireworks SFT JSONL, exactly what the judge
 * sees at inference with the label as its answer, split into train and holdout by a hash of the
 * conversation id (reproducible, independent of file order).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { DatasetError, DEFAULT_SPLIT_SALT, isHoldout, itemKey, readDatasetFiles, renderTable, fmt, toSftRecord } from "@tracesift/evaluation";
import { listArg } from "./eval.ts";
import type { Command } from "./main.ts";
import { parseCommandArgs, requiredArg, stringArg, UsageError } from "./usage.ts";

const HELP = `tracesift export-sft --labels <file.jsonl> [--labels ...] --out <dir> [--holdout 0.2] [--salt <text>]

Writes <out>/train.jsonl and <out>/holdout.jsonl for a Fireworks SFT job, one line per labelled
conversation: {"messages": [{"role": "system", "content": <the judge's system prompt>},
{"role": "user", "content": <the judge's rendered transcript>}, {"role": "assistant", "content":
"{\\"perceived_error\\":true,\\"reason\\":\\"...\\"}"}]}. Labels need a reason (it is what the judge
learns to write); conversations without one, unlabelled or not judgeable are left out and counted.

  --labels <file>   labelled JSONL: tracesift label's labels.jsonl or any labelled dataset (repeatable;
                    a conversation in several files takes its last label)
  --out <dir>       output directory (also manifest.json with the counts)
  --holdout <f>     share held out for evaluation, 0..1 (default 0.2)
  --salt <text>     split salt (default ${DEFAULT_SPLIT_SALT}); keep it to keep the split
`;

const OPTIONS = { labels: { type: "string", multiple: true }, out: { type: "string" }, holdout: { type: "string" }, salt: { type: "string" } } as const;

type Split = { conversations: number; positives: number };

export async function runExportSftCommand(argv: string[], io: { stdout: Writable; stderr: Writable }): Promise<number> {
  const args = parseCommandArgs(argv, OPTIONS, HELP);
  if (!args) return 0;
  const paths = listArg(args, "labels");
  if (paths.length === 0) throw new UsageError(`--labels is required\n\n${HELP}`);
  const out = requiredArg(args, "out", HELP);
  const holdout = Number(stringArg(args, "holdout") ?? "0.2");
  if (!(holdout >= 0 && holdout <= 1)) throw new UsageError(`--holdout must be between 0 and 1, got "${stringArg(args, "holdout")}"`);
  const salt = stringArg(args, "salt") ?? DEFAULT_SPLIT_SALT;
  let datasets: ReturnType<typeof readDatasetFiles>;
  try {
    datasets = readDatasetFiles(paths);
  } catch (err) {
    throw err instanceof DatasetError ? new UsageError(err.message) : err;
  }

  // Last label wins (a later review overrides), but a conversation keeps its first position.
  const chosen = new Map<string, (typeof datasets)[number]["dataset"]["items"][number]>();
  const skipped = { unlabelled: 0, no_reason: 0, not_judgeable: 0, duplicates: 0 };
  for (const { dataset } of datasets) {
    for (const item of dataset.items) {
      const key = itemKey(item.conversation.id, item.version);
      if (chosen.has(key)) skipped.duplicates++;
      chosen.set(key, item);
    }
  }
  const train: string[] = [];
  const held: string[] = [];
  const counts: Record<"train" | "holdout", Split> = { train: { conversations: 0, positives: 0 }, holdout: { conversations: 0, positives: 0 } };
  for (const item of chosen.values()) {
    if (!item.label) skipped.unlabelled++;
    else if (!item.judgeable) skipped.not_judgeable++;
    else if (!item.label.reason) skipped.no_reason++;
    else {
      const side = isHoldout(item.conversation.id, holdout, salt) ? "holdout" : "train";
      const line = JSON.stringify(toSftRecord(item.conversation, { perceived_error: item.label.perceived_error, reason: item.label.reason }));
      (side === "holdout" ? held : train).push(line);
      counts[side].conversations++;
      if (item.label.perceived_error) counts[side].positives++;
    }
  }

  mkdirSync(out, { recursive: true });
  const body = (lines: string[]) => (lines.length === 0 ? "" : `${lines.join("\n")}\n`);
  writeFileSync(join(out, "train.jsonl"), body(train));
  writeFileSync(join(out, "holdout.jsonl"), body(held));
  writeFileSync(join(out, "manifest.json"), `${JSON.stringify({ inputs: paths, holdout_share: holdout, salt, ...counts, skipped }, null, 2)}\n`);

  const rate = (s: Split) => fmt.pct(s.conversations === 0 ? null : s.positives / s.conversations);
  io.stdout.write(
    `${renderTable(
      ["split", "file", "conversations", "perceived errors", "positive rate"],
      (["train", "holdout"] as const).map((side) => [side, join(out, `${side}.jsonl`), String(counts[side].conversations), String(counts[side].positives), rate(counts[side])]),
      2,
    )}\n`,
  );
  const left = Object.entries(skipped).filter(([, n]) => n > 0);
  if (left.length > 0) io.stdout.write(`Left out: ${left.map(([k, n]) => `${n} ${k.replace("_", " ")}`).join(", ")}.\n`);
  io.stdout.write(`Split: sha256(salt "${salt}", conversation id) < ${holdout} → holdout.\n`);
  return 0;
}

export const command: Command = {
  summary: "export labelled conversations as Fireworks fine-tuning JSONL with a train/holdout split",
  run: ({ argv }) => runExportSftCommand(argv, { stdout: process.stdout, stderr: process.stderr }),
};
