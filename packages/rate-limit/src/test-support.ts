import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { Redis } from "ioredis";
import { FleetRateLimiter } from "./limiter.ts";
import type { LimiterOptions } from "./types.ts";

/** Shared helpers for the *.int.test.ts files: real Redis, one key prefix per test. */
export function connect(): Redis {
  return new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: 1 });
}

export function uniquePrefix(): string {
  return `test-rl-${randomUUID()}`;
}

export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  const keys: string[] = [];
  for await (const batch of redis.scanStream({ match: `${prefix}:*`, count: 500 })) keys.push(...(batch as string[]));
  if (keys.length > 0) await redis.del(...keys);
}

export type Fleet = (overrides?: Partial<LimiterOptions>) => FleetRateLimiter;

/** Limiter instances sharing one prefix and model, like replicas on different machines. */
export function fleet(redis: Redis, prefix: string, base: Omit<LimiterOptions, "redis" | "prefix">): Fleet {
  return (overrides = {}) => new FleetRateLimiter({ redis, prefix, ...base, ...overrides });
}

/** One call's charge on every meter, as the provider would bill it. */
export interface Charge {
  prompt: number;
  cached: number;
  completion: number;
}

export interface Admission extends Charge {
  at: number;
}

/**
 * Runs `loops` greedy callers per instance for `durationMs`: acquire (the prompt known, the
 * completion bounded by `maxCompletion`), settle at once with the call's charge, repeat. Returns
 * every admission with its Redis admission time.
 */
export async function saturate(
  limiters: FleetRateLimiter[],
  opts: { loops: number; durationMs: number; charge: () => Charge; maxCompletion?: number },
): Promise<Admission[]> {
  const admitted: Admission[] = [];
  const stop = AbortSignal.timeout(opts.durationMs);
  setMaxListeners(limiters.length * opts.loops + 10, stop); // every waiting caller listens on it
  const loop = async (limiter: FleetRateLimiter) => {
    while (!stop.aborted) {
      const charge = opts.charge();
      let lease: Awaited<ReturnType<FleetRateLimiter["acquire"]>>;
      try {
        lease = await limiter.acquire({
          tokens: charge.prompt,
          completionTokens: opts.maxCompletion ?? charge.completion,
          priority: "live",
          signal: stop,
        });
      } catch (err) {
        if (stop.aborted) return;
        throw err;
      }
      admitted.push({ at: lease.admittedAt, ...charge });
      await lease.settle({ prompt_tokens: charge.prompt, cached_prompt_tokens: charge.cached, completion_tokens: charge.completion });
    }
  };
  await Promise.all(limiters.flatMap((l) => Array.from({ length: opts.loops }, () => loop(l))));
  return admitted.sort((a, b) => a.at - b.at);
}

/** Settles a lease as a call of `prompt` tokens (none cached) and no completion. */
export const promptOnly = (prompt: number) => ({ prompt_tokens: prompt, cached_prompt_tokens: 0, completion_tokens: 0 });

/** Largest sum of `pick` over any window [t - windowMs, t] (the limiter's own, stricter window). */
export function maxInAnyWindow(admitted: Admission[], windowMs: number, pick: (a: Admission) => number): number {
  let best = 0;
  let sum = 0;
  let start = 0;
  for (const a of admitted) {
    sum += pick(a);
    while (admitted[start]!.at < a.at - windowMs) sum -= pick(admitted[start++]!);
    best = Math.max(best, sum);
  }
  return best;
}
