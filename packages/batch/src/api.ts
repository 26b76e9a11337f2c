/**
 * Fireworks' control-plane API for batch inference (https://api.fireworks.ai/v1/accounts/{account}/…),
 * as documented in 2026: a dataset is created, its JSONL file uploaded (`:upload`, files up to
 * 150 MB in one request), a batch inference job created over it with an output dataset, the job
 * polled until a terminal state, and the output dataset downloaded through signed URLs
 * (`:getDownloadEndpoint`). Every answer is parsed with zod: the shapes below are the fields this
 * client relies on, anything else passes through.
 *
 * Creation calls take caller-chosen ids, so a create that was sent but whose answer was lost (a
 * crash, a timeout) is repeated safely: "already exists" means it was made, and is read back.
 */
import { z } from "zod";

export type BatchApiOptions = {
  /** Origin of the control plane, e.g. `https://api.fireworks.ai` (the simulator's origin in tests). */
  baseUrl: string;
  accountId: string;
  apiKey: string;
  fetch?: typeof fetch;
};

/** Fireworks answers `JOB_STATE_RUNNING`; the guide writes `RUNNING`. Both read the same here. */
export const JobState = z
  .string()
  .transform((s) => s.replace(/^JOB_STATE_/, ""))
  .pipe(z.enum(["UNSPECIFIED", "CREATING", "VALIDATING", "PENDING", "RUNNING", "WRITING_RESULTS", "COMPLETED", "FAILED", "EXPIRED", "CANCELLED", "CANCELLING", "DELETING"]).catch("UNSPECIFIED"));
export type JobState = z.infer<typeof JobState>;

export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(["COMPLETED", "FAILED", "EXPIRED", "CANCELLED"]);

const Count = z.union([z.number(), z.string()]).transform(Number).pipe(z.number().nonnegative());

export const BatchJob = z.looseObject({
  name: z.string(),
  state: JobState,
  status: z.looseObject({ code: z.string().optional(), message: z.string().optional() }).optional(),
  outputDatasetId: z.string().optional(),
  createTime: z.string().optional(),
  updateTime: z.string().optional(),
  jobProgress: z
    .looseObject({
      percent: Count.optional(),
      totalInputRequests: Count.optional(),
      totalProcessedRequests: Count.optional(),
      successfullyProcessedRequests: Count.optional(),
      failedRequests: Count.optional(),
      inputTokens: Count.optional(),
      outputTokens: Count.optional(),
      cachedInputTokenCount: Count.optional(),
    })
    .optional(),
});
export type BatchJob = z.infer<typeof BatchJob>;

const DownloadEndpoint = z.looseObject({ filenameToSignedUrls: z.record(z.string(), z.string()).default({}) });

export class BatchApiError extends Error {
  override name = "BatchApiError";
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export type CreateJobInput = {
  model: string;
  inputDatasetId: string;
  outputDatasetId: string;
  maxTokens: number;
  displayName?: string;
};

export class FireworksBatchApi {
  private readonly fetch: typeof fetch;
  constructor(private readonly options: BatchApiOptions) {
    this.fetch = options.fetch ?? fetch;
  }

  /** Full resource name, e.g. `accounts/acme/datasets/ts-abc-0`, as jobs refer to datasets. */
  datasetName(id: string): string {
    return `accounts/${this.options.accountId}/datasets/${id}`;
  }

  async createDataset(id: string, exampleCount: number): Promise<void> {
    await this.call("POST", "datasets", { datasetId: id, dataset: { displayName: id, exampleCount: String(exampleCount), userUploaded: {} } }, true);
  }

  async uploadDataset(id: string, filename: string, jsonl: string): Promise<void> {
    const form = new FormData();
    form.append("file", new Blob([jsonl], { type: "application/jsonl" }), filename);
    await this.request("POST", `datasets/${id}:upload`, form);
  }

  async createJob(id: string, input: CreateJobInput): Promise<BatchJob> {
    const body = {
      displayName: input.displayName ?? id,
      model: input.model,
      inputDatasetId: this.datasetName(input.inputDatasetId),
      outputDatasetId: this.datasetName(input.outputDatasetId),
      inferenceParameters: { maxTokens: input.maxTokens, temperature: 0 },
    };
    const created = await this.call("POST", `batchInferenceJobs?batchInferenceJobId=${encodeURIComponent(id)}`, body, true);
    return created === null ? this.getJob(id) : BatchJob.parse(created);
  }

  async getJob(id: string): Promise<BatchJob> {
    return BatchJob.parse(await this.call("GET", `batchInferenceJobs/${id}`));
  }

  /** Every file of a dataset, by file name, as text. */
  async downloadDataset(id: string): Promise<Record<string, string>> {
    const { filenameToSignedUrls } = DownloadEndpoint.parse(await this.call("GET", `datasets/${id}:getDownloadEndpoint`));
    const files: Record<string, string> = {};
    for (const [name, url] of Object.entries(filenameToSignedUrls)) {
      // Signed URLs carry their own authorization: the API key is not sent to the storage host.
      const res = await this.fetch(url);
      if (!res.ok) throw new BatchApiError(`downloading ${name} of dataset ${id}: HTTP ${res.status}`, res.status);
      files[name] = await res.text();
    }
    return files;
  }

  /** JSON in, JSON out; with `existsOk`, a 409 answers null instead of failing. */
  private async call(method: string, path: string, body?: unknown, existsOk = false): Promise<unknown> {
    try {
      return await this.request(method, path, body === undefined ? undefined : JSON.stringify(body));
    } catch (err) {
      if (existsOk && err instanceof BatchApiError && err.status === 409) return null;
      throw err;
    }
  }

  private async request(method: string, path: string, body?: string | FormData): Promise<unknown> {
    const url = `${this.options.baseUrl.replace(/\/$/, "")}/v1/accounts/${this.options.accountId}/${path}`;
    const headers: Record<string, string> = { authorization: `Bearer ${this.options.apiKey}` };
    if (typeof body === "string") headers["content-type"] = "application/json";
    const res = await this.fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    if (!res.ok) throw new BatchApiError(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 500)}`, res.status);
    try {
      return text ? JSON.parse(text) : {};
    } catch {
      throw new BatchApiError(`${method} ${path}: the answer is not JSON`, res.status);
    }
  }
}
