/**
 * The judge's loop on the simulator, end to end: export the labelled sample, fine-tune (stopped and
 * re-attached), evaluate on the holdout, shadow the candidate on live traffic, promote through the
 * gate (refused first), roll back. Every live result carries the judge that made it, shadow
 * verdicts never reach the output topic, and no conversation is judged twice by the live judge.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Writable } from "node:stream";
import { PROMPT_VERSION } from "@tracesift/judge";
import { JudgeRegistry } from "@tracesift/judge-registry";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runEvalCommand } from "../services/cli/src/eval.ts";
import { runExportSftCommand } from "../services/cli/src/export-sft.ts";
import { FinetuneManifest, runFinetuneCommand } from "../services/cli/src/finetune.ts";
import { runJudgesCommand, runPromoteCommand, runRollbackCommand } from "../services/cli/src/judges.ts";
import { openaiEvent, REDIS_URL, startTestFleet, type TestFleet } from "./helpers/fleet.ts";

const SAMPLE = resolve(import.meta.dirname, "../services/cli/samples/eval/sample.jsonl");
const BASE = "accounts/fireworks/models/qwen3p5-35b-a3b";
const WAIT = { timeout: 60_000, interval: 200 };

class Sink extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

let fleet: TestFleet;
let redis: Redis;
const shadowTopic = `t-${randomUUID().slice(0, 8)}-shadow`;
const dir = mkdtempSync(join(tmpdir(), "tracesift-loop-"));

beforeAll(async () => {
  fleet = await startTestFleet({ workers: 2, workerEnv: { JUDGE_REGISTRY_TTL_MS: "200", SHADOW_TOPIC: shadowTopic } });
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  await fleet?.stop();
  const admin = fleet?.kafka.admin();
  await admin?.connect();
  await admin?.deleteTopics({ topics: [shadowTopic] }).catch(() => undefined);
  await admin?.disconnect();
  await redis?.quit();
});

const batch = (name: string, n: number) =>
  [...Array(n)].map((_, i) => openaiEvent(`${name}-${i}`, [["user", "Book Dana on Tuesday."], ["assistant", "Booked Wednesday."], ["user", i % 2 ? "Thanks." : "No, that's wrong, I said Tuesday."]]));

async function judgedBy(name: string, n: number): Promise<string[]> {
  await vi.waitFor(() => expect(fleet.records.filter((r) => r.key?.startsWith(`${name}-`)).length).toBe(n), WAIT);
  return fleet.records.filter((r) => r.key?.startsWith(`${name}-`)).map((r) => (r.topic === "output" && r.result.status === "judged" ? r.result.judge.model : `not judged: ${JSON.stringify(r)}`));
}

describe("fine-tune, shadow, promote, roll back", () => {
  it("runs the whole loop with every verdict carrying its judge", async () => {
    const env = { ...process.env, REDIS_URL, QUEUE_PREFIX: fleet.queuePrefix, JUDGE_MODEL: BASE };
    const io = () => ({ stdout: new Sink(), stderr: new Sink(), env });

    // Export the labelled sample for fine-tuning.
    expect(await runExportSftCommand(["--labels", SAMPLE, "--out", dir, "--holdout", "0.3"], { stdout: new Sink(), stderr: new Sink() })).toBe(0);

    // Fine-tune: stopped right after the job starts, then re-attached to the same job.
    const ftEnv = { ...env, FIREWORKS_API_KEY: "test", FIREWORKS_ACCOUNT_ID: "tracesift-test", FIREWORKS_API_URL: fleet.simUrl.replace(/\/inference\/v1$/, "") };
    const args = ["--data", dir, "--base-model", BASE, "--name", "pe-judge", "--epochs", "2", "--lora-rank", "16", "--poll-ms", "5"];
    const stopped = new AbortController();
    stopped.abort();
    const first = { stdout: new Sink(), stderr: new Sink(), env: ftEnv, signal: stopped.signal };
    expect(await runFinetuneCommand(args, first)).toBe(130);
    const half = FinetuneManifest.parse(JSON.parse(readFileSync(join(dir, "finetune.json"), "utf8")));
    expect(half.output_model).toBeNull();
    const second = { stdout: new Sink(), stderr: new Sink(), env: ftEnv };
    expect(await runFinetuneCommand(args, second), second.stderr.text).toBe(0);
    expect(second.stderr.text).toContain(`re-attaching to ${half.job}`);
    expect(second.stderr.text).toMatch(/running .* 50%/);
    const manifest = FinetuneManifest.parse(JSON.parse(readFileSync(join(dir, "finetune.json"), "utf8")));
    expect(manifest).toMatchObject({ job: half.job, state: "JOB_STATE_COMPLETED", prompt_version: PROMPT_VERSION, hyperparameters: { epochs: 2, lora_rank: 16, learning_rate: 0.0001 } });
    expect(manifest.datasets.train.sha256).toMatch(/^[0-9a-f]{64}$/);
    const tuned = manifest.output_model!;
    expect(tuned).toBe("accounts/tracesift-test/models/pe-judge");

    // The holdout table: base model and candidate side by side.
    const evalIo = io();
    const evalOut = join(dir, "eval");
    const evalArgs = ["--dataset", join(dir, "holdout.eval.jsonl"), "--model", BASE, "--model", tuned, "--base-url", fleet.simUrl, "--out", evalOut];
    expect(await runEvalCommand(evalArgs, evalIo), evalIo.stderr.text).toBe(0);
    expect(readFileSync(join(evalOut, "report.md"), "utf8")).toContain(tuned);

    // Live traffic before any candidate: the environment's judge.
    await fleet.produce(batch("before", 10));
    expect(new Set(await judgedBy("before", 10))).toEqual(new Set([BASE]));

    // Shadow the candidate on every live conversation.
    expect(await runJudgesCommand(["candidate", "--model", tuned, "--sample", "1", "--by", "ana"], io())).toBe(0);
    await new Promise((r) => setTimeout(r, 600));
    await fleet.produce(batch("shadowed", 12));
    expect(new Set(await judgedBy("shadowed", 12))).toEqual(new Set([BASE]));
    const registry = new JudgeRegistry(redis, fleet.queuePrefix);
    await vi.waitFor(async () => expect((await registry.shadowStats({ model: tuned, prompt_version: PROMPT_VERSION })).tn + (await registry.shadowStats({ model: tuned, prompt_version: PROMPT_VERSION })).tp).toBe(12), WAIT);
    const shown = io();
    expect(await runJudgesCommand(["--disagreements", join(dir, "disagreements.jsonl")], shown)).toBe(0);
    expect(shown.stdout.text).toContain(`Candidate: ${tuned}@${PROMPT_VERSION}`);
    expect(shown.stdout.text).toMatch(/\| 12 \| 100\.0% \| 1\.000 \|/);

    // The gate: refused while the shadow has too few samples, accepted once the thresholds are met.
    const gate = (minSamples: number) => {
      const path = join(dir, `gate-${minSamples}.json`);
      writeFileSync(path, JSON.stringify({ holdout: { min_accuracy: 0.6, min_conversations: 5 }, shadow: { min_samples: minSamples, min_kappa: 0.8, max_positive_rate_diff: 0.05 } }));
      return path;
    };
    const refused = io();
    expect(await runPromoteCommand(["--gate", gate(1000), "--eval", join(evalOut, "report.json"), "--by", "ana"], refused)).toBe(1);
    expect(refused.stdout.text).toContain("FAIL: shadow comparisons 12 ≥ 1000");
    const promoted = io();
    expect(await runPromoteCommand(["--gate", gate(10), "--eval", join(evalOut, "report.json"), "--by", "ana"], promoted), promoted.stdout.text).toBe(0);
    await new Promise((r) => setTimeout(r, 600));
    await fleet.produce(batch("promoted", 10));
    expect(new Set(await judgedBy("promoted", 10))).toEqual(new Set([tuned]));

    // Roll back: the base model again, without restarting a worker.
    expect(await runRollbackCommand(["--by", "bo"], io())).toBe(0);
    await new Promise((r) => setTimeout(r, 600));
    await fleet.produce(batch("rolled-back", 10));
    expect(new Set(await judgedBy("rolled-back", 10))).toEqual(new Set([BASE]));

    const history = await registry.history();
    expect(history.map((h) => [h.action, h.from.model, h.to.model, h.by, h.forced])).toEqual([
      ["promote", BASE, tuned, "ana", false],
      ["rollback", tuned, BASE, "bo", false],
    ]);
    // One live record per conversation, every one naming the judge that made it; shadow verdicts only on their topic.
    for (const [key, count] of fleet.countsByKey()) expect(count, key).toBe(1);
    const admin = fleet.kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(shadowTopic);
    await admin.disconnect();
    expect(offsets.reduce((n, p) => n + Number(p.high), 0)).toBe(12);
  });
});
