import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import { type ModelLimits, ModelLimitsSchema } from "./config.ts";
import { type HeadersLike, type LearnedLimits, parseRateLimitHeaders } from "./headers.ts";
import { RedisLease } from "./lease.ts";
import { acquireScript, LEARNED_FIELDS, rateLimitedScript, settleScript, snapshotScript, successScript } from "./lua.ts";
import {
  type Lease,
  type LimiterOptions,
  type LimiterSnapshot,
  METER_LIMIT,
  METERS,
  type MeterValues,
  type Priority,
  RequestTooLargeError,
  type SettleUsage,
} from "./types.ts";

/** Adaptive concurrency (used while limits are unknown): start, ceiling without maxInFlight. */
export const ADAPTIVE_INITIAL = 4;
export const ADAPTIVE_MAX = 256;
/** Waiters re-check at least this often, so stop/resume and new limits are seen promptly. */
const MAX_SLEEP_MS = 1000;
/** Slots free when calls finish, which no script can predict: poll. */
const IN_FLIGHT_POLL_MS = 50;
/** Weight of the newest call in the running estimate of completion length. */
const EWMA_ALPHA = 0.05;
/** Token meters: without any of them known (a dedicated deployment) concurrency adapts (AIMD). */
const TOKEN_LIMITS = ["promptTpm", "uncachedPromptTpm", "generatedTpm"] as const;

/**
 * A rate limiter shared by every replica through Redis, for one model. It meters what Fireworks
 * meters, each on an exact sliding window: requests, prompt tokens, uncached prompt tokens (prompt
 * minus cached) and generated tokens; plus a fleet-wide in-flight cap, a live-traffic reserve,
 * a fleet-wide pause on 429/503 and a stop on fatal errors. All decisions happen in Lua against
 * Redis server time.
 *
 * Before a call each meter is reserved from an estimate: the prompt estimate (on both prompt
 * meters: nothing is assumed cached) and the completion from this replica's running mean (capped
 * by max_tokens); settle() replaces the estimates with the provider's `usage`, cached tokens
 * included.
 *
 * @example
 * const limiter = new FleetRateLimiter({ redis, prefix: "tracesift:rl", model, limits });
 * const lease = await limiter.acquire({ tokens: promptTokens, completionTokens: maxTokens, priority: "live", signal });
 * try {
 *   const res = await client.chat.completions.create(body).withResponse();
 *   await limiter.learnFromHeaders(res.response.headers);
 *   await limiter.onSuccess();
 *   await lease.settle(usage); // {prompt_tokens, cached_prompt_tokens, completion_tokens}
 * } catch (err) {
 *   await lease.release();
 *   if (err.status === 429 || err.status === 503) await limiter.onRateLimited({ status: err.status, retryAfterMs });
 *   throw err;
 * }
 */
export class FleetRateLimiter {
  readonly model: string;
  private readonly redis: Redis;
  private readonly limits: ModelLimits;
  private readonly liveReserve: number;
  private readonly safety: number;
  private readonly backoff: { baseMs: number; maxMs: number };
  private readonly windowMs: number;
  private readonly burstWindowMs: number;
  private readonly burstFactor: number;
  private readonly leaseTtlMs: number;
  private readonly completionCharge: "usage" | "max_tokens";
  /** Running estimate of completion length from settled calls (per replica: it only sizes reservations). */
  private completionMean: number | undefined;
  private completionDev = 0;
  /**
   * Whether this instance has seen a 429/503 since its last reset of the fleet-wide counter. With
   * configured limits (AIMD off) a success only needs to reach Redis when it resets something.
   */
  private sawRateLimit = true;
  private readonly random: () => number;
  private readonly adaptiveMax: number;
  private readonly keys: { win: string; burst: string; tot: string; flight: string; state: string };
  private lastLearned = "";

  constructor(options: LimiterOptions) {
    this.redis = options.redis;
    this.model = options.model;
    this.limits = ModelLimitsSchema.parse(options.limits);
    this.liveReserve = fraction("liveReserve", options.liveReserve ?? 0.2, 0, 1);
    this.safety = fraction("safety", options.safety ?? 0.97, Number.MIN_VALUE, 1);
    this.backoff = options.backoff ?? { baseMs: 1000, maxMs: 60_000 };
    if (!(this.backoff.baseMs > 0 && this.backoff.maxMs >= this.backoff.baseMs)) {
      throw new RangeError("backoff needs 0 < baseMs <= maxMs");
    }
    this.windowMs = positiveInt("windowMs", options.windowMs ?? 60_000);
    this.leaseTtlMs = positiveInt("leaseTtlMs", options.leaseTtlMs ?? 300_000);
    this.burstFactor = options.burstFactor ?? 1.5;
    if (!(this.burstFactor === 0 || this.burstFactor >= 1)) throw new RangeError("burstFactor must be 0 or >= 1");
    this.burstWindowMs = this.burstFactor > 0 ? Math.max(1, Math.floor(this.windowMs / 6)) : 0;
    this.completionCharge = options.completionCharge ?? "usage";
    this.random = options.random ?? Math.random;
    this.adaptiveMax = this.limits.maxInFlight ?? ADAPTIVE_MAX;
    // One hash tag per model keeps every key of a script in one Redis Cluster slot.
    const base = `${options.prefix}:{${options.model}}`;
    this.keys = {
      win: `${base}:win`,
      burst: `${base}:burst`,
      tot: `${base}:tot`,
      flight: `${base}:flight`,
      state: `${base}:state`,
    };
  }

  /**
   * Waits until every meter's window, the in-flight cap, a pause and a stop all allow one more
   * call of `tokens` prompt tokens (and up to `completionTokens` generated, i.e. max_tokens), then
   * reserves it. While the model is stopped it keeps waiting (re-checking every second) until
   * resume(); rejects when `signal` aborts and throws RequestTooLargeError when the request can
   * never fit its priority's budget.
   */
  async acquire(req: { tokens: number; completionTokens?: number; priority: Priority; signal?: AbortSignal }): Promise<Lease> {
    if (!(req.tokens >= 0 && Number.isFinite(req.tokens))) throw new RangeError("tokens must be >= 0");
    const reserved = this.estimate(Math.ceil(req.tokens), req.completionTokens);
    const started = performance.now();
    const id = randomUUID();
    const { win, burst, tot, flight, state } = this.keys;
    for (;;) {
      req.signal?.throwIfAborted();
      const res = (await acquireScript.run(
        this.redis,
        [win, burst, tot, flight, state],
        [
          id,
          req.priority,
          this.leaseTtlMs,
          this.windowMs,
          this.burstWindowMs,
          this.burstFactor,
          this.safety,
          this.liveReserve,
          this.limits.maxInFlight ?? "",
          Math.min(ADAPTIVE_INITIAL, this.adaptiveMax),
          ...METERS.map((m) => reserved[m]),
          ...METERS.map((m) => this.limits[METER_LIMIT[m]] ?? ""),
        ],
      )) as [number, string, number];
      const [status, reason, value] = res;
      if (status === 1) {
        return new RedisLease(id, req.priority, reserved, performance.now() - started, value, (usage) => this.finish(id, reserved, usage));
      }
      if (status === -1) {
        const what = reason === "requests" ? "1 request" : `${reserved[reason as keyof MeterValues]} ${reason} tokens`;
        throw new RequestTooLargeError(`${this.model}: a ${req.priority} request of ${what} exceeds its limit of ${value} per window`);
      }
      try {
        await sleep(this.sleepFor(reason, value), undefined, { signal: req.signal });
      } catch (err) {
        req.signal?.throwIfAborted(); // the caller's reason, not timers' generic AbortError
        throw err;
      }
    }
  }

  /**
   * Pauses every replica's calls to this model after a 429/503: for retry-after when given, else
   * for a full-jitter exponential backoff on the fleet-wide consecutive count. Also halves the
   * adaptive concurrency. Returns the pause in ms.
   */
  async onRateLimited(info: { status: 429 | 503; retryAfterMs?: number }): Promise<number> {
    this.sawRateLimit = true;
    const retryAfter =
      info.retryAfterMs !== undefined && Number.isFinite(info.retryAfterMs) && info.retryAfterMs >= 0
        ? Math.ceil(Math.min(info.retryAfterMs, 600_000))
        : "";
    return Number(
      await rateLimitedScript.run(
        this.redis,
        [this.keys.state],
        [retryAfter, this.backoff.baseMs, this.backoff.maxMs, this.random(), Math.min(ADAPTIVE_INITIAL, this.adaptiveMax)],
      ),
    );
  }

  /** Resets the consecutive rate-limit count and grows the adaptive concurrency by 1/ac. */
  async onSuccess(): Promise<void> {
    const aimd = TOKEN_LIMITS.every((k) => this.limits[k] === undefined);
    if (!aimd && !this.sawRateLimit) return;
    this.sawRateLimit = false;
    await successScript.run(this.redis, [this.keys.state], [Math.min(ADAPTIVE_INITIAL, this.adaptiveMax), this.adaptiveMax]);
  }

  /**
   * Stores the limits the provider reports (fleet-wide); they apply where the configured limit
   * is unknown. Writes only when they changed since this instance's last write.
   */
  async learnFromHeaders(headers: HeadersLike): Promise<void> {
    const learned = parseRateLimitHeaders(headers);
    const fields: Record<string, number> = {};
    METERS.forEach((m, i) => {
      const value = learned[METER_LIMIT[m]];
      if (value !== undefined) fields[LEARNED_FIELDS[i]!] = value;
    });
    const key = JSON.stringify(fields);
    if (key === "{}" || key === this.lastLearned) return;
    await this.redis.hset(this.keys.state, fields);
    this.lastLearned = key;
  }

  /** Stops calls to this model fleet-wide (bad key, unknown model) until resume(). */
  async stop(reason: string): Promise<void> {
    await this.redis.hset(this.keys.state, "stopped", reason || "stopped");
  }

  async isStopped(): Promise<string | null> {
    return this.redis.hget(this.keys.state, "stopped");
  }

  async resume(): Promise<void> {
    await this.redis.hdel(this.keys.state, "stopped");
  }

  /** Redis server epoch ms the model is paused until, or 0. */
  async pausedUntil(): Promise<number> {
    return (await this.snapshot()).pausedUntil;
  }

  async snapshot(): Promise<LimiterSnapshot> {
    const { win, burst, tot, flight, state } = this.keys;
    const r = (await snapshotScript.run(this.redis, [win, burst, tot, flight, state], [this.windowMs, this.burstWindowMs])) as (
      | number
      | string
      | null
    )[];
    const num = (i: number) => Number(r[i] ?? 0);
    const str = (i: number) => (r[i] === null || r[i] === undefined ? null : String(r[i]));
    const used = Object.fromEntries(METERS.map((m, i) => [m, num(i)])) as MeterValues;
    const learned: LearnedLimits = {};
    METERS.forEach((m, i) => {
      const v = str(10 + i);
      if (v !== null) learned[METER_LIMIT[m]] = Number(v);
    });
    const limits: ModelLimits = { ...learned, ...definedOnly(this.limits) };
    const now = num(5);
    const pausedUntil = Number(str(7) ?? 0);
    const ac = str(8);
    return {
      model: this.model,
      used,
      inFlight: num(4),
      limits,
      learned,
      adaptiveConcurrency: ac === null ? Math.min(ADAPTIVE_INITIAL, this.adaptiveMax) : Number(ac),
      adaptiveEnforced: TOKEN_LIMITS.every((k) => limits[k] === undefined),
      consecutiveRateLimited: Number(str(9) ?? 0),
      pausedUntil: pausedUntil > now ? pausedUntil : 0,
      stopped: str(6),
    };
  }

  /** What a call will probably cost on each meter, before it is made. */
  private estimate(prompt: number, maxCompletion: number | undefined): MeterValues {
    let generated: number;
    if (this.completionCharge === "max_tokens" || this.completionMean === undefined) generated = maxCompletion ?? 0;
    // Mean plus two deviations: an under-estimate overshoots the provider's window until settle(),
    // while an over-estimate only holds back the few calls in flight.
    else generated = Math.min(maxCompletion ?? Number.POSITIVE_INFINITY, Math.ceil(this.completionMean + 2 * this.completionDev));
    // The whole prompt is reserved as uncached: what the provider has cached varies from 0 (a new
    // conversation, another replica) to nearly all of it (a later turn), and a guess too low would
    // overshoot its window until settle(). Over-reserving only holds back the calls in flight.
    return { requests: 1, prompt, uncachedPrompt: prompt, generated };
  }

  private async finish(id: string, reserved: MeterValues, usage: SettleUsage | undefined): Promise<void> {
    if (usage === undefined) {
      await this.redis.zrem(this.keys.flight, id);
      return;
    }
    const prompt = wholeTokens(usage.prompt_tokens, reserved.prompt);
    const cached = Math.min(prompt, wholeTokens(usage.cached_prompt_tokens ?? 0, 0));
    const completion = wholeTokens(usage.completion_tokens, reserved.generated);
    if (this.completionMean === undefined) this.completionMean = completion;
    else {
      this.completionDev += EWMA_ALPHA * (Math.abs(completion - this.completionMean) - this.completionDev);
      this.completionMean += EWMA_ALPHA * (completion - this.completionMean);
    }
    const actual: MeterValues = {
      requests: 1,
      prompt,
      uncachedPrompt: prompt - cached,
      generated: this.completionCharge === "max_tokens" ? Math.max(reserved.generated, completion) : completion,
    };
    const { win, burst, tot, flight } = this.keys;
    await settleScript.run(
      this.redis,
      [win, burst, tot, flight],
      [id, this.windowMs, this.burstWindowMs, ...METERS.map((m) => reserved[m]), ...METERS.map((m) => actual[m])],
    );
  }

  /** The script's hint, bounded, plus jitter so waiters on different replicas do not collide. */
  private sleepFor(reason: string, hintMs: number): number {
    let ms = reason === "stopped" ? MAX_SLEEP_MS : hintMs;
    if (reason === "inflight") ms = Math.min(ms, IN_FLIGHT_POLL_MS);
    ms = Math.min(Math.max(ms, 1), MAX_SLEEP_MS);
    return ms + this.random() * Math.min(25, ms * 0.2);
  }
}

function wholeTokens(n: number, fallback: number): number {
  return Number.isFinite(n) && n >= 0 ? Math.ceil(n) : fallback;
}

function fraction(name: string, v: number, min: number, max: number): number {
  if (!(v >= min && v <= max)) throw new RangeError(`${name} must be in [${min}, ${max}]`);
  return v;
}

function positiveInt(name: string, v: number): number {
  if (!(Number.isInteger(v) && v > 0)) throw new RangeError(`${name} must be a positive integer`);
  return v;
}

function definedOnly(limits: ModelLimits): ModelLimits {
  return Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
}
