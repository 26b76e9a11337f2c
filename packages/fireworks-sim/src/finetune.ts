/**
 * Fireworks' control plane for fine-tuning, as far as `tracesift finetune` uses it: datasets
 * (create, upload a JSONL file as multipart, read) and supervised fine-tuning jobs (create, read),
 * under `/v1/accounts/{account}/…` as on api.fireworks.ai. State lives in memory per simulator.
 * A job moves one step per read (creating → running 0/25/50/75% → completed), so a test controls
 * its pace by polling and a stopped client finds the job where it left it.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { handleBatch, uploadedDataset } from "./batch.ts";
import type { SimContext } from "./context.ts";
import { describeIssues, HttpError, readJson, sendJson } from "./http.ts";

type Job = {
  name: string;
  state: "JOB_STATE_CREATING" | "JOB_STATE_RUNNING" | "JOB_STATE_COMPLETED";
  dataset: string;
  evaluationDataset?: string;
  baseModel: string;
  outputModel: string;
  epochs?: number;
  learningRate?: number;
  loraRank?: number;
  displayName?: string;
  createTime: string;
  completedTime?: string;
  jobProgress: { percent: number; epoch: number };
};
type State = { jobs: Map<string, Job> };

const states = new WeakMap<SimContext, State>();

const CreateJob = z.object({
  dataset: z.string().min(1),
  baseModel: z.string().min(1),
  outputModel: z.string().optional(),
  evaluationDataset: z.string().optional(),
  displayName: z.string().optional(),
  epochs: z.number().int().positive().optional(),
  learningRate: z.number().positive().optional(),
  loraRank: z.number().int().positive().optional(),
});

const SftLine = z.object({ messages: z.array(z.object({ role: z.enum(["system", "user", "assistant"]), content: z.string() })).min(2) });

const ROUTE = /^\/v1\/accounts\/([^/]+)\/(datasets|supervisedFineTuningJobs)(?:\/([^/:]+)(?::(upload))?)?$/;

export async function handleFinetune(ctx: SimContext, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let state = states.get(ctx);
  if (!state) {
    state = { jobs: new Map() };
    states.set(ctx, state);
  }
  const m = ROUTE.exec(path);
  if (!m) throw new HttpError(404, "NOT_FOUND", `no route ${req.method} ${path}`);
  const [, account, collection, id, verb] = m as unknown as [string, string, string, string | undefined, string | undefined];
  const now = new Date(ctx.now()).toISOString();
  const method = req.method ?? "GET";

  // Datasets live in the one store the batch endpoints serve (as on Fireworks, one per account).
  if (collection === "datasets") return handleBatch(ctx, req, res);

  if (!id && method === "POST") {
    const body = parse(CreateJob, await readJson(req));
    const jobId = new URL(req.url ?? "/", "http://sim").searchParams.get("supervisedFineTuningJobId") ?? `sftj-${state.jobs.size + 1}`;
    const name = `accounts/${account}/supervisedFineTuningJobs/${jobId}`;
    if (state.jobs.has(name)) throw new HttpError(409, "ALREADY_EXISTS", `job ${name} already exists`);
    for (const ds of [body.dataset, body.evaluationDataset]) {
      if (ds === undefined) continue;
      const uploaded = uploadedDataset(ctx, ds);
      if (!uploaded) throw new HttpError(400, "FAILED_PRECONDITION", `dataset ${ds} is not uploaded`);
      // Fireworks validates a fine-tuning dataset when the job starts: every line a chat example.
      for (const [i, line] of uploaded.text.split("\n").filter((l) => l.trim() !== "").entries()) {
        let json: unknown;
        try {
          json = JSON.parse(line);
        } catch {
          json = null;
        }
        if (!SftLine.safeParse(json).success) throw new HttpError(400, "INVALID_ARGUMENT", `dataset ${ds} line ${i + 1} is not a chat example {messages:[{role, content}, …]}`);
      }
    }
    const outputModel = body.outputModel?.includes("/") ? body.outputModel : `accounts/${account}/models/${body.outputModel ?? jobId}`;
    const { outputModel: _, ...rest } = body;
    const job: Job = { name, state: "JOB_STATE_CREATING", ...rest, outputModel, createTime: now, jobProgress: { percent: 0, epoch: 0 } };
    state.jobs.set(name, job);
    return sendJson(res, 200, job);
  }
  const job = id ? state.jobs.get(`accounts/${account}/supervisedFineTuningJobs/${id}`) : undefined;
  if (!job) throw new HttpError(404, "NOT_FOUND", `job accounts/${account}/supervisedFineTuningJobs/${id ?? ""} not found`);
  if (method !== "GET" || verb) throw new HttpError(405, "METHOD_NOT_ALLOWED", `${method} ${path}`);
  advance(job, now);
  return sendJson(res, 200, job);
}

function advance(job: Job, now: string): void {
  if (job.state === "JOB_STATE_CREATING") job.state = "JOB_STATE_RUNNING";
  else if (job.state === "JOB_STATE_RUNNING") {
    job.jobProgress.percent += 25;
    job.jobProgress.epoch = Math.min(job.epochs ?? 1, Math.ceil(((job.epochs ?? 1) * job.jobProgress.percent) / 100));
    if (job.jobProgress.percent >= 100) Object.assign(job, { state: "JOB_STATE_COMPLETED", completedTime: now });
  }
}

function parse<S extends z.ZodType>(schema: S, json: unknown): z.output<S> {
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new HttpError(400, "INVALID_ARGUMENT", describeIssues(parsed.error));
  return parsed.data;
}
