import type { Redis } from "ioredis";
import type { ModelLimits } from "./config.ts";
import type { LearnedLimits } from "./headers.ts";

export type Priority = "live" | "backfill";

export interface LimiterOptions {
  /** ioredis client for commands (not a subscriber connection). */
  redis: Redis;
  /** Key namespace, e.g. "tracesift:rl". */
  prefix: string;
  model: string;
  /** Configured limits; a missing field falls back to the limit learned from headers. */
  limits: ModelLimits;
  /** Share of rpm/tpm/in-flight that backfill may not use. Default 0.2. */
  liveReserve?: number;
  /** Fraction of each limit actually targeted, a margin for clock skew and estimates. Default 0.97. */
  safety?: number;
  /** Pause after a 429/503 without retry-after. Default {baseMs: 1000, maxMs: 60_000}. */
  backoff?: { baseMs: number; maxMs: number };
  /** Length of the sliding window; rpm/tpm are per this window. Default 60_000; tests shorten it. */
  windowMs?: number;
  /** An in-flight slot whose holder never settles is reclaimed after this. Keep it above the
   *  provider call timeout. Default 300_000. */
  leaseTtlMs?: number;
  /** Any sixth of the window may hold at most burstFactor × its even share of the target, so a
   *  cold fleet ramps up over several seconds instead of spending the minute at once. 0 = off.
   *  Default 1.5 (full target reached after 4/6 of the window). */
  burstFactor?: number;
  /** Source of randomness for jitter; tests inject a fixed one. */
  random?: () => number;
}

export interface Lease {
  readonly id: string;
  readonly priority: Priority;
  /** Tokens reserved at acquire time. */
  readonly tokens: number;
  /** Time spent in acquire(). */
  readonly waitedMs: number;
  /** Admission time, Redis server clock (epoch ms). */
  readonly admittedAt: number;
  /** Corrects the reservation to the provider's `usage` and frees the in-flight slot. */
  settle(usage: { actualTokens: number }): Promise<void>;
  /** Frees the in-flight slot and keeps the reservation as is (call failed before sending). */
  release(): Promise<void>;
}

export interface LimiterSnapshot {
  model: string;
  /** Requests admitted in the current window. */
  usedRpm: number;
  /** Tokens admitted in the current window, after settle() corrections. */
  usedTpm: number;
  inFlight: number;
  /** Effective limits: configured, else learned. */
  limits: ModelLimits;
  learned: LearnedLimits;
  /** AIMD concurrency; it caps in-flight calls while rpm or tpm is unknown. */
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
