import type { Redis } from "ioredis";
import type { ModelLimits } from "./config.ts";
import type { LearnedLimits } from "./headers.ts";

export type Priority = "live" | "backfill";

/** The provider's meters, each an exact sliding window of its own. */
export const METERS = ["requests", "prompt", "uncachedPrompt", "generated"] as const;
export type Meter = (typeof METERS)[number];
export type MeterValues = Record<Meter, number>;

/** Which ModelLimits field limits each meter. */
export const METER_LIMIT = {
  requests: "rpm",
  prompt: "promptTpm",
  uncachedPrompt: "uncachedPromptTpm",
  generated: "generatedTpm",
} as const satisfies Record<Meter, keyof ModelLimits>;

export interface LimiterOptions {
  /** ioredis client for commands (not a subscriber connection). */
  redis: Redis;
  /** Key namespace, e.g. "tracesift:rl". */
  prefix: string;
  model: string;
  /** Configured limits; a missing field falls back to the limit learned from headers. */
  limits: ModelLimits;
  /** Share of every meter and of in-flight that backfill may not use. Default 0.2. */
  liveReserve?: number;
  /** Fraction of each limit actually targeted, a margin for clock skew and estimates. Default 0.97. */
  safety?: number;
  /** Pause after a 429/503 without retry-after. Default {baseMs: 1000, maxMs: 60_000}. */
  backoff?: { baseMs: number; maxMs: number };
  /** Length of the sliding window; every limit is per this window. Default 60_000; tests shorten it. */
  windowMs?: number;
  /** An in-flight slot whose holder never settles is reclaimed after this. Keep it above the
   *  provider call timeout. Default 300_000. */
  leaseTtlMs?: number;
  /** Any sixth of the window may hold at most burstFactor × its even share of each meter's
   *  target, so a cold fleet ramps up over several seconds instead of spending the minute at once
   *  (providers that adapt their limits answer such a burst with 429s). 0 = off. Default 1.5
   *  (full target reached after 4/6 of the window). */
  burstFactor?: number;
  /** What the generated meter charges: the completion's `usage` (Fireworks) or the `max_tokens`
   *  reserved (OpenAI-style). Default "usage". */
  completionCharge?: "usage" | "max_tokens";
  /** Source of randomness for jitter; tests inject a fixed one. */
  random?: () => number;
}

/** What the provider billed for one call (the judge client's TokenUsage fits). */
export interface SettleUsage {
  prompt_tokens: number;
  cached_prompt_tokens?: number;
  completion_tokens: number;
}

export interface Lease {
  readonly id: string;
  readonly priority: Priority;
  /** What was reserved on each meter at acquire time. */
  readonly reserved: MeterValues;
  /** Time spent in acquire(). */
  readonly waitedMs: number;
  /** Admission time, Redis server clock (epoch ms). */
  readonly admittedAt: number;
  /** Corrects every meter's reservation to the provider's `usage` and frees the in-flight slot.
   *  Call it for every answered call, malformed answers included: they are metered too. */
  settle(usage: SettleUsage): Promise<void>;
  /** Frees the in-flight slot and keeps the reservation as is (call failed before sending, or the
   *  provider refused it). */
  release(): Promise<void>;
}

export interface LimiterSnapshot {
  model: string;
  /** Use of each meter in the current window, after settle() corrections. */
  used: MeterValues;
  inFlight: number;
  /** Effective limits: configured, else learned. */
  limits: ModelLimits;
  learned: LearnedLimits;
  /** AIMD concurrency; it caps in-flight calls while no token meter's limit is known. */
  adaptiveConcurrency: number;
  adaptiveEnforced: boolean;
  consecutiveRateLimited: number;
  /** Redis server epoch ms the fleet is paused until, 0 when not paused. */
  pausedUntil: number;
  stopped: string | null;
}

/** Thrown when a request needs more than its priority may ever use in one window. */
export class RequestTooLargeError extends Error {
  override name = "RequestTooLargeError";
}
