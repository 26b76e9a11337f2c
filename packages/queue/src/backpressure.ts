/**
 * Backpressure: producers (ingest, replay) stop reading while the judge queue's backlog or Redis
 * memory is above a high-water mark and start again below a low-water mark, so a backfill fills
 * Redis up to a bound instead of up to `maxmemory` (where every write of the fleet fails).
 */
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { z } from "zod";

const share = z.coerce.number().gt(0).max(1);

export const BackpressureEnv = z
  .object({
    /** Pause at this share of Redis `maxmemory` (ignored when Redis has no `maxmemory`). */
    BACKPRESSURE_MEMORY_HIGH: share.default(0.75),
    /** Resume below this share of `maxmemory`. */
    BACKPRESSURE_MEMORY_LOW: share.default(0.6),
    /** Pause when this many jobs wait (waiting, prioritized, delayed); 0 turns the check off. */
    BACKPRESSURE_QUEUE_HIGH: z.coerce.number().int().nonnegative().default(500_000),
    /** Resume below this many waiting jobs. */
    BACKPRESSURE_QUEUE_LOW: z.coerce.number().int().nonnegative().default(400_000),
    /** How often the marks are checked. */
    BACKPRESSURE_CHECK_MS: z.coerce.number().int().positive().default(1_000),
  })
  .refine((e) => e.BACKPRESSURE_MEMORY_LOW < e.BACKPRESSURE_MEMORY_HIGH, { message: "BACKPRESSURE_MEMORY_LOW must be below BACKPRESSURE_MEMORY_HIGH", path: ["BACKPRESSURE_MEMORY_LOW"] })
  .refine((e) => e.BACKPRESSURE_QUEUE_HIGH === 0 || e.BACKPRESSURE_QUEUE_LOW < e.BACKPRESSURE_QUEUE_HIGH, {
    message: "BACKPRESSURE_QUEUE_LOW must be below BACKPRESSURE_QUEUE_HIGH",
    path: ["BACKPRESSURE_QUEUE_LOW"],
  });
export type BackpressureEnv = z.infer<typeof BackpressureEnv>;

export type Marks = { memoryHigh: number; memoryLow: number; queueHigh: number; queueLow: number };

export function marksFromEnv(env: BackpressureEnv): Marks {
  return { memoryHigh: env.BACKPRESSURE_MEMORY_HIGH, memoryLow: env.BACKPRESSURE_MEMORY_LOW, queueHigh: env.BACKPRESSURE_QUEUE_HIGH, queueLow: env.BACKPRESSURE_QUEUE_LOW };
}

export type Pressure = {
  /** `used_memory / maxmemory`, or null when Redis has no `maxmemory`. */
  memoryRatio: number | null;
  usedMemory: number;
  /** Jobs not yet started: waiting, prioritized and delayed. */
  backlog: number;
};

export type BackpressureState = Pressure & { paused: boolean; reason: string | null };

/** The hysteresis itself, apart from Redis: pure, so it is tested on numbers. */
export function nextState(paused: boolean, p: Pressure, m: Marks): { paused: boolean; reason: string | null } {
  const mem = p.memoryRatio;
  const queueOn = m.queueHigh > 0;
  if (mem !== null && mem >= m.memoryHigh) return { paused: true, reason: `Redis memory at ${pct(mem)} of maxmemory (pause at ${pct(m.memoryHigh)})` };
  if (queueOn && p.backlog >= m.queueHigh) return { paused: true, reason: `${p.backlog} jobs waiting (pause at ${m.queueHigh})` };
  if (!paused) return { paused: false, reason: null };
  if (mem !== null && mem >= m.memoryLow) return { paused: true, reason: `Redis memory at ${pct(mem)} of maxmemory (resume below ${pct(m.memoryLow)})` };
  if (queueOn && p.backlog >= m.queueLow) return { paused: true, reason: `${p.backlog} jobs waiting (resume below ${m.queueLow})` };
  return { paused: false, reason: null };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** Reads Redis memory and the queue's backlog. Read-only commands: they work on a full Redis. */
export async function readPressure(redis: Redis, queue: Queue): Promise<Pressure> {
  const [info, counts] = await Promise.all([redis.info("memory"), queue.getJobCounts("wait", "prioritized", "delayed")]);
  const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
  const max = Number(/^maxmemory:(\d+)/m.exec(info)?.[1] ?? 0);
  const backlog = (counts.wait ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0);
  return { memoryRatio: max > 0 ? used / max : null, usedMemory: used, backlog };
}

export type BackpressureWatch = {
  /** The last state read (not paused until the first read). */
  state(): BackpressureState;
  /** Resolves at once when not paused, else when the watcher resumes (or `signal` aborts). */
  whenClear(signal?: AbortSignal): Promise<void>;
  /** Reads Redis now instead of at the next tick (e.g. after a write was refused for memory). */
  check(): Promise<BackpressureState>;
  stop(): void;
};

/**
 * Checks the marks every `intervalMs` and calls `onChange` on every pause and resume. Ingest
 * pauses its Kafka consumer with it; replay can call `whenClear()` before each chunk it reads.
 * A failed read keeps the last state: an unreachable Redis is the readiness probe's business.
 */
export function watchBackpressure(options: {
  redis: Redis;
  queue: Queue;
  marks: Marks;
  intervalMs: number;
  onChange?: (state: BackpressureState) => void;
  onError?: (err: unknown) => void;
}): BackpressureWatch {
  let state: BackpressureState = { paused: false, reason: null, memoryRatio: null, usedMemory: 0, backlog: 0 };
  let waiters: (() => void)[] = [];
  let inFlight: Promise<BackpressureState> | null = null;
  const check = (): Promise<BackpressureState> => {
    inFlight ??= readPressure(options.redis, options.queue)
      .then((p) => {
        const next = { ...p, ...nextState(state.paused, p, options.marks) };
        const changed = next.paused !== state.paused;
        state = next;
        if (changed) options.onChange?.(state);
        if (!state.paused) {
          const woken = waiters;
          waiters = [];
          for (const w of woken) w();
        }
        return state;
      })
      .catch((err: unknown) => {
        options.onError?.(err);
        return state;
      })
      .finally(() => {
        inFlight = null;
      });
    return inFlight;
  };
  void check();
  const timer = setInterval(() => void check(), options.intervalMs);
  timer.unref();
  return {
    state: () => state,
    check,
    whenClear(signal?: AbortSignal): Promise<void> {
      if (!state.paused || signal?.aborted) return Promise.resolve();
      return new Promise<void>((resolve) => {
        waiters.push(resolve);
        signal?.addEventListener("abort", () => resolve(), { once: true });
      });
    },
    stop(): void {
      clearInterval(timer);
      const woken = waiters;
      waiters = [];
      for (const w of woken) w();
    },
  };
}

/** Redis refused a write because it is at `maxmemory` with `noeviction`. */
export function isRedisFullError(err: unknown): boolean {
  const text = err instanceof Error ? err.message : String(err);
  return /\bOOM\b|used memory > 'maxmemory'/i.test(text);
}
