/**
 * `tracesift judges | promote | rollback`: the fleet's live judge, its shadow candidate and the
 * record of every switch, in the judge registry (Redis). Workers read it per job (short cache),
 * so a switch needs no restart and in-flight jobs finish with the judge they started with.
 * Promotion is gated on the candidate's holdout evaluation and its shadow agreement with the live
 * judge, with thresholds from a config file; `--force` overrides and the record says so.
 */
import { writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import type { Writable } from "node:stream";
import { fmt, readConfigFile, renderMarkdownTable } from "@tracesift/evaluation";
import { PROMPT_VERSION } from "@tracesift/judge";
import { type JudgeIdentity, JudgeRegistry, judgeLabel, RegistryError, type ShadowAgreement, shadowAgreement } from "@tracesift/judge-registry";
import { Redis } from "ioredis";
import { z } from "zod";
import type { Command } from "./main.ts";
import { parseCommandArgs, requiredArg, stringArg, UsageError } from "./usage.ts";

export const GateConfig = z.strictObject({
  holdout: z.strictObject({
    min_accuracy: z.number().min(0).max(1).optional(),
    min_kappa: z.number().min(-1).max(1).optional(),
    min_f1: z.number().min(0).max(1).optional(),
    /** Fewer scored holdout conversations than this and the evaluation proves nothing. */
    min_conversations: z.number().int().nonnegative().default(1),
  }),
  shadow: z.strictObject({
    min_samples: z.number().int().nonnegative().default(1),
    min_kappa: z.number().min(-1).max(1).optional(),
    min_agreement: z.number().min(0).max(1).optional(),
    /** |candidate positive rate − live positive rate|: dashboards and alerts key on the rate. */
    max_positive_rate_diff: z.number().min(0).max(1).optional(),
  }),
});
export type GateConfig = z.infer<typeof GateConfig>;

/** The part of `tracesift eval`'s report.json the gate reads. */
const EvalReportRows = z.object({
  rows: z.array(
    z.object({
      model: z.string(),
      prompt_version: z.string(),
      dataset: z.string(),
      summary: z.object({ scored: z.number(), metrics: z.object({ accuracy: z.number().nullable(), kappa: z.number().nullable(), f1: z.number().nullable() }) }),
    }),
  ),
});
export type EvalReportRows = z.infer<typeof EvalReportRows>;

export type GateResult = { pass: boolean; checks: string[] };

/** Every threshold, checked and worded; `pass` only when all hold. Pure, for tests. */
export function evaluateGate(gate: GateConfig, candidate: JudgeIdentity, evalReport: EvalReportRows | null, shadow: ShadowAgreement): GateResult {
  const checks: string[] = [];
  let pass = true;
  const check = (ok: boolean, text: string) => {
    checks.push(`${ok ? "ok" : "FAIL"}: ${text}`);
    if (!ok) pass = false;
  };
  const atLeast = (what: string, value: number | null, min: number | undefined) => {
    if (min === undefined) return;
    check(value !== null && value >= min, `${what} ${value === null ? "–" : value.toFixed(3)} ≥ ${min}`);
  };
  const row = evalReport?.rows.find((r) => r.model === candidate.model && r.prompt_version === candidate.prompt_version);
  if (!row) check(false, `holdout evaluation of ${judgeLabel(candidate)} (give --eval <report.json> from tracesift eval on holdout.eval.jsonl)`);
  else {
    check(row.summary.scored >= gate.holdout.min_conversations, `holdout conversations ${row.summary.scored} ≥ ${gate.holdout.min_conversations} (${row.dataset})`);
    atLeast("holdout accuracy", row.summary.metrics.accuracy, gate.holdout.min_accuracy);
    atLeast("holdout kappa", row.summary.metrics.kappa, gate.holdout.min_kappa);
    atLeast("holdout F1", row.summary.metrics.f1, gate.holdout.min_f1);
  }
  check(shadow.n >= gate.shadow.min_samples, `shadow comparisons ${shadow.n} ≥ ${gate.shadow.min_samples}`);
  atLeast("shadow kappa", shadow.kappa, gate.shadow.min_kappa);
  atLeast("shadow agreement", shadow.agreement, gate.shadow.min_agreement);
  if (gate.shadow.max_positive_rate_diff !== undefined) {
    const d = shadow.positive_rate_diff;
    check(d !== null && Math.abs(d) <= gate.shadow.max_positive_rate_diff, `|positive-rate difference| ${d === null ? "–" : Math.abs(d).toFixed(3)} ≤ ${gate.shadow.max_positive_rate_diff}`);
  }
  return { pass, checks };
}

export type JudgesIo = { stdout: Writable; stderr: Writable; env: Record<string, string | undefined> };

/** The fleet's Redis and its default judge (what workers run before any promotion), from the fleet's environment. */
async function openRegistry<T>(io: JudgesIo, fn: (registry: JudgeRegistry, fallback: JudgeIdentity) => Promise<T>): Promise<T> {
  const redis = new Redis(io.env.REDIS_URL ?? "redis://127.0.0.1:6379", { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect().catch((err: unknown) => {
      throw new UsageError(`cannot reach Redis at ${io.env.REDIS_URL ?? "redis://127.0.0.1:6379"}: ${(err as Error).message}`);
    });
    const fallback = { model: io.env.JUDGE_MODEL ?? "accounts/fireworks/models/qwen3p5-35b-a3b", prompt_version: PROMPT_VERSION };
    return await fn(new JudgeRegistry(redis, io.env.QUEUE_PREFIX ?? "tracesift"), fallback);
  } catch (err) {
    throw err instanceof RegistryError ? new UsageError(err.message) : err;
  } finally {
    redis.disconnect();
  }
}

const who = (by: string | undefined, env: Record<string, string | undefined>) => by ?? env.TRACESIFT_OPERATOR ?? env.USER ?? userInfo().username;

function renderAgreement(a: ShadowAgreement): string {
  return renderMarkdownTable(
    ["shadowed", "agreement", "κ", "live positive", "candidate positive", "difference", "live $/1k", "candidate $/1k", "live ms", "candidate ms"],
    [
      [
        String(a.n),
        fmt.pct(a.agreement),
        fmt.num(a.kappa),
        fmt.pct(a.live_positive_rate),
        fmt.pct(a.candidate_positive_rate),
        a.positive_rate_diff === null ? "–" : `${(a.positive_rate_diff * 100).toFixed(1)} pt`,
        fmt.usd(a.live_cost_per_1k_usd),
        fmt.usd(a.candidate_cost_per_1k_usd),
        fmt.int(a.live_mean_latency_ms),
        fmt.int(a.candidate_mean_latency_ms),
      ],
    ],
  );
}

const JUDGES_HELP = `tracesift judges [--disagreements <file.jsonl>]
tracesift judges candidate --model <id> [--prompt-version <v>] --sample <0..1>
tracesift judges candidate --clear

Shows the live judge, the shadow candidate with its agreement with the live judge (κ, positive-rate
difference, cost and latency side by side) and the history of promotions and rollbacks;
--disagreements writes the latest disagreements (at most 200) as JSONL. 'candidate' starts shadow
judging: the candidate also judges a deterministic share of live conversations; its verdicts go to
SHADOW_TOPIC (default traces.judged.shadow), never to the output topic.

Environment: REDIS_URL, QUEUE_PREFIX and JUDGE_MODEL as the fleet's workers have them.
`;

export async function runJudgesCommand(argv: string[], io: JudgesIo): Promise<number> {
  const args = parseCommandArgs(argv, { model: { type: "string" }, "prompt-version": { type: "string" }, sample: { type: "string" }, clear: { type: "boolean" }, by: { type: "string" }, disagreements: { type: "string" } }, JUDGES_HELP);
  if (!args) return 0;
  const [sub] = args.positionals;
  if (sub === "candidate") {
    return openRegistry(io, async (registry) => {
      if (args.values.clear) {
        await registry.clearCandidate();
        io.stdout.write("Shadow judging stopped.\n");
        return 0;
      }
      const model = requiredArg(args, "model", JUDGES_HELP);
      const promptVersion = stringArg(args, "prompt-version") ?? PROMPT_VERSION;
      if (promptVersion !== PROMPT_VERSION) throw new UsageError(`unknown prompt version "${promptVersion}": this build's workers have ${PROMPT_VERSION}`);
      const sample = Number(requiredArg(args, "sample", JUDGES_HELP));
      if (!(sample > 0 && sample <= 1)) throw new UsageError(`--sample must be in (0, 1], got "${stringArg(args, "sample")}"`);
      const c = await registry.setCandidate({ model, prompt_version: promptVersion }, sample, who(stringArg(args, "by"), io.env));
      io.stdout.write(`Shadowing ${judgeLabel(c)} on ${(sample * 100).toFixed(1)}% of live conversations (counters reset).\n`);
      return 0;
    });
  }
  if (sub !== undefined) throw new UsageError(`unknown subcommand "${sub}"\n\n${JUDGES_HELP}`);
  return openRegistry(io, async (registry, fallback) => {
    const state = await registry.state();
    io.stdout.write(`Live judge: ${judgeLabel(state.live ?? fallback)}${state.live ? ` (since ${state.live_since})` : " (from the workers' JUDGE_MODEL: never promoted)"}\n`);
    if (state.previous.length > 0) io.stdout.write(`Rollback returns to: ${judgeLabel(state.previous.at(-1)!)}\n`);
    if (state.candidate) {
      const c = state.candidate;
      io.stdout.write(`\nCandidate: ${judgeLabel(c)}, shadowing ${(c.sample_rate * 100).toFixed(1)}% since ${c.set_at} (by ${c.set_by})\n\n`);
      io.stdout.write(`${renderAgreement(shadowAgreement(await registry.shadowStats(c)))}\n`);
      const file = stringArg(args, "disagreements");
      if (file) {
        const list = await registry.disagreements(c);
        writeFileSync(file, list.map((d) => `${JSON.stringify(d)}\n`).join(""));
        io.stdout.write(`\nWrote ${list.length} disagreements to ${file}.\n`);
      }
    } else io.stdout.write("\nNo candidate: start one with 'tracesift judges candidate --model <id> --sample <share>'.\n");
    const history = await registry.history();
    if (history.length > 0) {
      io.stdout.write("\nHistory:\n\n");
      io.stdout.write(
        `${renderMarkdownTable(
          ["when", "action", "from", "to", "by", "forced"],
          history.map((h) => [h.at, h.action, judgeLabel(h.from), judgeLabel(h.to), h.by, h.forced ? `yes: ${h.gate.filter((g) => g.startsWith("FAIL")).join("; ")}` : "no"]),
        )}\n`,
      );
    }
    return 0;
  });
}

const PROMOTE_HELP = `tracesift promote --gate <gate.json> --eval <report.json> [--force] [--by <name>]

Makes the shadow candidate the fleet's live judge (workers switch within JUDGE_REGISTRY_TTL_MS, no
restart). Refuses unless the candidate's holdout evaluation (report.json of 'tracesift eval' on
holdout.eval.jsonl, with the candidate among the judges) and its shadow agreement meet the
thresholds in gate.json:
  {"holdout": {"min_accuracy": 0.85, "min_kappa": 0.6, "min_f1": 0.8, "min_conversations": 50},
   "shadow": {"min_samples": 200, "min_kappa": 0.7, "min_agreement": 0.9, "max_positive_rate_diff": 0.03}}
--force promotes anyway and records the failed checks with the promotion.
`;

export async function runPromoteCommand(argv: string[], io: JudgesIo): Promise<number> {
  const args = parseCommandArgs(argv, { gate: { type: "string" }, eval: { type: "string" }, force: { type: "boolean" }, by: { type: "string" } }, PROMOTE_HELP);
  if (!args) return 0;
  const gate = (() => {
    try {
      return readConfigFile(GateConfig, requiredArg(args, "gate", PROMOTE_HELP));
    } catch (err) {
      throw err instanceof UsageError ? err : new UsageError((err as Error).message);
    }
  })();
  const evalPath = stringArg(args, "eval");
  const report = evalPath === undefined ? null : readConfigFile(EvalReportRows, evalPath);
  const force = args.values.force === true;
  return openRegistry(io, async (registry, fallback) => {
    const { candidate } = await registry.state();
    if (!candidate) throw new UsageError("no candidate to promote: set one with 'tracesift judges candidate'");
    const result = evaluateGate(gate, candidate, report, shadowAgreement(await registry.shadowStats(candidate)));
    for (const c of result.checks) io.stdout.write(`  ${c}\n`);
    if (!result.pass && !force) {
      io.stderr.write(`promote: refused: ${judgeLabel(candidate)} does not meet the gate (--force overrides, and is recorded)\n`);
      return 1;
    }
    const record = await registry.promote({ fallback, by: who(stringArg(args, "by"), io.env), forced: !result.pass, gate: result.checks });
    io.stdout.write(`Promoted ${judgeLabel(record.to)} (was ${judgeLabel(record.from)}) at ${record.at} by ${record.by}${record.forced ? ", FORCED past the gate" : ""}.\n`);
    return 0;
  });
}

export async function runRollbackCommand(argv: string[], io: JudgesIo): Promise<number> {
  const args = parseCommandArgs(argv, { by: { type: "string" } }, "tracesift rollback [--by <name>]\n\nReturns the fleet to the judge that was live before the last promotion.\n");
  if (!args) return 0;
  return openRegistry(io, async (registry, fallback) => {
    const record = await registry.rollback({ fallback, by: who(stringArg(args, "by"), io.env) });
    io.stdout.write(`Rolled back to ${judgeLabel(record.to)} (was ${judgeLabel(record.from)}) at ${record.at} by ${record.by}.\n`);
    return 0;
  });
}

const processIo = (): JudgesIo => ({ stdout: process.stdout, stderr: process.stderr, env: process.env });
export const command: Command = { summary: "show the live judge, the shadow candidate and the switch history; set a candidate", run: ({ argv }) => runJudgesCommand(argv, processIo()) };
export const promote: Command = { summary: "make the shadow candidate the live judge (gated)", run: ({ argv }) => runPromoteCommand(argv, processIo()) };
export const rollback: Command = { summary: "return to the judge that was live before the last promotion", run: ({ argv }) => runRollbackCommand(argv, processIo()) };
