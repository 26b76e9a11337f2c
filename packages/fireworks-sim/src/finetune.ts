/**
 * Fireworks' control plane for fine-tuning, as far as `tracesift finetune` uses it: datasets
 * (create, upload a JSONL file as multipart, read) and supervised fine-tuning jobs (create, read),
 * under `/v1/accounts/{account}/…` as on api.fireworks.ai. State lives in memory per simulator.
 * A job moves one step per read (creating → running 0/25/50/75% → completed), so a test controls
 * its pace by polling and a stopped client finds the job where it left it.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import type { SimContext } from "./context.ts";
import { describeIssues, HttpError, readBody, readJson, sendJson } from "./http.ts";

type Dataset = { name: string; state: "UPLOADING" | "READY"; exampleCount: number; createTime: string; displayName?: string; bytes?: number };
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
type State = { datasets: Map<string, Dataset>; jobs: Map<string, Job> };

const states = new WeakMap<SimContext, State>();

const CreateDataset = z.object({
  datasetId: z.string().regex(/^[a-z0-9-]{1,63}$/, "lower-case letters, digits and dashes"),
  dataset: z.object({ displayName: z.string().optional(), exampleCount: z.coerce.number().int().nonnegative().optional(), format: z.string().optional() }).default({}),
});

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
    state = { datasets: new Map(), jobs: new Map() };
    states.set(ctx, state);
  }
  const m = ROUTE.exec(path);
  if (!m) throw new HttpError(404, "NOT_FOUND", `no route ${req.method} ${path}`);
  const [, account, collection, id, verb] = m as unknown as [string, string, string, string | undefined, string | undefined];
  const now = new Date(ctx.now()).toISOString();
  const method = req.method ?? "GET";

  if (collection === "datasets") {
    if (!id && method === "POST") {
      const body = parse(CreateDataset, await readJson(req));
      const name = `accounts/${account}/datasets/${body.datasetId}`;
      if (state.datasets.has(name)) throw new HttpError(409, "ALREADY_EXISTS", `dataset ${name} already exists`);
      const dataset: Dataset = { name, state: "UPLOADING", exampleCount: body.dataset.exampleCount ?? 0, createTime: now, ...(body.dataset.displayName ? { displayName: body.dataset.displayName } : {}) };
      state.datasets.set(name, dataset);
      return sendJson(res, 200, dataset);
    }
    const dataset = id ? state.datasets.get(`accounts/${account}/datasets/${id}`) : undefined;
    if (!dataset) throw new HttpError(404, "NOT_FOUND", `dataset accounts/${account}/datasets/${id ?? ""} not found`);
    if (verb === "upload" && method === "POST") {
      const text = await uploadedFile(req);
      const lines = text.split("\n").filter((l) => l.trim() !== "");
      for (const [i, line] of lines.entries()) {
        let ok = false;
        try {
          ok = SftLine.safeParse(JSON.parse(line)).success;
        } catch {}
        if (!ok) throw new HttpError(400, "INVALID_ARGUMENT", `line ${i + 1} is not a chat fine-tuning example ({"messages": [{role, content}, ...]})`);
      }
      Object.assign(dataset, { state: "READY", exampleCount: lines.length, bytes: Buffer.byteLength(text) });
      return sendJson(res, 200, { id: dataset.name, object: "file", bytes: dataset.bytes, created_at: Math.floor(ctx.now() / 1000), filename: "upload.jsonl", purpose: "fine-tune" });
    }
    if (!verb && method === "GET") return sendJson(res, 200, dataset);
    throw new HttpError(405, "METHOD_NOT_ALLOWED", `${method} ${path}`);
  }

  if (!id && method === "POST") {
    const body = parse(CreateJob, await readJson(req));
    const jobId = new URL(req.url ?? "/", "http://sim").searchParams.get("supervisedFineTuningJobId") ?? `sftj-${state.jobs.size + 1}`;
    const name = `accounts/${account}/supervisedFineTuningJobs/${jobId}`;
    if (state.jobs.has(name)) throw new HttpError(409, "ALREADY_EXISTS", `job ${name} already exists`);
    for (const ds of [body.dataset, body.evaluationDataset]) {
      if (ds === undefined) continue;
      const found = state.datasets.get(ds.includes("/") ? ds : `accounts/${account}/datasets/${ds}`);
      if (found?.state !== "READY") throw new HttpError(400, "FAILED_PRECONDITION", `dataset ${ds} is not uploaded`);
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

/** The `file` part of a multipart/form-data body, as Fireworks' `:upload` takes it. */
async function uploadedFile(req: IncomingMessage): Promise<string> {
  const type = req.headers["content-type"] ?? "";
  if (!type.startsWith("multipart/form-data")) throw new HttpError(400, "INVALID_ARGUMENT", "upload a file as multipart/form-data (field 'file')");
  const form = await new Response(await readBody(req), { headers: { "content-type": type } }).formData();
  const file = form.get("file");
  if (file === null || typeof file === "string") throw new HttpError(400, "INVALID_ARGUMENT", "multipart field 'file' is missing");
  return file.text();
}

function parse<S extends z.ZodType>(schema: S, json: unknown): z.output<S> {
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new HttpError(400, "INVALID_ARGUMENT", describeIssues(parsed.error));
  return parsed.data;
}
