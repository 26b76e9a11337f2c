/**
 * The few calls of Fireworks' control-plane REST API (https://api.fireworks.ai/v1/accounts/{id}/…)
 * that `tracesift finetune` needs: datasets (create, `:upload` a file as multipart, get) and
 * supervised fine-tuning jobs (create with `?supervisedFineTuningJobId=`, get). Every answer is
 * parsed with zod; fields we do not use are let through, since the API adds them often.
 */
import { z } from "zod";

export const FireworksDataset = z.looseObject({
  name: z.string(),
  state: z.string().optional(),
  exampleCount: z.union([z.string(), z.number()]).optional(),
});
export type FireworksDataset = z.infer<typeof FireworksDataset>;

export const SftJob = z.looseObject({
  name: z.string(),
  state: z.string(),
  outputModel: z.string().optional(),
  baseModel: z.string().optional(),
  jobProgress: z.looseObject({ percent: z.number().optional(), epoch: z.number().optional() }).optional(),
  status: z.looseObject({ code: z.string().optional(), message: z.string().optional() }).optional(),
});
export type SftJob = z.infer<typeof SftJob>;

export const TERMINAL_JOB_STATES = new Set(["JOB_STATE_COMPLETED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED", "JOB_STATE_DELETING"]);

export type SftJobRequest = {
  dataset: string;
  evaluationDataset?: string;
  baseModel: string;
  outputModel: string;
  displayName: string;
  epochs: number;
  learningRate: number;
  loraRank: number;
};

export class FireworksApiError extends Error {
  override name = "FireworksApiError";
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export class FireworksApi {
  private readonly root: string;

  constructor(
    private readonly options: { apiUrl: string; apiKey: string; account: string; fetch?: typeof fetch },
  ) {
    this.root = `${options.apiUrl.replace(/\/+$/, "")}/v1/accounts/${encodeURIComponent(options.account)}`;
  }

  private async call<S extends z.ZodType>(schema: S, method: string, path: string, body?: unknown): Promise<z.output<S>> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.options.apiKey}` };
    let payload: string | FormData | undefined;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const res = await (this.options.fetch ?? fetch)(`${this.root}${path}`, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
    const text = await res.text();
    if (!res.ok) {
      let message = text.slice(0, 500);
      try {
        message = z.object({ error: z.object({ message: z.string() }) }).parse(JSON.parse(text)).error.message;
      } catch {}
      throw new FireworksApiError(`${method} ${path}: HTTP ${res.status}: ${message}`, res.status);
    }
    const parsed = schema.safeParse(text === "" ? {} : JSON.parse(text));
    if (!parsed.success) throw new FireworksApiError(`${method} ${path}: unexpected answer: ${parsed.error.issues[0]?.message ?? ""}`, res.status);
    return parsed.data;
  }

  datasetName(id: string): string {
    return `accounts/${this.options.account}/datasets/${id}`;
  }

  async getDataset(id: string): Promise<FireworksDataset | null> {
    try {
      return await this.call(FireworksDataset, "GET", `/datasets/${id}`);
    } catch (err) {
      if (err instanceof FireworksApiError && err.status === 404) return null;
      throw err;
    }
  }

  /** Creates the dataset unless it exists (a resumed run), then uploads the file unless it is ready. */
  async ensureDataset(id: string, text: string, examples: number): Promise<FireworksDataset> {
    const existing = await this.getDataset(id);
    if (existing?.state === "READY") return existing;
    if (!existing) await this.call(FireworksDataset, "POST", "/datasets", { datasetId: id, dataset: { displayName: id, exampleCount: String(examples), format: "CHAT" } });
    const form = new FormData();
    form.append("file", new Blob([text], { type: "application/jsonl" }), `${id}.jsonl`);
    await this.call(z.unknown(), "POST", `/datasets/${id}:upload`, form);
    const ready = await this.getDataset(id);
    if (!ready) throw new FireworksApiError(`dataset ${id} vanished after its upload`, 404);
    return ready;
  }

  jobName(id: string): string {
    return `accounts/${this.options.account}/supervisedFineTuningJobs/${id}`;
  }

  async getSftJob(id: string): Promise<SftJob | null> {
    try {
      return await this.call(SftJob, "GET", `/supervisedFineTuningJobs/${id}`);
    } catch (err) {
      if (err instanceof FireworksApiError && err.status === 404) return null;
      throw err;
    }
  }

  /** Creates the job under a fixed id, or returns the one a previous run created: what makes resuming safe. */
  async ensureSftJob(id: string, request: SftJobRequest): Promise<SftJob> {
    const existing = await this.getSftJob(id);
    if (existing) return existing;
    return this.call(SftJob, "POST", `/supervisedFineTuningJobs?supervisedFineTuningJobId=${encodeURIComponent(id)}`, request);
  }
}
