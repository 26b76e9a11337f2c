export const STATUS_KEYS = ["200", "400", "401", "404", "429", "500", "503", "timeout"] as const;
export type StatusKey = (typeof STATUS_KEYS)[number];

export type TokenCounts = { prompt: number; cached: number; completion: number };

/** The usual statuses are always present (0 when unseen); any other status gets a key when it happens. */
export type StatusCounts = Record<StatusKey, number> & { [status: string]: number };

export type ModelStats = {
  requests: number;
  byStatus: StatusCounts;
  tokens: TokenCounts;
};

export type SimStats = ModelStats & {
  /** What the simulated provider billed (price option; cached input at its discount). */
  costUsd: number;
  /** Requests that got a 200 whose content is deliberately not a valid verdict. */
  malformed: number;
  /**
   * Requests left hanging on purpose ("timeout" faults), counted when the client gives up or the
   * simulator closes; also in `byStatus.timeout`. Clients that leave during normal latency count as 499.
   */
  timeouts: number;
  /** Requests being answered right now (waiting out latency or hanging). */
  inFlight: number;
  byModel: Record<string, ModelStats>;
};

function emptyModelStats(): ModelStats {
  const byStatus = Object.fromEntries(STATUS_KEYS.map((k) => [k, 0])) as StatusCounts;
  return { requests: 0, byStatus, tokens: { prompt: 0, cached: 0, completion: 0 } };
}

/** Counters for chat-completion requests only; admin calls are not counted. */
export class StatsRecorder {
  private stats: SimStats = StatsRecorder.empty();

  private static empty(): SimStats {
    return { ...emptyModelStats(), costUsd: 0, malformed: 0, timeouts: 0, inFlight: 0, byModel: {} };
  }

  started(): void {
    this.stats.requests++;
    this.stats.inFlight++;
  }

  /** Records how a request ended. `model` is known once the body parsed. */
  finished(status: number | "timeout", model: string | undefined, tokens?: TokenCounts, malformed = false, costUsd = 0): void {
    this.stats.costUsd += costUsd;
    const key = String(status);
    this.stats.inFlight--;
    this.stats.byStatus[key] = (this.stats.byStatus[key] ?? 0) + 1;
    if (status === "timeout") this.stats.timeouts++;
    if (malformed) this.stats.malformed++;
    if (tokens) addTokens(this.stats.tokens, tokens);
    if (model === undefined) return;
    const m = this.stats.byModel[model] ?? emptyModelStats();
    this.stats.byModel[model] = m;
    m.requests++;
    m.byStatus[key] = (m.byStatus[key] ?? 0) + 1;
    if (tokens) addTokens(m.tokens, tokens);
  }

  snapshot(): SimStats {
    return structuredClone(this.stats);
  }

  /** Zeroes the counters but keeps `inFlight`, since those requests are still running. */
  reset(): void {
    const inFlight = this.stats.inFlight;
    this.stats = StatsRecorder.empty();
    this.stats.inFlight = inFlight;
  }
}

function addTokens(into: TokenCounts, add: TokenCounts): void {
  into.prompt += add.prompt;
  into.cached += add.cached;
  into.completion += add.completion;
}
