/**
 * Which judge the fleet runs, in Redis, so promote and rollback switch every worker without a
 * restart: the live judge (model + prompt version), an optional shadow candidate with its sample
 * rate, the stack of judges a rollback returns to, the history of every switch (who, when, from,
 * to, forced), and the candidate's shadow agreement counters that the promotion gate reads.
 */
import { createHash } from "node:crypto";
import { JudgeIdentity } from "@tracesift/schemas";
import type { Redis } from "ioredis";
import { z } from "zod";

export { JudgeIdentity };

export const Candidate = JudgeIdentity.extend({
  /** Share of live conversations the candidate also judges, chosen by a hash of the conversation id. */
  sample_rate: z.number().min(0).max(1),
  set_at: z.string(),
  set_by: z.string(),
});
export type Candidate = z.infer<typeof Candidate>;

export const RegistryState = z.object({
  /** Null until the first promotion: workers then run the judge their environment names. */
  live: JudgeIdentity.nullable(),
  candidate: Candidate.nullable(),
  /** Judges that were live before, newest last: what rollback returns to. */
  previous: z.array(JudgeIdentity),
  /** When `live` became live, for the dashboards' annotations. */
  live_since: z.string().nullable(),
});
export type RegistryState = z.infer<typeof RegistryState>;

export const SwitchRecord = z.object({
  action: z.enum(["promote", "rollback"]),
  from: JudgeIdentity,
  to: JudgeIdentity,
  by: z.string(),
  at: z.string(),
  forced: z.boolean(),
  /** Why the gate passed or, when forced, what it refused. */
  gate: z.array(z.string()),
});
export type SwitchRecord = z.infer<typeof SwitchRecord>;

export const Disagreement = z.object({
  conversation_id: z.string(),
  live: z.object({ perceived_error: z.boolean(), reason: z.string() }),
  candidate: z.object({ perceived_error: z.boolean(), reason: z.string() }),
  at: z.string(),
});
export type Disagreement = z.infer<typeof Disagreement>;

/** Live verdict as reference, candidate as prediction; cost and latency summed for both sides. */
export type ShadowStats = {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
  live_cost_usd: number;
  candidate_cost_usd: number;
  live_latency_ms: number;
  candidate_latency_ms: number;
};

const EMPTY: RegistryState = { live: null, candidate: null, previous: [], live_since: null };
const KEPT_DISAGREEMENTS = 200;

export class RegistryError extends Error {
  override name = "RegistryError";
}

export const judgeLabel = (j: JudgeIdentity): string => `${j.model}@${j.prompt_version}`;
export const sameJudge = (a: JudgeIdentity | null, b: JudgeIdentity | null): boolean =>
  a !== null && b !== null && a.model === b.model && a.prompt_version === b.prompt_version;

/**
 * Deterministic sample: the first 32 bits of sha256("shadow" NUL id) against the rate, so every
 * replica and every redelivery decides the same for a conversation.
 */
export function inShadowSample(conversationId: string, rate: number): boolean {
  if (rate <= 0) return false;
  if (rate >= 1) return true;
  return createHash("sha256").update(`shadow\u0000${conversationId}`).digest().readUInt32BE(0) / 2 ** 32 < rate;
}

export class JudgeRegistry {
  private readonly stateKey: string;
  private readonly historyKey: string;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.stateKey = `${prefix}:judges:state`;
    this.historyKey = `${prefix}:judges:history`;
  }

  private shadowKey(c: JudgeIdentity): string {
    return `${this.prefix}:judges:shadow:${judgeLabel(c)}`;
  }

  private disagreementsKey(c: JudgeIdentity): string {
    return `${this.prefix}:judges:shadow-disagreements:${judgeLabel(c)}`;
  }

  async state(): Promise<RegistryState> {
    const raw = await this.redis.get(this.stateKey);
    if (raw === null) return EMPTY;
    const parsed = RegistryState.safeParse(JSON.parse(raw));
    if (!parsed.success) throw new RegistryError(`${this.stateKey} holds an unreadable registry: ${parsed.error.issues[0]?.message ?? ""}`);
    return parsed.data;
  }

  async history(): Promise<SwitchRecord[]> {
    const raw = await this.redis.lrange(this.historyKey, 0, -1);
    return raw.map((r) => SwitchRecord.parse(JSON.parse(r)));
  }

  /**
   * Read-modify-write under WATCH: two operators promoting at once cannot both win, and a
   * switch and its history record land together or not at all.
   */
  private async update(change: (s: RegistryState) => { next: RegistryState; record?: SwitchRecord }): Promise<{ next: RegistryState; record?: SwitchRecord }> {
    for (let attempt = 0; attempt < 10; attempt++) {
      await this.redis.watch(this.stateKey);
      let outcome: { next: RegistryState; record?: SwitchRecord };
      try {
        outcome = change(await this.state());
      } catch (err) {
        await this.redis.unwatch();
        throw err;
      }
      const tx = this.redis.multi().set(this.stateKey, JSON.stringify(outcome.next));
      if (outcome.record) tx.rpush(this.historyKey, JSON.stringify(outcome.record));
      if ((await tx.exec()) !== null) return outcome;
    }
    throw new RegistryError("the registry kept changing under this update; try again");
  }

  /** Starts (or replaces) shadow judging; the candidate's counters start from zero. */
  async setCandidate(judge: JudgeIdentity, sampleRate: number, by: string): Promise<Candidate> {
    const candidate = Candidate.parse({ ...judge, sample_rate: sampleRate, set_at: new Date().toISOString(), set_by: by });
    await this.redis.del(this.shadowKey(candidate), this.disagreementsKey(candidate));
    await this.update((s) => ({ next: { ...s, candidate } }));
    return candidate;
  }

  async clearCandidate(): Promise<void> {
    await this.update((s) => ({ next: { ...s, candidate: null } }));
  }

  /** The candidate becomes live; the judge it replaces goes on the rollback stack. */
  async promote(options: { fallback: JudgeIdentity; by: string; forced: boolean; gate: string[] }): Promise<SwitchRecord> {
    const { record } = await this.update((s) => {
      if (!s.candidate) throw new RegistryError("no candidate to promote: set one with 'tracesift judges candidate'");
      const from = s.live ?? options.fallback;
      const to = { model: s.candidate.model, prompt_version: s.candidate.prompt_version };
      if (sameJudge(from, to)) throw new RegistryError(`${judgeLabel(to)} is already live`);
      const at = new Date().toISOString();
      return {
        next: { live: to, candidate: null, previous: [...s.previous, from], live_since: at },
        record: { action: "promote", from, to, by: options.by, at, forced: options.forced, gate: options.gate },
      };
    });
    return record!;
  }

  /** Back to the judge that was live before the last promotion. */
  async rollback(options: { fallback: JudgeIdentity; by: string }): Promise<SwitchRecord> {
    const { record } = await this.update((s) => {
      const to = s.previous.at(-1);
      if (!to) throw new RegistryError("nothing to roll back to: no promotion is recorded");
      const from = s.live ?? options.fallback;
      const at = new Date().toISOString();
      return {
        next: { live: to, candidate: s.candidate, previous: s.previous.slice(0, -1), live_since: at },
        record: { action: "rollback", from, to, by: options.by, at, forced: false, gate: [] },
      };
    });
    return record!;
  }

  /** One shadow comparison, from a worker. */
  async recordShadow(
    candidate: JudgeIdentity,
    c: { conversationId: string; live: Disagreement["live"]; candidate: Disagreement["candidate"]; liveCostUsd: number; candidateCostUsd: number; liveLatencyMs: number; candidateLatencyMs: number },
  ): Promise<void> {
    const cell = c.candidate.perceived_error ? (c.live.perceived_error ? "tp" : "fp") : c.live.perceived_error ? "fn" : "tn";
    const key = this.shadowKey(candidate);
    const tx = this.redis
      .multi()
      .hincrby(key, cell, 1)
      .hincrbyfloat(key, "live_cost_usd", c.liveCostUsd)
      .hincrbyfloat(key, "candidate_cost_usd", c.candidateCostUsd)
      .hincrbyfloat(key, "live_latency_ms", c.liveLatencyMs)
      .hincrbyfloat(key, "candidate_latency_ms", c.candidateLatencyMs);
    if (c.live.perceived_error !== c.candidate.perceived_error) {
      const d: Disagreement = { conversation_id: c.conversationId, live: c.live, candidate: c.candidate, at: new Date().toISOString() };
      tx.lpush(this.disagreementsKey(candidate), JSON.stringify(d)).ltrim(this.disagreementsKey(candidate), 0, KEPT_DISAGREEMENTS - 1);
    }
    await tx.exec();
  }

  async shadowStats(candidate: JudgeIdentity): Promise<ShadowStats> {
    const h = await this.redis.hgetall(this.shadowKey(candidate));
    const n = (k: string) => Number(h[k] ?? 0);
    return {
      tp: n("tp"),
      fp: n("fp"),
      fn: n("fn"),
      tn: n("tn"),
      live_cost_usd: n("live_cost_usd"),
      candidate_cost_usd: n("candidate_cost_usd"),
      live_latency_ms: n("live_latency_ms"),
      candidate_latency_ms: n("candidate_latency_ms"),
    };
  }

  /** The newest disagreements first (at most 200 are kept). */
  async disagreements(candidate: JudgeIdentity): Promise<Disagreement[]> {
    const raw = await this.redis.lrange(this.disagreementsKey(candidate), 0, -1);
    return raw.map((r) => Disagreement.parse(JSON.parse(r)));
  }
}

/** Agreement of a candidate with the live judge, from its shadow counters. */
export function shadowAgreement(s: ShadowStats) {
  const n = s.tp + s.fp + s.fn + s.tn;
  const ratio = (a: number, b: number) => (b === 0 ? null : a / b);
  const po = ratio(s.tp + s.tn, n);
  const pe = n === 0 ? null : ((s.tp + s.fp) * (s.tp + s.fn) + (s.fn + s.tn) * (s.fp + s.tn)) / (n * n);
  const kappa = po === null || pe === null || pe === 1 ? null : (po - pe) / (1 - pe);
  const livePositive = ratio(s.tp + s.fn, n);
  const candidatePositive = ratio(s.tp + s.fp, n);
  return {
    n,
    agreement: po,
    kappa,
    live_positive_rate: livePositive,
    candidate_positive_rate: candidatePositive,
    positive_rate_diff: livePositive === null || candidatePositive === null ? null : candidatePositive - livePositive,
    live_cost_per_1k_usd: n === 0 ? null : (s.live_cost_usd / n) * 1000,
    candidate_cost_per_1k_usd: n === 0 ? null : (s.candidate_cost_usd / n) * 1000,
    live_mean_latency_ms: ratio(s.live_latency_ms, n),
    candidate_mean_latency_ms: ratio(s.candidate_latency_ms, n),
  };
}
export type ShadowAgreement = ReturnType<typeof shadowAgreement>;

/**
 * The registry as a worker reads it: at most one Redis read per `ttlMs`, so a switch reaches
 * every replica within that time and costs nothing per job. A failed read keeps the last value
 * (a Redis blip must not switch judges), and the first read failing falls back to the default.
 */
export class CachedRegistry {
  private cached: { at: number; state: RegistryState } | undefined;
  private pending: Promise<RegistryState> | undefined;

  constructor(
    private readonly registry: JudgeRegistry,
    private readonly ttlMs = 1_000,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  get(): Promise<RegistryState> {
    if (this.cached && Date.now() - this.cached.at < this.ttlMs) return Promise.resolve(this.cached.state);
    this.pending ??= this.registry
      .state()
      .then((state) => {
        this.cached = { at: Date.now(), state };
        return state;
      })
      .catch((err: unknown) => {
        this.onError(err);
        const state = this.cached?.state ?? EMPTY;
        this.cached = { at: Date.now(), state };
        return state;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }
}

/** A record on the shadow topic: never on the users' output topic. */
export const ShadowResult = z.object({
  schema_version: z.literal(1),
  /** The live result it shadows: consumers join and dedupe on it. */
  live_result_id: z.string(),
  conversation_id: z.string(),
  live: z.object({ judge: JudgeIdentity, verdict: Disagreement.shape.live, cost_usd: z.number(), latency_ms: z.number() }),
  candidate: z.object({ judge: JudgeIdentity, verdict: Disagreement.shape.candidate, cost_usd: z.number(), latency_ms: z.number() }),
  agree: z.boolean(),
  judged_at: z.string(),
});
export type ShadowResult = z.infer<typeof ShadowResult>;
