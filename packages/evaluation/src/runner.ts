/**
 * Model calls for evaluation and labelling, through the fleet's own machinery: verdicts are looked
 * up in (and written to) the fleet's ResultIndex, and calls are paced by the fleet's Redis rate
 * limiter for the model, at backfill priority so live traffic keeps its reserve.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  createJudgeClient,
  buildChatMessages,
  estimateChatTokens,
  InvalidOutputError,
  type JudgeCall,
  JudgeCallError,
  callCostUsd,
  type Price,
  priceFor,
} from "@tracesift/judge";
import { FleetRateLimiter, type Priority } from "@tracesift/rate-limit";
import type { ResultIndex } from "@tracesift/result-index";
import type { Conversation, ConversationVersion, JudgedResult, SourcePosition } from "@tracesift/schemas";
import type { Redis } from "ioredis";
import { ARBITER_PROMPT_VERSION, arbiterPromptVersion, buildArbiterMessages, type PanelVerdictForArbiter } from "./arbiter.ts";
import { type JudgeConfig, resolveApiKey, resolvePromptVersion } from "./judge-config.ts";
import type { VerdictOutcome } from "./outcome.ts";

/** The model cannot be used now (fatal answer, or retries spent): nothing is recorded, a re-run retries. */
export class JudgeUnavailableError extends Error {
  override name = "JudgeUnavailableError";
  constructor(
    message: string,
    readonly fatal: boolean,
  ) {
    super(message);
  }
}

export type CallerStats = { modelCalls: number; cacheHits: number; invalidAnswers: number; rateLimited: number; transientErrors: number };

export type RuntimeDeps = {
  redis: Redis;
  /** The fleet's QUEUE_PREFIX: the limiter lives under `<prefix>:ratelimit`, the index under `<prefix>`. */
  prefix: string;
  index: ResultIndex;
  env: Record<string, string | undefined>;
  /** Answers per conversation before it is recorded as invalid output. Default 3. */
  maxAttempts?: number;
  /** Transport errors (timeouts, 5xx) per conversation before giving up. Default 4. */
  maxTransientErrors?: number;
  /** 429/503 answers per conversation before giving up. Default 30. */
  maxRateLimited?: number;
  priority?: Priority;
  signal?: AbortSignal;
  /** Base of the exponential backoff after a transport error. Default 500 ms. */
  backoffMs?: number;
};

type CallRequest = {
  conversation: Conversation;
  version: ConversationVersion;
  source: SourcePosition;
  promptVersion: string;
  promptTokens: number;
  call: () => Promise<JudgeCall>;
};

/** One model behind the cache and the limiter; `judge`-style and arbiter-style callers wrap it. */
class CachedCaller {
  readonly stats: CallerStats = { modelCalls: 0, cacheHits: 0, invalidAnswers: 0, rateLimited: 0, transientErrors: 0 };
  private readonly limiter: FleetRateLimiter;

  constructor(
    readonly config: JudgeConfig,
    readonly price: Price,
    private readonly deps: RuntimeDeps,
  ) {
    this.limiter = new FleetRateLimiter({
      redis: deps.redis,
      prefix: `${deps.prefix}:ratelimit`,
      model: config.model,
      limits: config.limits ?? {},
      leaseTtlMs: config.timeoutMs + 30_000,
    });
  }

  /** Fails fast when the fleet stopped the model (bad key or model id), rather than waiting in acquire. */
  async assertUsable(): Promise<void> {
    const stopped = await this.limiter.isStopped();
    if (stopped) throw new JudgeUnavailableError(`${this.config.name}: the fleet stopped calls to ${this.config.model}: ${stopped}`, true);
  }

  async run(req: CallRequest): Promise<VerdictOutcome> {
    const judge = { model: this.config.model, prompt_version: req.promptVersion };
    const hit = await this.deps.index.get({ conversationId: req.conversation.id, version: req.version, judge });
    if (hit) {
      this.stats.cacheHits++;
      return { status: "judged", verdict: hit.verdict, usage: hit.usage, latency_ms: hit.latency_ms, answers: hit.attempts, cached: true };
    }
    const { signal } = this.deps;
    const maxAttempts = this.deps.maxAttempts ?? 3;
    const name = this.config.name;
    let answers = 0;
    let transient = 0;
    let limited = 0;
    for (;;) {
      signal?.throwIfAborted();
      const lease = await this.limiter.acquire({ tokens: req.promptTokens + this.config.maxTokens, priority: this.deps.priority ?? "backfill", signal });
      this.stats.modelCalls++;
      let call: JudgeCall;
      try {
        call = await req.call();
      } catch (err) {
        await lease.release();
        if (err instanceof InvalidOutputError) {
          answers++;
          this.stats.invalidAnswers++;
          if (answers >= maxAttempts) return { status: "invalid", answers, error: err.message, raw: err.raw };
          continue;
        }
        if (!(err instanceof JudgeCallError)) throw err;
        if (err.kind === "fatal") throw new JudgeUnavailableError(`${name}: ${err.message}`, true);
        if (err.kind === "rate_limited" || err.kind === "overloaded") {
          this.stats.rateLimited++;
          if (++limited > (this.deps.maxRateLimited ?? 30)) throw new JudgeUnavailableError(`${name}: still rate limited after ${limited - 1} retries: ${err.message}`, false);
          // Pauses every caller of this model, fleet workers included: the provider limit is shared.
          await this.limiter.onRateLimited({ status: err.status === 503 ? 503 : 429, ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}) });
          continue;
        }
        this.stats.transientErrors++;
        if (++transient >= (this.deps.maxTransientErrors ?? 4)) throw new JudgeUnavailableError(`${name}: ${transient} failed calls, last: ${err.message}`, false);
        await sleep((this.deps.backoffMs ?? 500) * 2 ** (transient - 1), undefined, { signal });
        continue;
      }
      answers++;
      await lease.settle(call.usage);
      await this.limiter.onSuccess();
      await this.limiter.learnFromHeaders(call.headers);
      const latency = Math.round(call.latencyMs);
      await this.deps.index.put(this.result(req, call, latency, answers));
      return { status: "judged", verdict: call.verdict, usage: call.usage, latency_ms: latency, answers, cached: false };
    }
  }

  private result(req: CallRequest, call: JudgeCall, latencyMs: number, attempts: number): JudgedResult {
    const { conversation, version } = req;
    return {
      schema_version: 1,
      result_id: `${conversation.id}:${version.message_count}:${version.content_hash}:${this.config.model}:${req.promptVersion}`,
      status: "judged",
      conversation_id: conversation.id,
      conversation_version: version,
      metadata: conversation.metadata,
      source: req.source,
      priority: this.deps.priority ?? "backfill",
      verdict: call.verdict,
      judge: { model: this.config.model, prompt_version: req.promptVersion },
      usage: call.usage,
      cost_usd: callCostUsd(call.usage, latencyMs, this.price),
      latency_ms: latencyMs,
      attempts,
      judged_at: new Date().toISOString(),
    };
  }
}

export type JudgeInput = { conversation: Conversation; version: ConversationVersion; source: SourcePosition };

function clientFor(config: JudgeConfig, deps: RuntimeDeps) {
  return createJudgeClient({
    baseURL: config.baseURL,
    apiKey: resolveApiKey(config, deps.env),
    model: config.model,
    timeoutMs: config.timeoutMs,
    maxTokens: config.maxTokens,
    responseFormat: config.responseFormat,
    logprobs: config.logprobs,
  });
}

/** A judge configuration: the fleet's judge prompt through cache and limiter. */
export function createCachedJudge(config: JudgeConfig, deps: RuntimeDeps) {
  const promptVersion = resolvePromptVersion(config, "judge");
  const price = config.pricing ?? priceFor({}, config.model);
  const client = clientFor(config, deps);
  const caller = new CachedCaller(config, price, deps);
  return {
    config,
    price,
    promptVersion,
    stats: caller.stats,
    assertUsable: () => caller.assertUsable(),
    judge: (input: JudgeInput) => {
      // Rendered once: for the estimate and for the call.
      const messages = buildChatMessages(input.conversation);
      return caller.run({ ...input, promptVersion, promptTokens: estimateChatTokens(messages), call: () => client.complete(messages) });
    },
  };
}
export type CachedJudge = ReturnType<typeof createCachedJudge>;

/** An arbiter configuration: the arbiter prompt (conversation + panel verdicts) through cache and limiter. */
export function createCachedArbiter(config: JudgeConfig, deps: RuntimeDeps) {
  resolvePromptVersion(config, "arbiter");
  const price = config.pricing ?? priceFor({}, config.model);
  const client = clientFor(config, deps);
  const caller = new CachedCaller(config, price, deps);
  return {
    config,
    price,
    promptVersion: ARBITER_PROMPT_VERSION,
    stats: caller.stats,
    assertUsable: () => caller.assertUsable(),
    arbitrate: (input: JudgeInput, panel: readonly PanelVerdictForArbiter[]) => {
      const messages = buildArbiterMessages(input.conversation, panel);
      return caller.run({
        ...input,
        promptVersion: arbiterPromptVersion(panel),
        promptTokens: estimateChatTokens(messages),
        call: () => client.complete(messages),
      });
    },
  };
}
export type CachedArbiter = ReturnType<typeof createCachedArbiter>;
