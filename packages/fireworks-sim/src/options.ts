import { z } from "zod";

/** `null` in a configure call (or admin JSON, which has no `undefined`) removes a setting. */
const unsettable = <T extends z.ZodType>(schema: T) => schema.nullish().transform((v) => v ?? undefined);

const rate = z.number().min(0).max(1).optional();

export const FaultRatesSchema = z
  .strictObject({ rate429: rate, rate500: rate, rate503: rate, rateTimeout: rate, rateMalformed: rate })
  .refine(
    (f) => (f.rate429 ?? 0) + (f.rate500 ?? 0) + (f.rate503 ?? 0) + (f.rateTimeout ?? 0) + (f.rateMalformed ?? 0) <= 1,
    { message: "fault rates must add up to at most 1" },
  );

export const SimOptionsSchema = z.strictObject({
  /** Model ids accepted; unset accepts any model. */
  models: unsettable(z.array(z.string().min(1))),
  /** When set, requests need `Authorization: Bearer <apiKey>`. */
  apiKey: unsettable(z.string().min(1)),
  latencyMs: z.number().min(0).default(0),
  latencyPerKTokensMs: z.number().min(0).default(0),
  /** Uniform random extra latency in [0, latencyJitterMs). */
  latencyJitterMs: z.number().min(0).default(0),
  /** Requests per minute per model; unset = unlimited. */
  rpm: unsettable(z.number().int().positive()),
  /** Tokens per minute per model (prompt + completion), an OpenAI-style single meter; unset = unlimited. */
  tpm: unsettable(z.number().int().positive()),
  /**
   * Fireworks' three token meters, per second as its headers report them (starting limits 60,000 /
   * 15,000 / 600), each metered over the sliding 60 s window (60 × this per window): total prompt
   * tokens, uncached prompt tokens (prompt minus cached), generated tokens. Unset = unlimited.
   */
  promptTokensPerSec: unsettable(z.number().positive()),
  uncachedPromptTokensPerSec: unsettable(z.number().positive()),
  generatedTokensPerSec: unsettable(z.number().positive()),
  /** Requests per minute across all models of the account (Fireworks: 6,000). Unset = unlimited. */
  accountRpm: unsettable(z.number().int().positive()),
  /**
   * Adaptive limits: after a window without traffic a model starts at this share of rpm and of each
   * token meter and reaches the full limits `rampMs` later, so a burst from cold gets 429s below the
   * ceiling. 1 (default) = fixed limits.
   */
  rampStartShare: z.number().gt(0).max(1).default(1),
  rampMs: z.number().int().positive().default(30_000),
  /** Simulated serving replicas, each with its own prompt cache. Requests carrying
   *  `x-multi-turn-session-id` always go to the same replica; others to a random one. */
  replicas: z.number().int().positive().default(1),
  /** USD per 1M tokens, for the simulator's own bill (stats.costUsd); cached input at its discount. */
  price: z
    .strictObject({ input: z.number().min(0), cachedInput: z.number().min(0), output: z.number().min(0) })
    .default({ input: 0.5, cachedInput: 0.25, output: 0.5 }),
  /**
   * What a request's completion costs against tpm: `max_tokens` reserves the requested maximum as OpenAI
   * does (the actual answer when a request sets none); `actual` charges the answer's real length.
   */
  tpmCompletion: z.enum(["max_tokens", "actual"]).default("actual"),
  /** Fireworks does not promise `retry-after`; off by default so clients must cope without it. */
  sendRetryAfter: z.boolean().default(false),
  /** Send `x-ratelimit-*` on successful responses too (429s always carry them). */
  sendRateLimitHeaders: z.boolean().default(true),
  /** How long a cached prompt prefix stays in a replica's cache after its last use. */
  promptCacheTtlMs: z.number().int().min(0).default(5 * 60_000),
  faults: FaultRatesSchema.prefault({}),
  /** Seed for fault draws and jitter, for reproducible runs; unset uses Math.random. */
  seed: unsettable(z.number().int()),
});

export type SimOptionsInput = z.input<typeof SimOptionsSchema>;
export type SimConfig = z.output<typeof SimOptionsSchema>;
export type FaultRates = z.output<typeof FaultRatesSchema>;

/** Hooks that cannot travel as JSON, so they live beside the validated options. */
export type SimHooks = {
  /** Clock for rate-limit windows and the prompt cache (tests move it instead of sleeping). */
  now?: () => number;
  /** Called once per answered (or abandoned) request, e.g. to log it. */
  onRequest?: (event: RequestEvent) => void;
};

export type SimulatorOptions = SimOptionsInput & SimHooks;

export type RequestEvent = {
  method: string;
  path: string;
  status: number | "timeout";
  model?: string;
  durationMs: number;
  /** Why the simulator misbehaved on purpose, if it did ("injected 503", "rate429", "[sim:malformed]"...). */
  fault?: string;
};

export const FAULT_KINDS = ["429", "500", "503", "timeout", "malformed", "404"] as const;

export const InjectedFaultSchema = z.strictObject({
  kind: z.enum(FAULT_KINDS),
  /** Sent as `retry-after` on a 429/503 even when `sendRetryAfter` is off. */
  retryAfterSeconds: z.number().int().min(0).optional(),
  /** For `malformed`: prose (not JSON), JSON with the wrong keys, or JSON cut off by max_tokens. */
  variant: z.enum(["prose", "wrong-keys", "truncated"]).optional(),
});

export type InjectedFault = z.output<typeof InjectedFaultSchema>;
export type MalformedVariant = NonNullable<InjectedFault["variant"]>;

/** `POST /_sim/inject` takes a bare list or `{ faults: [...] }`. */
export const InjectBodySchema = z.preprocess(
  // Wrapping the bare form (instead of a union) keeps error paths precise: "faults.0.kind: ...".
  (body) => (Array.isArray(body) ? { faults: body } : body),
  z.strictObject({ faults: z.array(InjectedFaultSchema) }).transform((b) => b.faults),
);

export function parseOptions(input: SimOptionsInput): SimConfig {
  return SimOptionsSchema.parse(input);
}

/** Overlays a partial update on the current config; `faults` merges per rate instead of being replaced. */
export function mergeOptions(current: SimConfig, update: SimOptionsInput): SimConfig {
  const faults = { ...current.faults, ...(update.faults ?? {}) };
  return SimOptionsSchema.parse({ ...current, ...update, faults });
}
