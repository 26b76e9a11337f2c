import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { handleAdmin } from "./admin.ts";
import { handleBatch, isBatchPath } from "./batch.ts";
import { handleChat } from "./chat.ts";
import type { SimContext } from "./context.ts";
import { FaultPlan } from "./faults.ts";
import { handleFinetune } from "./finetune.ts";
import { Hangup, HttpError, sendError } from "./http.ts";
import {
  type InjectedFault,
  InjectedFaultSchema,
  mergeOptions,
  parseOptions,
  type SimConfig,
  type SimOptionsInput,
  type SimulatorOptions,
} from "./options.ts";
import { PromptCache } from "./prompt-cache.ts";
import { SlidingWindowLimiter } from "./rate-limiter.ts";
import { type SimStats, StatsRecorder } from "./stats.ts";
import { seededRandom } from "./tokens.ts";

export type Simulator = {
  /** Starts serving; `url` is the base URL to give the `openai` SDK (it ends in `/inference/v1`). */
  listen(port?: number, host?: string): Promise<{ url: string; port: number }>;
  /** Stops serving and drops open connections, including hanging "timeout" requests. */
  close(): Promise<void>;
  stats(): SimStats;
  /** Changes options from now on; only the given fields change (`null` unsets rpm, tpm, models...). */
  configure(options: SimOptionsInput): void;
  /** Queues faults for the next chat requests, one each, in order. */
  injectNext(faults: InjectedFault[]): void;
  /** Back to the options given at creation, with empty windows, cache, fault queue and counters. */
  reset(): void;
};

const CHAT_PATHS = new Set(["/inference/v1/chat/completions", "/v1/chat/completions"]);

/**
 * An HTTP server that answers like Fireworks' OpenAI-compatible chat completions endpoint, with
 * deterministic verdicts, token usage, prompt caching, rate limits and injectable faults.
 *
 * @example
 * const sim = createSimulator({ rpm: 60, latencyMs: 0 });
 * const { url } = await sim.listen(0);
 * const client = new OpenAI({ baseURL: url, apiKey: "test" });
 */
export function createSimulator(options: SimulatorOptions = {}): Simulator {
  const { now = Date.now, onRequest, ...input } = options;
  const initial = parseOptions(input);
  const ctx: SimContext = {
    config: initial,
    now,
    random: randomFor(initial),
    limiter: new SlidingWindowLimiter(now),
    cache: new PromptCache(initial.promptCacheTtlMs, now),
    faults: new FaultPlan(),
    stats: new StatsRecorder(),
    onRequest,
    closing: new AbortController().signal,
    inFlight: new Set(),
  };
  let server: Server | undefined;
  let shutdown: AbortController | undefined;

  const simulator: Simulator = {
    async listen(port = 0, host = "127.0.0.1") {
      if (server) throw new Error("the simulator is already listening");
      shutdown = new AbortController();
      ctx.closing = shutdown.signal;
      const s = createServer((req, res) => route(ctx, simulator, req, res));
      server = s;
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(port, host, () => {
          s.off("error", reject);
          resolve();
        });
      });
      const bound = (s.address() as AddressInfo).port;
      return { url: `http://${urlHost(host)}:${bound}/inference/v1`, port: bound };
    },
    async close() {
      const s = server;
      if (!s) return;
      server = undefined;
      const reason = new Error("simulator closed");
      shutdown?.abort(reason);
      for (const request of ctx.inFlight) request.abort(reason);
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    },
    stats: () => ctx.stats.snapshot(),
    configure(update) {
      const previousSeed = ctx.config.seed;
      ctx.config = mergeOptions(ctx.config, update);
      ctx.cache.setTtl(ctx.config.promptCacheTtlMs);
      if (ctx.config.seed !== previousSeed) ctx.random = randomFor(ctx.config);
    },
    injectNext(faults) {
      ctx.faults.inject(faults.map((f) => InjectedFaultSchema.parse(f)));
    },
    reset() {
      // In place rather than new objects: requests still in flight finish against the same recorder.
      ctx.config = initial;
      ctx.random = randomFor(initial);
      ctx.limiter.clear();
      ctx.cache.clear();
      ctx.cache.setTtl(initial.promptCacheTtlMs);
      ctx.faults.clear();
      ctx.stats.reset();
    },
  };
  return simulator;
}

function route(ctx: SimContext, sim: Simulator, req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? "/").split("?")[0] ?? "/";
  const handled = /^\/v1\/accounts\/[^/]+\/supervisedFineTuningJobs/.test(path)
    ? handleFinetune(ctx, path, req, res)
    : isBatchPath(path)
      ? handleBatch(ctx, req, res)
      : CHAT_PATHS.has(path)
        ? chat(ctx, path, req, res)
        : path.startsWith("/_sim/")
          ? handleAdmin(sim, path, req, res)
          : Promise.reject(new HttpError(404, "NOT_FOUND", `no route ${req.method} ${path}`));
  handled.catch((err: unknown) => {
    if (err instanceof HttpError) return sendError(res, err);
    sendError(res, new HttpError(500, "INTERNAL", `simulator bug: ${(err as Error).message}`, "internal_server_error"));
  });
}

async function chat(ctx: SimContext, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== "POST") throw new HttpError(405, "METHOD_NOT_ALLOWED", `use POST ${path}`);
  const started = performance.now();
  // The client hangs up before the answer, or the simulator closes (close() abandons `inFlight`).
  const hangup = new Hangup();
  res.once("close", () => {
    if (!res.writableFinished) hangup.abort(new Error("client closed the connection"));
  });
  if (ctx.closing.aborted) hangup.abort(ctx.closing.reason);
  ctx.inFlight.add(hangup);
  const stats = ctx.stats;
  stats.started();
  let result: Awaited<ReturnType<typeof handleChat>> = { outcome: { status: 500 } };
  try {
    result = await handleChat(ctx, req, res, hangup);
  } finally {
    ctx.inFlight.delete(hangup);
    const { outcome, model } = result;
    const t = outcome.tokens;
    const price = ctx.config.price;
    const cost = t ? ((t.prompt - t.cached) * price.input + t.cached * price.cachedInput + t.completion * price.output) / 1e6 : 0;
    stats.finished(outcome.status, model, outcome.tokens, outcome.malformed, cost);
    ctx.onRequest?.({
      method: req.method ?? "POST",
      path,
      status: outcome.status,
      durationMs: Math.round(performance.now() - started),
      ...(model ? { model } : {}),
      ...(outcome.fault ? { fault: outcome.fault } : {}),
    });
  }
}

function randomFor(config: SimConfig): () => number {
  return config.seed === undefined ? Math.random : seededRandom(config.seed);
}

function urlHost(host: string): string {
  if (host === "0.0.0.0" || host === "::") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}
