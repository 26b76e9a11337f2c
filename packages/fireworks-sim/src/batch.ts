/**
 * Fireworks' batch inference endpoints, simulated: datasets (create, upload, download through
 * "signed" URLs), batch inference jobs (create, get) and their states. A job moves one step per
 * poll — VALIDATING, PENDING, RUNNING (a quarter of its requests per poll), COMPLETED — so a test
 * controls its pace by polling. Answers are the chat endpoint's (same verdicts, same token counts,
 * the same prompt cache), written to a results file and an error file.
 *
 * Per-request directives, like the chat endpoint's: `[sim:malformed]` (an invalid answer),
 * `[sim:batch-error]` (a line in the error file), `[sim:batch-fail-once:<id>]` (the first job
 * carrying the id fails validation), `[sim:batch-expire-once:<id>]` (the first job carrying the id
 * expires half-done, its answered half saved).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import type { SimContext } from "./context.ts";
import { malformedContent, readDirectives } from "./faults.ts";
import { HttpError, readBody, sendJson } from "./http.ts";
import { promptTokens, textTokens } from "./tokens.ts";
import { decideVerdict, parseTranscript, verdictContent } from "./verdict.ts";

type Dataset = { id: string; files: Map<string, string> };
type Job = {
  id: string;
  model: string;
  input: string;
  output: string;
  state: string;
  message?: string;
  lines: { customId: string; body: RequestBody }[];
  processed: number;
  results: string[];
  errors: string[];
  tokens: { input: number; output: number; cached: number };
  createTime: string;
};

const RequestBody = z.looseObject({
  messages: z.array(z.looseObject({ role: z.string(), content: z.string().nullish() })).min(1),
  max_tokens: z.number().int().positive().nullish(),
});
type RequestBody = z.infer<typeof RequestBody>;
const InputLine = z.looseObject({ custom_id: z.string().min(1), body: RequestBody });
const CreateDataset = z.looseObject({ datasetId: z.string().min(1) });
const CreateJob = z.looseObject({ model: z.string().min(1), inputDatasetId: z.string().min(1), outputDatasetId: z.string().optional() });

/** The simulator's batch state, kept apart from the chat state so the rate-limit code stays untouched. */
class BatchSim {
  datasets = new Map<string, Dataset>();
  jobs = new Map<string, Job>();
  /** Requests answered (billed) per custom_id, over all jobs: what a test checks "paid once" with. */
  billed = new Map<string, number>();
  seenOnce = new Set<string>();
}
const sims = new WeakMap<SimContext, BatchSim>();

function countLines(dataset: Dataset): number {
  let n = 0;
  for (const text of dataset.files.values()) n += text.split("\n").filter((l) => l.trim() !== "").length;
  return n;
}

/**
 * One dataset store for the whole simulated control plane, as Fireworks has: fine-tuning jobs take
 * datasets uploaded here. Accepts `accounts/<a>/datasets/<id>` or the bare id.
 */
export function uploadedDataset(ctx: SimContext, ref: string): { examples: number; text: string } | undefined {
  const dataset = sims.get(ctx)?.datasets.get(ref.split("/").pop() ?? ref);
  return dataset && dataset.files.size > 0 ? { examples: countLines(dataset), text: [...dataset.files.values()].join("\n") } : undefined;
}

export function isBatchPath(path: string): boolean {
  return path.startsWith("/v1/accounts/") || path.startsWith("/_sim/batch/");
}

export async function handleBatch(ctx: SimContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let sim = sims.get(ctx);
  if (!sim) {
    sim = new BatchSim();
    sims.set(ctx, sim);
  }
  const [path = "/", query = ""] = (req.url ?? "/").split("?");
  const method = req.method ?? "GET";
  if (path === "/_sim/batch/stats") {
    return sendJson(res, 200, { jobs: [...sim.jobs.values()].map((j) => ({ id: j.id, state: j.state, processed: j.processed })), billed: Object.fromEntries(sim.billed) });
  }
  const file = /^\/_sim\/batch\/files\/([^/]+)\/([^/]+)$/.exec(path);
  if (file && method === "GET") {
    const text = sim.datasets.get(decodeURIComponent(file[1]!))?.files.get(decodeURIComponent(file[2]!));
    if (text === undefined) throw new HttpError(404, "NOT_FOUND", "no such file");
    res.writeHead(200, { "content-type": "application/jsonl" });
    res.end(text);
    return;
  }
  authorize(ctx, req);
  const m = /^\/v1\/accounts\/[^/]+\/(datasets|batchInferenceJobs)(?:\/([^/:]+))?(?::(\w+))?$/.exec(path);
  if (!m) throw new HttpError(404, "NOT_FOUND", `no route ${method} ${path}`);
  const [, kind, id, verb] = m;
  if (kind === "datasets") {
    if (method === "POST" && !id) {
      const body = parse(CreateDataset, await readBody(req));
      if (sim.datasets.has(body.datasetId)) throw new HttpError(409, "ALREADY_EXISTS", `dataset ${body.datasetId} already exists`);
      sim.datasets.set(body.datasetId, { id: body.datasetId, files: new Map() });
      return sendJson(res, 200, { name: `accounts/sim/datasets/${body.datasetId}`, state: "UPLOADING" });
    }
    const dataset = id ? sim.datasets.get(id) : undefined;
    if (!dataset) throw new HttpError(404, "NOT_FOUND", `dataset ${id} not found`);
    if (method === "POST" && verb === "upload") {
      const { filename, content } = readMultipartFile(req.headers["content-type"] ?? "", await readBody(req));
      dataset.files.set(filename, content);
      return sendJson(res, 200, { id: dataset.id, object: "file", bytes: Buffer.byteLength(content), filename });
    }
    if (method === "GET" && verb === "getDownloadEndpoint") {
      const origin = `http://${req.headers.host ?? "127.0.0.1"}`;
      const urls = Object.fromEntries([...dataset.files.keys()].map((f) => [f, `${origin}/_sim/batch/files/${encodeURIComponent(dataset.id)}/${encodeURIComponent(f)}`]));
      return sendJson(res, 200, { filenameToSignedUrls: urls });
    }
    if (method === "GET" && !verb) {
      return sendJson(res, 200, { name: `accounts/sim/datasets/${dataset.id}`, state: dataset.files.size > 0 ? "READY" : "UPLOADING", exampleCount: countLines(dataset) });
    }
    throw new HttpError(404, "NOT_FOUND", `no route ${method} ${path}`);
  }
  if (method === "POST" && !id) {
    const jobId = new URLSearchParams(query).get("batchInferenceJobId") ?? `job-${sim.jobs.size + 1}`;
    if (sim.jobs.has(jobId)) throw new HttpError(409, "ALREADY_EXISTS", `batch inference job ${jobId} already exists`);
    const body = parse(CreateJob, await readBody(req));
    const input = lastSegment(body.inputDatasetId);
    const dataset = sim.datasets.get(input);
    if (!dataset) throw new HttpError(400, "INVALID_ARGUMENT", `input dataset ${body.inputDatasetId} not found`);
    const output = lastSegment(body.outputDatasetId ?? `${jobId}-output`);
    const job: Job = {
      id: jobId,
      model: body.model,
      input,
      output,
      state: "JOB_STATE_VALIDATING",
      lines: [],
      processed: 0,
      results: [],
      errors: [],
      tokens: { input: 0, output: 0, cached: 0 },
      createTime: new Date(ctx.now()).toISOString(),
    };
    sim.jobs.set(jobId, job);
    return sendJson(res, 200, view(job));
  }
  const job = id ? sim.jobs.get(id) : undefined;
  if (!job || method !== "GET" || verb) throw new HttpError(404, "NOT_FOUND", `batch inference job ${id} not found`);
  advance(ctx, sim, job);
  return sendJson(res, 200, view(job));
}

function advance(ctx: SimContext, sim: BatchSim, job: Job): void {
  switch (job.state) {
    case "JOB_STATE_VALIDATING": {
      const text = [...(sim.datasets.get(job.input)?.files.values() ?? [])].join("\n");
      try {
        job.lines = text
          .split("\n")
          .filter((l) => l.trim())
          .map((l) => {
            const line = InputLine.parse(JSON.parse(l));
            return { customId: line.custom_id, body: line.body };
          });
      } catch (err) {
        fail(job, `input dataset is not valid batch JSONL: ${(err as Error).message.slice(0, 200)}`);
        return;
      }
      if (new Set(job.lines.map((l) => l.customId)).size !== job.lines.length) fail(job, "custom_id values must be unique");
      else if (onceDirective(sim, job, /\[sim:batch-fail-once:([^\]\s]+)\]/)) fail(job, "the job failed (injected by the simulator)");
      else job.state = "JOB_STATE_PENDING";
      return;
    }
    case "JOB_STATE_PENDING":
      job.state = "JOB_STATE_RUNNING";
      return;
    case "JOB_STATE_RUNNING": {
      const expire = job.processed === 0 && onceDirective(sim, job, /\[sim:batch-expire-once:([^\]\s]+)\]/);
      const step = expire ? Math.floor(job.lines.length / 2) : Math.max(1, Math.ceil(job.lines.length / 4));
      for (const line of job.lines.slice(job.processed, job.processed + step)) answer(ctx, sim, job, line);
      job.processed = Math.min(job.lines.length, job.processed + step);
      if (expire) {
        job.state = "JOB_STATE_EXPIRED";
        job.message = "the job exceeded its time window; completed requests are in the output dataset";
      } else if (job.processed >= job.lines.length) job.state = "JOB_STATE_COMPLETED";
      else return;
      writeOutput(sim, job);
      return;
    }
    default:
      return;
  }
}

function answer(ctx: SimContext, sim: BatchSim, job: Job, line: Job["lines"][number]): void {
  const contents = line.body.messages.map((m) => m.content ?? "");
  const directives = readDirectives(contents);
  if (contents.some((c) => c.includes("[sim:batch-error]"))) {
    job.errors.push(JSON.stringify({ custom_id: line.customId, error: { code: 500, message: "internal error processing the request (injected by the simulator)" } }));
    return;
  }
  const user = line.body.messages.findLast((m) => m.role === "user")?.content ?? "";
  const verdict = decideVerdict(parseTranscript(user));
  const content = directives.malformed ? malformedContent(directives.malformed, verdict) : verdictContent(verdict);
  const prompt = promptTokens(contents);
  // Batch jobs run on their own replica (-1): their prompts share a prefix cache with each other only.
  const blocks = ctx.cache.blocks(-1, job.model, line.body.messages.map((m) => ({ role: m.role, content: m.content ?? "" })));
  const cached = Math.min(prompt, ctx.cache.lookup(blocks));
  ctx.cache.store(blocks);
  const completion = textTokens(content);
  job.tokens.input += prompt;
  job.tokens.output += completion;
  job.tokens.cached += cached;
  sim.billed.set(line.customId, (sim.billed.get(line.customId) ?? 0) + 1);
  job.results.push(
    JSON.stringify({
      custom_id: line.customId,
      response: {
        id: `chatcmpl-batch-${job.id}-${job.results.length}`,
        object: "chat.completion",
        model: job.model,
        choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
        usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: cached } },
      },
    }),
  );
}

function writeOutput(sim: BatchSim, job: Job): void {
  const files = new Map<string, string>([["BIJOutputSet.jsonl", job.results.map((l) => `${l}\n`).join("")]]);
  if (job.errors.length > 0) files.set("error-data.jsonl", job.errors.map((l) => `${l}\n`).join(""));
  sim.datasets.set(job.output, { id: job.output, files });
}

function fail(job: Job, message: string): void {
  job.state = "JOB_STATE_FAILED";
  job.message = message;
}

/** True the first time a job carries an id of this directive. */
function onceDirective(sim: BatchSim, job: Job, pattern: RegExp): boolean {
  for (const line of job.lines) {
    for (const m of line.body.messages) {
      const id = pattern.exec(m.content ?? "")?.[1];
      if (id && !sim.seenOnce.has(`${pattern.source}\u0000${id}`)) {
        sim.seenOnce.add(`${pattern.source}\u0000${id}`);
        return true;
      }
    }
  }
  return false;
}

function view(job: Job) {
  const answered = job.results.length;
  return {
    name: `accounts/sim/batchInferenceJobs/${job.id}`,
    displayName: job.id,
    createTime: job.createTime,
    state: job.state,
    status: { code: job.state === "JOB_STATE_FAILED" ? "INVALID_ARGUMENT" : "OK", message: job.message ?? "" },
    model: job.model,
    inputDatasetId: `accounts/sim/datasets/${job.input}`,
    outputDatasetId: `accounts/sim/datasets/${job.output}`,
    jobProgress: {
      percent: job.lines.length ? Math.round((job.processed / job.lines.length) * 100) : 0,
      totalInputRequests: job.lines.length,
      totalProcessedRequests: job.processed,
      successfullyProcessedRequests: answered,
      failedRequests: job.errors.length,
      inputTokens: job.tokens.input,
      outputTokens: job.tokens.output,
      cachedInputTokenCount: job.tokens.cached,
    },
  };
}

function authorize(ctx: SimContext, req: IncomingMessage): void {
  const key = ctx.config.apiKey;
  if (key !== undefined && req.headers.authorization !== `Bearer ${key}`) throw new HttpError(401, "UNAUTHORIZED", "The API key you provided is invalid.");
}

function parse<T extends z.ZodType>(schema: T, text: string): z.infer<T> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new HttpError(400, "INVALID_ARGUMENT", "request body is not valid JSON");
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new HttpError(400, "INVALID_ARGUMENT", parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  return parsed.data;
}

function lastSegment(name: string): string {
  return name.split("/").pop() ?? name;
}

/** The one file of a multipart/form-data body (the `file` field of `:upload`). */
function readMultipartFile(contentType: string, body: string): { filename: string; content: string } {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType);
  const b = boundary?.[1] ?? boundary?.[2];
  if (!b) throw new HttpError(400, "INVALID_ARGUMENT", "expected a multipart/form-data upload");
  for (const part of body.split(`--${b}`)) {
    const split = part.indexOf("\r\n\r\n");
    if (split < 0) continue;
    const head = part.slice(0, split);
    const name = /filename="([^"]*)"/.exec(head)?.[1];
    if (name === undefined) continue;
    return { filename: name || "input.jsonl", content: part.slice(split + 4).replace(/\r\n$/, "") };
  }
  throw new HttpError(400, "INVALID_ARGUMENT", "the upload carries no file");
}
