/**
 * Judge-quality tooling end to end against an in-process simulated panel (one Fireworks simulator
 * behind a verdict-flipping proxy) and real Redis (the fleet's rate limiter and result cache):
 * eval, label, review and export-sft on the sample dataset.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Readable, Writable } from "node:stream";
import { decideVerdict } from "@tracesift/fireworks-sim";
import { judgeMessages, renderTranscript, SYSTEM_PROMPT, TRANSCRIPT_HEADER } from "@tracesift/judge";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type EvalReport, flips, isHoldout, type LabelStats, parseDataset } from "../packages/evaluation/src/index.ts";
import { SAMPLE_PANEL_RULES, type SimPanel, startSimPanel } from "../packages/evaluation/src/sim-panel.ts";
import { runEvalCommand } from "../services/cli/src/eval.ts";
import { runExportSftCommand } from "../services/cli/src/export-sft.ts";
import { runLabelCommand } from "../services/cli/src/label.ts";
import { runReviewCommand } from "../services/cli/src/review.ts";

const ROOT = resolve(import.meta.dirname, "..");
const SAMPLE = join(ROOT, "services/cli/samples/eval/sample.jsonl");
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** The documented fine-tuning line: exactly the judge's request, and its answer in the wire format. */
const SftLine = z.strictObject({
  messages: z.tuple([
    z.strictObject({ role: z.literal("system"), content: z.literal(SYSTEM_PROMPT) }),
    z.strictObject({ role: z.literal("user"), content: z.string().startsWith(`${TRANSCRIPT_HEADER}\n`) }),
    z.strictObject({
      role: z.literal("assistant"),
      content: z.string().transform((s, ctx) => {
        const parsed = z.strictObject({ perceived_error: z.boolean(), reason: z.string().min(1) }).safeParse(JSON.parse(s));
        if (!parsed.success) ctx.addIssue({ code: "custom", message: "assistant content is not a verdict" });
        return parsed.data;
      }),
    }),
  ]),
});

class Sink extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

const dataset = parseDataset("sample", readFileSync(SAMPLE, "utf8"));

/** What the simulated models answer: the simulator's cue-based verdict, flipped per the model's rule. */
function simVerdict(model: string, messages: { role: string; content: string }[]): boolean {
  const honest = decideVerdict(messages).perceived_error;
  const rule = SAMPLE_PANEL_RULES[model];
  return rule && flips(rule, messages) ? !honest : honest;
}

let panel: SimPanel;
let redis: Redis;
let dir: string;
const prefix = `test-eval-${randomUUID()}`;
let env: Record<string, string | undefined>;

async function deleteKeys(pattern: string): Promise<void> {
  for await (const keys of redis.scanStream({ match: pattern, count: 500 })) if ((keys as string[]).length > 0) await redis.del(...(keys as string[]));
}

beforeAll(async () => {
  panel = await startSimPanel({ latencyMs: 1 });
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  dir = mkdtempSync(join(tmpdir(), "tracesift-eval-"));
  env = { ...process.env, REDIS_URL, QUEUE_PREFIX: prefix };
  const judge = (name: string, model: string) => ({ name, baseURL: panel.url, model });
  writeFileSync(
    join(dir, "judges.json"),
    JSON.stringify({ judges: [{ ...judge("sim-honest", "sim-judge-a"), pricing: { input: 0.5, output: 0.5 } }, judge("sim-dissent", "sim-judge-b")] }),
  );
  writeFileSync(
    join(dir, "panel.json"),
    JSON.stringify({
      panel: [judge("judge-a", "sim-judge-a"), judge("judge-b", "sim-judge-b"), judge("judge-c", "sim-judge-c")],
      arbiters: [judge("arbiter-a", "sim-arbiter-a"), judge("arbiter-b", "sim-arbiter-b")],
    }),
  );
});

afterAll(async () => {
  await panel?.close();
  if (redis) {
    await deleteKeys(`${prefix}:*`);
    await redis.quit();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the sample dataset", () => {
  it("has 40-60 labelled conversations, 20-25% perceived errors, several input formats", () => {
    expect(dataset.problems).toEqual([]);
    expect(dataset.items.length).toBeGreaterThanOrEqual(40);
    expect(dataset.items.length).toBeLessThanOrEqual(60);
    const positives = dataset.items.filter((i) => i.label?.perceived_error).length / dataset.items.length;
    expect(positives).toBeGreaterThanOrEqual(0.2);
    expect(positives).toBeLessThanOrEqual(0.25);
    expect(new Set(dataset.items.map((i) => i.conversation.source)).size).toBeGreaterThanOrEqual(4);
    expect(dataset.items.every((i) => i.judgeable && i.label?.reason)).toBe(true);
  });
});

describe("tracesift eval", () => {
  const run = async (out: string) => {
    const stdout = new Sink();
    const stderr = new Sink();
    const code = await runEvalCommand(["--config", join(dir, "judges.json"), "--dataset", SAMPLE, "--out", out, "--concurrency", "6"], { stdout, stderr, env });
    return { code, stdout: stdout.text, stderr: stderr.text, report: JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as EvalReport };
  };

  it("prints the full table for two configurations, with consistent numbers; a second run makes no model call", async () => {
    const n = dataset.items.length;
    const before = panel.simulator.stats().requests;
    const first = await run(join(dir, "eval-1"));
    expect(first.code, first.stderr).toBe(0);
    for (const header of ["accuracy", "precision", "recall", "F1", "kappa", "acc(always no)", "TP", "FP", "FN", "TN", "invalid output", "tokens/1k conv", "cost/1k conv", "latency p50 ms", "latency p99 ms"]) {
      expect(first.stdout).toContain(header);
    }
    expect(first.stdout).toContain("sim-honest");
    expect(first.stdout).toContain("sim-dissent");
    expect(first.stdout).toContain("Disagreements: sim-dissent on sample");
    for (const file of ["report.json", "report.md", "progress.jsonl"]) expect(existsSync(join(dir, "eval-1", file))).toBe(true);
    expect(panel.simulator.stats().requests - before).toBe(2 * n);
    expect(first.report.run).toMatchObject({ model_calls: 2 * n, cache_hits: 0, complete: true, errors: [] });

    for (const [row, model] of [[first.report.rows[0]!, "sim-judge-a"], [first.report.rows[1]!, "sim-judge-b"]] as const) {
      const expected = { tp: 0, fp: 0, fn: 0, tn: 0 };
      for (const item of dataset.items) {
        const predicted = simVerdict(model, judgeMessages(item.conversation));
        const label = item.label!.perceived_error;
        if (predicted && label) expected.tp++;
        else if (predicted) expected.fp++;
        else if (label) expected.fn++;
        else expected.tn++;
      }
      const s = row.summary;
      expect(s.confusion).toEqual(expected);
      expect(s.scored).toBe(n);
      expect(s.metrics.accuracy).toBeCloseTo((expected.tp + expected.tn) / n, 12);
      expect(s.metrics.precision).toBeCloseTo(expected.tp / (expected.tp + expected.fp), 12);
      expect(s.metrics.recall).toBeCloseTo(expected.tp / (expected.tp + expected.fn), 12);
      expect(s.metrics.always_no_error_accuracy).toBeCloseTo((expected.tn + expected.fp) / n, 12);
      expect(row.disagreements).toHaveLength(expected.fp + expected.fn);
      expect(row.disagreements.every((d) => d.label !== d.predicted && d.label_reason && d.model_reason)).toBe(true);
      expect(s.invalid_output_rate).toBe(0);
      expect(s.tokens.total).toBeGreaterThan(0);
      expect(s.tokens_per_1k).toBeCloseTo((s.tokens.total / n) * 1000, 6);
      expect(s.cost_per_1k_usd).toBeCloseTo((s.cost_usd / n) * 1000, 9);
      expect(s.latency_ms.p50!).toBeLessThanOrEqual(s.latency_ms.p99!);
    }
    // The dissenting model flips some verdicts, so the two rows differ.
    expect(first.report.rows[0]!.summary.confusion).not.toEqual(first.report.rows[1]!.summary.confusion);
    // Both rows are in the Markdown report, with the reasons of both sides.
    const md = readFileSync(join(dir, "eval-1", "report.md"), "utf8");
    expect(md).toContain("| sim-dissent | sample |");
    expect(md).toContain("label reason");

    // Same configuration again, new output directory: every verdict comes from the result cache.
    const requests = panel.simulator.stats().requests;
    const second = await run(join(dir, "eval-2"));
    expect(second.code).toBe(0);
    expect(panel.simulator.stats().requests).toBe(requests);
    expect(second.report.run).toMatchObject({ model_calls: 0, cache_hits: 2 * n });
    expect(second.report.rows.map((r) => [r.summary.confusion, r.summary.tokens])).toEqual(first.report.rows.map((r) => [r.summary.confusion, r.summary.tokens]));
  });

  it("reports calibration and what escalating uncertain verdicts would give, for judges asked for logprobs", async () => {
    const judges = join(dir, "judges-logprobs.json");
    const judge = (name: string, model: string) => ({ name, baseURL: panel.url, model, logprobs: true });
    writeFileSync(judges, JSON.stringify([judge("sim-honest", "sim-judge-a"), judge("sim-dissent", "sim-judge-b")]));
    const out = join(dir, "eval-calibration");
    const stdout = new Sink();
    const stderr = new Sink();
    // Its own prefix: the result cache of the other runs holds verdicts without confidence.
    const code = await runEvalCommand(["--config", judges, "--dataset", SAMPLE, "--out", out, "--uncertain-band", "0.5-0.8"], {
      stdout,
      stderr,
      env: { ...env, QUEUE_PREFIX: `${prefix}-logprobs` },
    });
    expect(code, stderr.text).toBe(0);
    const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as EvalReport;
    const [honest, dissent] = report.rows as [EvalReport["rows"][number], EvalReport["rows"][number]];
    expect(honest.calibration.n).toBe(dataset.items.length);
    expect(honest.calibration.bins.reduce((n, b) => n + b.n, 0)).toBe(honest.calibration.n);
    expect(honest.calibration.ece).toBeGreaterThanOrEqual(0);
    // The dissenting proxy rewrites some answers but not their logprobs: those carry no confidence.
    expect(dissent.calibration.n).toBeLessThan(dataset.items.length);
    expect(honest.escalation.band).toEqual({ low: 0.5, high: 0.8 });
    expect(honest.escalation.in_band).toBeGreaterThan(0);
    expect(honest.escalation.accuracy_if_escalated_to.map((e) => e.judge)).toEqual(["sim-dissent"]);
    expect(stdout.text).toContain("Calibration");
    expect(stdout.text).toContain("Reliability: sim-honest on sample");
    expect(readFileSync(join(out, "report.md"), "utf8")).toContain("## Calibration");
    await deleteKeys(`${prefix}-logprobs:*`);
  });

  it("resumes an interrupted run from its progress file", async () => {
    const out = join(dir, "eval-resume");
    await run(out);
    // Simulate a run that stopped after 20 outcomes (the last line cut mid-write), with an empty cache.
    const lines = readFileSync(join(out, "progress.jsonl"), "utf8").split("\n").filter(Boolean);
    writeFileSync(join(out, "progress.jsonl"), `${lines.slice(0, 20).join("\n")}\n${lines[20]!.slice(0, 30)}`);
    await deleteKeys(`${prefix}:result:*`);
    const requests = panel.simulator.stats().requests;
    const resumed = await run(out);
    expect(resumed.code).toBe(0);
    expect(resumed.report.run).toMatchObject({ resumed: 20, model_calls: 2 * dataset.items.length - 20, complete: true });
    expect(panel.simulator.stats().requests - requests).toBe(2 * dataset.items.length - 20);
  });
});

describe("tracesift label and review", () => {
  const out = () => join(dir, "label");
  const label = async () => {
    const stdout = new Sink();
    const stderr = new Sink();
    const code = await runLabelCommand(["--config", join(dir, "panel.json"), "--dataset", SAMPLE, "--out", out()], { stdout, stderr, env });
    return { code, stdout: stdout.text, stderr: stderr.text, stats: JSON.parse(readFileSync(join(out(), "agreement.json"), "utf8")) as LabelStats };
  };
  const lines = (file: string) => readFileSync(join(out(), file), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));

  it("produces unanimous, arbitrated and human-review cases whose counts add up to the input", async () => {
    const first = await label();
    expect(first.code, first.stderr).toBe(0);
    const { stats } = first;
    expect(stats.unanimous + stats.arbitrated + stats.human_review + stats.not_judgeable + stats.pending).toBe(stats.input);
    expect(stats.input).toBe(dataset.items.length);
    expect(stats.pending).toBe(0);

    // The same decision computed from the simulated models' known behaviour.
    const expected = { unanimous: 0, arbitrated: 0, human_review: 0 };
    for (const item of dataset.items) {
      const m = judgeMessages(item.conversation);
      const votes = ["sim-judge-a", "sim-judge-b", "sim-judge-c"].map((model) => simVerdict(model, m));
      const arbiters = ["sim-arbiter-a", "sim-arbiter-b"].map((model) => simVerdict(model, m));
      if (votes.every((v) => v === votes[0])) expected.unanimous++;
      else if (arbiters[0] === arbiters[1]) expected.arbitrated++;
      else expected.human_review++;
    }
    expect(stats).toMatchObject(expected);
    expect(stats.unanimous).toBeGreaterThan(0);
    expect(stats.arbitrated).toBeGreaterThan(0);
    expect(stats.human_review).toBeGreaterThan(0);
    expect(stats.panel.fleiss.subjects).toBe(dataset.items.length);
    expect(stats.panel.pairwise).toHaveLength(3);
    expect(first.stdout).toContain("Fleiss' kappa");

    const labels = lines("labels.jsonl");
    const queue = lines("review-queue.jsonl");
    expect(labels).toHaveLength(stats.unanimous + stats.arbitrated);
    expect(queue).toHaveLength(stats.human_review);
    expect(labels.filter((l) => l.label.provenance === "arbitrated").every((l) => l.label.arbiters.length === 2)).toBe(true);

    // A second run resumes from the files: nothing to decide, no model call, same counts.
    const requests = panel.simulator.stats().requests;
    const again = await label();
    expect(again.code).toBe(0);
    expect(panel.simulator.stats().requests).toBe(requests);
    expect(again.stats).toMatchObject(expected);
  });

  it("review settles the queue from piped answers, saving after each, resumably", async () => {
    const queued = lines("review-queue.jsonl").length;
    const stdout = new Sink();
    // First conversation: error, own reason; second: no error, suggested reason; then quit.
    const code = await runReviewCommand(["--out", out(), "--reviewer", "tester"], {
      stdin: Readable.from(["y\nThe user signals the answer missed the point.\n", "n\n\n", "q\n"]),
      stdout,
      env,
    });
    expect(code).toBe(0);
    expect(stdout.text).toContain(`${queued - 2} left in the queue`);
    const human = lines("labels.jsonl").filter((l) => l.label.provenance === "human");
    expect(human.map((l) => [l.label.perceived_error, l.label.reviewer])).toEqual([
      [true, "tester"],
      [false, "tester"],
    ]);
    expect(human[0].label.reason).toBe("The user signals the answer missed the point.");
    expect(human[1].label.reason.length).toBeGreaterThan(0);

    // The real CLI with a pipe for stdin (not a TTY): answers "no" with the suggested reason to the rest.
    const child = spawn(join(ROOT, "node_modules/.bin/tsx"), [join(ROOT, "services/cli/src/main.ts"), "review", "--out", out()], {
      cwd: ROOT,
      env: { ...env, LOG_LEVEL: "warn" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let childOut = "";
    child.stdout.on("data", (d: Buffer) => {
      childOut += d.toString();
    });
    child.stdin.end("n\n\n".repeat(queued - 2));
    const exit = await new Promise<number | null>((done) => child.on("close", done));
    expect(exit, childOut).toBe(0);
    expect(childOut).toContain("0 left in the queue");
    expect(lines("labels.jsonl")).toHaveLength(dataset.items.length);

    const nothing = new Sink();
    await runReviewCommand(["--out", out()], { stdin: Readable.from([]), stdout: nothing, env });
    expect(nothing.text).toContain("Nothing to review");
    const after = await label();
    expect(after.stats.human_review).toBe(queued);
    expect(after.stats.human_settled).toBe(queued);
  });
});

describe("tracesift export-sft", () => {
  const exportTo = async (out: string, labels: string, holdout = "0.2") => {
    const stdout = new Sink();
    const code = await runExportSftCommand(["--labels", labels, "--out", out, "--holdout", holdout], { stdout, stderr: new Sink() });
    expect(code).toBe(0);
    return stdout.text;
  };
  const read = (file: string) => readFileSync(file, "utf8").split("\n").filter(Boolean);

  it("writes the documented fine-tuning format with a reproducible split", async () => {
    const printed = await exportTo(join(dir, "sft-1"), SAMPLE);
    expect(printed).toMatch(/train\s.*\s\d+\s+\d+\s+[\d.]+%/);
    expect(printed).toMatch(/holdout\s.*\s\d+\s+\d+\s+[\d.]+%/);
    const train = read(join(dir, "sft-1", "train.jsonl"));
    const holdout = read(join(dir, "sft-1", "holdout.jsonl"));
    expect(train.length + holdout.length).toBe(dataset.items.length);
    expect(holdout.length).toBeGreaterThan(0);

    // Every line is exactly what the judge sees, answered with the label.
    const byTranscript = new Map(dataset.items.map((i) => [renderTranscript(i.conversation), i]));
    for (const [side, lines] of [["train", train], ["holdout", holdout]] as const) {
      for (const line of lines) {
        const record = SftLine.parse(JSON.parse(line));
        const item = byTranscript.get(record.messages[1].content);
        expect(item, "transcript of a sample conversation").toBeDefined();
        expect(record.messages[2].content).toEqual({ perceived_error: item!.label!.perceived_error, reason: item!.label!.reason });
        expect(isHoldout(item!.conversation.id, 0.2)).toBe(side === "holdout");
      }
    }

    // Same input → byte-identical files; reordered input → the same split.
    await exportTo(join(dir, "sft-2"), SAMPLE);
    for (const f of ["train.jsonl", "holdout.jsonl"]) expect(readFileSync(join(dir, "sft-2", f))).toEqual(readFileSync(join(dir, "sft-1", f)));
    const reversed = join(dir, "reversed.jsonl");
    writeFileSync(reversed, `${readFileSync(SAMPLE, "utf8").split("\n").filter(Boolean).reverse().join("\n")}\n`);
    await exportTo(join(dir, "sft-3"), reversed);
    expect(new Set(read(join(dir, "sft-3", "holdout.jsonl")))).toEqual(new Set(holdout));
    expect(new Set(read(join(dir, "sft-3", "train.jsonl")))).toEqual(new Set(train));
  });
});
