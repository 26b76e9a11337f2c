import type { FaultPlan } from "./faults.ts";
import type { Hangup } from "./http.ts";
import type { SimConfig, SimHooks } from "./options.ts";
import type { PromptCache } from "./prompt-cache.ts";
import type { SlidingWindowLimiter } from "./rate-limiter.ts";
import type { StatsRecorder } from "./stats.ts";

/** Everything a request handler reads or updates; owned by one simulator, swapped wholesale on reset. */
export type SimContext = {
  config: SimConfig;
  now: () => number;
  random: () => number;
  limiter: SlidingWindowLimiter;
  cache: PromptCache;
  faults: FaultPlan;
  stats: StatsRecorder;
  onRequest: SimHooks["onRequest"];
  /** Aborts when the simulator closes. */
  closing: AbortSignal;
  /** The chat requests in flight, which close() abandons, releasing hanging and sleeping ones. */
  inFlight: Set<Hangup>;
};
