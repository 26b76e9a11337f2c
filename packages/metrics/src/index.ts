/**
 * Every metric the fleet exports, named once: dashboards and alert rules in deploy/ query these
 * names, and a test checks each panel against a real Prometheus scraping them.
 * Labels stay low-cardinality: model, app, priority, outcome — never conversation ids.
 */
import { Counter, type CounterConfiguration, Gauge, Histogram, type LabelValues, type Registry } from "prom-client";

const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120];
/**
 * Waits and end-to-end times: steps of at most 1.34x from 1 s to 30 min, so a p99 read from
 * histogram_quantile is off by at most a third (with 60 → 300 s steps a true 70 s read 290 s;
 * bench/render-dashboard/p99-buckets.ts prints both).
 */
export const WAIT_BUCKETS = [
  0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5, 10, 12.5, 15, 20, 25, 30, 40, 50, 60, 75, 90, 120, 150, 180, 240,
  300, 360, 450, 600, 720, 900, 1200, 1500, 1800, 3600, 14400,
];

/**
 * A counter whose new series are first exported at 0 and carry their count from the next scrape
 * on. `rate()` and `increase()` cannot see what a series counted before Prometheus first saw it,
 * so without this every new (app, verdict, …) combination lost its first increments.
 * Until the registry has been scraped once there is nothing to lose, and counts show at once.
 */
export class ZeroFirstCounter<T extends string> extends Counter<T> {
  private scraped = false;
  /** Series Prometheus has seen (present in a scrape). */
  private readonly exported = new Set<string>();
  private readonly pending = new Map<string, { labels: LabelValues<T>; value: number }>();

  private readonly baseInc: (labels: LabelValues<T>, value?: number) => void;

  constructor(config: CounterConfiguration<T>) {
    super(config);
    // prom-client assigns `inc` per instance in its constructor, so it is wrapped, not overridden.
    const baseInc = this.inc.bind(this) as (labels?: LabelValues<T> | number, value?: number) => void;
    this.baseInc = baseInc;
    this.inc = ((labels?: LabelValues<T> | number, value?: number) => {
      if (labels === undefined || typeof labels === "number") baseInc(labels);
      else this.incSeries(labels, value);
    }) as Counter<T>["inc"];
  }

  private incSeries(labels: LabelValues<T>, value: number | undefined): void {
    const key = seriesKey(labels);
    const amount = value ?? 1;
    if (!this.scraped || this.exported.has(key)) {
      this.baseInc(labels, amount);
      return;
    }
    const waiting = this.pending.get(key);
    if (waiting) waiting.value += amount;
    else {
      this.pending.set(key, { labels, value: amount });
      this.baseInc(labels, 0);
    }
  }

  override async get() {
    const live = await super.get();
    // prom-client hands out its live value objects: copy them before applying pending counts.
    const snapshot = { ...live, values: live.values.map((v) => ({ ...v, labels: { ...v.labels } })) };
    this.scraped = true;
    for (const v of snapshot.values) this.exported.add(seriesKey(v.labels));
    for (const { labels, value } of this.pending.values()) this.baseInc(labels, value);
    this.pending.clear();
    return snapshot;
  }
}

function seriesKey(labels: object): string {
  return JSON.stringify(
    Object.entries(labels)
      .map(([k, v]) => [k, String(v)])
      .sort(([a], [b]) => (a! < b! ? -1 : 1)),
  );
}

export function ingestMetrics(registry: Registry) {
  return {
    events: new ZeroFirstCounter({
      name: "tracesift_ingest_events_total",
      help: "Trace events consumed, by input format and outcome (buffered into a conversation, skipped, dead_lettered).",
      labelNames: ["topic", "format", "outcome", "replay"] as const,
      registers: [registry],
    }),
    consumerLag: new Gauge({
      name: "tracesift_ingest_consumer_lag_messages",
      help: "Messages between the group's position and the partition's high watermark, as of the last batch.",
      labelNames: ["topic", "partition"] as const,
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: "tracesift_ingest_batch_size_messages",
      help: "Messages per processed chunk.",
      buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers: [registry],
    }),
    batchDuration: new Histogram({
      name: "tracesift_ingest_batch_duration_seconds",
      help: "Time to normalize, enqueue and publish one chunk.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    deadLetters: deadLetterCounter(registry),
    verdicts: verdictCounter(registry),
  };
}
export type IngestMetrics = ReturnType<typeof ingestMetrics>;

export function judgeMetrics(registry: Registry) {
  return {
    requests: new ZeroFirstCounter({
      name: "tracesift_judge_requests_total",
      help: "Model calls by outcome (ok, rate_limited, overloaded, error, invalid_output, fatal).",
      labelNames: ["model", "outcome"] as const,
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: "tracesift_judge_request_duration_seconds",
      help: "Model call latency.",
      labelNames: ["model"] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    tokens: new ZeroFirstCounter({
      name: "tracesift_judge_tokens_total",
      help: "Tokens billed, by kind (prompt, cached_prompt, completion). cached_prompt is a subset of prompt.",
      labelNames: ["model", "kind", "priority"] as const,
      registers: [registry],
    }),
    cost: new ZeroFirstCounter({
      name: "tracesift_judge_cost_usd_total",
      help: "USD spent on model calls (per-token pricing), including calls whose output was invalid.",
      labelNames: ["model", "app", "priority"] as const,
      registers: [registry],
    }),
    verdicts: verdictCounter(registry),
    endToEnd: new Histogram({
      name: "tracesift_end_to_end_seconds",
      help: "From the trace event's Kafka timestamp to its result being written.",
      labelNames: ["priority"] as const,
      buckets: WAIT_BUCKETS,
      registers: [registry],
    }),
    queueWait: new Histogram({
      name: "tracesift_queue_wait_seconds",
      help: "From a job being enqueued to a worker starting it.",
      labelNames: ["priority"] as const,
      buckets: WAIT_BUCKETS,
      registers: [registry],
    }),
    rateLimitWait: new Histogram({
      name: "tracesift_rate_limit_wait_seconds",
      help: "Time a job waited for the fleet-wide rate limiter before its call.",
      labelNames: ["model", "priority"] as const,
      buckets: WAIT_BUCKETS,
      registers: [registry],
    }),
    budgetPaused: new Gauge({
      name: "tracesift_judge_budget_paused",
      help: "1 while this priority's judging is paused because a cost budget is spent.",
      labelNames: ["priority"] as const,
      registers: [registry],
    }),
    modelStopped: new Gauge({
      name: "tracesift_judge_model_stopped",
      help: "1 while calls to the model are stopped after a fatal error (bad key, unknown model).",
      labelNames: ["model"] as const,
      registers: [registry],
    }),
    deadLetters: deadLetterCounter(registry),
  };
}
export type JudgeMetrics = ReturnType<typeof judgeMetrics>;

/** Collected by one process for the whole fleet, so replicas do not report the same queue N times. */
export function queueMetrics(registry: Registry) {
  return {
    jobs: new Gauge({
      name: "tracesift_queue_jobs",
      help: "Judge jobs by state (waiting, active, delayed, failed) and priority.",
      labelNames: ["state", "priority"] as const,
      registers: [registry],
    }),
    completedRate: new Gauge({
      name: "tracesift_queue_completed_per_second",
      help: "Jobs completed per second over the last minutes (BullMQ's own per-minute counts).",
      registers: [registry],
    }),
    drainSeconds: new Gauge({
      name: "tracesift_queue_drain_seconds",
      help: "Seconds to drain the backlog at the current completion rate (+Inf when nothing completes). For autoscaling.",
      registers: [registry],
    }),
  };
}
export type QueueMetrics = ReturnType<typeof queueMetrics>;

/**
 * Lag of the ingest consumer group read from the broker (committed offsets against high
 * watermarks) by the collector: right while ingest is down or its consumer has crashed, when
 * ingest's own lag gauge stops being updated.
 */
export function kafkaLagMetrics(registry: Registry) {
  const labelNames = ["group", "topic", "partition"] as const;
  return {
    lag: new Gauge({
      name: "tracesift_kafka_consumer_lag_messages",
      help: "Messages between the group's committed offset and the partition's high watermark, read from the broker.",
      labelNames,
      registers: [registry],
    }),
    committed: new Gauge({
      name: "tracesift_kafka_committed_offset",
      help: "The group's committed offset per partition (the log start offset while nothing was ever committed); flat with lag > 0 means nothing is consumed.",
      labelNames,
      registers: [registry],
    }),
    highWatermark: new Gauge({
      name: "tracesift_kafka_high_watermark",
      help: "Offset of the next message written to the partition.",
      labelNames,
      registers: [registry],
    }),
    up: new Gauge({
      name: "tracesift_kafka_lag_collect_up",
      help: "1 when the last read of offsets from the broker succeeded.",
      registers: [registry],
    }),
  };
}
export type KafkaLagMetrics = ReturnType<typeof kafkaLagMetrics>;

/** The fleet-wide spend the cost budget counts in Redis (UTC hour and day), against the configured budgets. */
export function budgetMetrics(registry: Registry) {
  return {
    spent: new Gauge({
      name: "tracesift_budget_spent_usd",
      help: "USD spent on model calls in the current UTC window (hour, day), fleet-wide.",
      labelNames: ["window"] as const,
      registers: [registry],
    }),
    limit: new Gauge({
      name: "tracesift_budget_limit_usd",
      help: "The configured budget per window (COST_BUDGET_HOURLY_USD, COST_BUDGET_DAILY_USD); absent when unset.",
      labelNames: ["window"] as const,
      registers: [registry],
    }),
  };
}
export type BudgetMetrics = ReturnType<typeof budgetMetrics>;

/** The fleet-wide rate limiter's state in Redis, read by the collector once for the fleet. */
export function rateLimiterMetrics(registry: Registry) {
  return {
    limit: new Gauge({
      name: "tracesift_rate_limit_limit",
      help: "Effective limit per minute (rpm, prompt_tpm, uncached_prompt_tpm, generated_tpm) or in flight (in_flight): configured, else learned from x-ratelimit headers; absent while unknown.",
      labelNames: ["model", "kind"] as const,
      registers: [registry],
    }),
    learned: new Gauge({
      name: "tracesift_rate_limit_learned",
      help: "Limits learned from the provider's x-ratelimit headers (rpm, prompt_tpm, uncached_prompt_tpm, generated_tpm).",
      labelNames: ["model", "kind"] as const,
      registers: [registry],
    }),
    used: new Gauge({
      name: "tracesift_rate_limit_used",
      help: "Admitted in the current sliding window per meter (rpm: requests, *_tpm: tokens) and calls in flight (in_flight).",
      labelNames: ["model", "kind"] as const,
      registers: [registry],
    }),
    concurrency: new Gauge({
      name: "tracesift_rate_limit_adaptive_concurrency",
      help: "AIMD concurrency cap; it binds while rpm or tpm is unknown.",
      labelNames: ["model"] as const,
      registers: [registry],
    }),
    pausedSeconds: new Gauge({
      name: "tracesift_rate_limit_paused_seconds",
      help: "Seconds the whole fleet stays paused for the model after a 429/503 (0 when not paused).",
      labelNames: ["model"] as const,
      registers: [registry],
    }),
  };
}
export type RateLimiterMetrics = ReturnType<typeof rateLimiterMetrics>;

/**
 * A replay's progress. Replays are short-lived, so they push these (with their ingest metrics) to
 * a Pushgateway instead of being scraped: the last values stay visible after a replay ends and no
 * scrape target disappears.
 */
export function replayMetrics(registry: Registry) {
  return {
    remaining: new Gauge({
      name: "tracesift_replay_messages_remaining",
      help: "Messages of the replay's range not read yet, per replay.",
      labelNames: ["replay"] as const,
      registers: [registry],
    }),
    total: new Gauge({
      name: "tracesift_replay_messages_total",
      help: "Messages in the replay's range.",
      labelNames: ["replay"] as const,
      registers: [registry],
    }),
    finished: new Gauge({
      name: "tracesift_replay_finished",
      help: "1 once the replay read its whole range.",
      labelNames: ["replay"] as const,
      registers: [registry],
    }),
    lastPush: new Gauge({
      name: "tracesift_replay_last_push_timestamp_seconds",
      help: "When the replay last pushed its metrics: a running replay that stops pushing is stuck or killed.",
      labelNames: ["replay"] as const,
      registers: [registry],
    }),
  };
}
export type ReplayMetrics = ReturnType<typeof replayMetrics>;

/**
 * Pushes a registry to a Pushgateway under job `tracesift-replay` and the replay's name, at an
 * interval and once more when stopped. Push errors are reported, never thrown: progress
 * reporting must not stop a replay.
 */
export function startReplayPush(options: {
  registry: Registry;
  url: string;
  replay: string;
  intervalMs?: number;
  onError?: (err: unknown) => void;
}): { push: () => Promise<void>; stop: () => Promise<void> } {
  const { registry, replay } = options;
  const target = `${options.url.replace(/\/+$/, "")}/metrics/job/tracesift-replay/replay/${encodeURIComponent(replay)}`;
  const lastPush = registry.getSingleMetric("tracesift_replay_last_push_timestamp_seconds") as Gauge<"replay"> | undefined;
  const push = async () => {
    try {
      lastPush?.set({ replay }, Date.now() / 1000);
      // PUT replaces the whole group, so a metric the replay stopped exporting does not linger.
      const res = await fetch(target, { method: "PUT", headers: { "content-type": registry.contentType }, body: await registry.metrics() });
      if (!res.ok) throw new Error(`pushgateway answered HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
    } catch (err) {
      options.onError?.(err);
    }
  };
  const timer = setInterval(() => void push(), options.intervalMs ?? 10_000);
  timer.unref();
  return {
    push,
    stop: async () => {
      clearInterval(timer);
      await push();
    },
  };
}

/** Ingest writes the skipped results, workers the judged ones: both count into the same series. */
function verdictCounter(registry: Registry) {
  const name = "tracesift_verdicts_total";
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<"app" | "verdict" | "priority">;
  return new ZeroFirstCounter({
    name,
    help: "Results written, by app and verdict (perceived_error, no_error, skipped).",
    labelNames: ["app", "verdict", "priority"] as const,
    registers: [registry],
  });
}

function deadLetterCounter(registry: Registry) {
  const name = "tracesift_dead_letters_total";
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<"stage" | "reason">;
  return new ZeroFirstCounter({
    name,
    help: "Events or jobs written to the dead-letter topic, by stage and reason.",
    labelNames: ["stage", "reason"] as const,
    registers: [registry],
  });
}

/**
 * Series exist from start-up at 0 for every label value known then: `rate()` and `increase()`
 * cannot see what a series counted before its first scrape, and alerts on "== 1" need the 0.
 * Series of values known only later (apps, formats) start at 0 through ZeroFirstCounter.
 */
export function initJudgeSeries(m: JudgeMetrics, model: string): void {
  for (const outcome of ["ok", "rate_limited", "overloaded", "error", "invalid_output", "fatal"]) m.requests.inc({ model, outcome }, 0);
  for (const priority of ["live", "backfill"]) {
    for (const kind of ["prompt", "cached_prompt", "completion"]) m.tokens.inc({ model, kind, priority }, 0);
    m.budgetPaused.set({ priority }, 0);
  }
  m.modelStopped.set({ model }, 0);
  // Histograms from 0 too: a first observation in a fresh series is otherwise invisible to rate().
  m.requestDuration.zero({ model });
  for (const priority of ["live", "backfill"]) {
    m.endToEnd.zero({ priority });
    m.queueWait.zero({ priority });
    m.rateLimitWait.zero({ model, priority });
  }
  for (const reason of ["invalid_model_output", "judge_failed", "invalid_shape", "request_too_large", "worker_lost", "publish_failed"]) m.deadLetters.inc({ stage: "judge", reason }, 0);
}

export function initIngestSeries(m: IngestMetrics, topics: string[], replay: string): void {
  for (const topic of topics) {
    for (const outcome of ["buffered", "enqueued", "skipped", "dead_lettered"]) m.events.inc({ topic, format: "unknown", outcome, replay }, 0);
  }
  for (const reason of ["invalid_json", "invalid_shape", "unknown_format", "oversized"]) m.deadLetters.inc({ stage: "ingest", reason }, 0);
}

/** Redis forgot the fleet's state (queue, dedupe memory, buffers): `tracesift recover` is the fix. */
export function redisStateLostCounter(registry: Registry): Counter<never> {
  const name = "tracesift_redis_state_lost_total";
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<never>;
  return new Counter({ name, help: "Times this process found that Redis had lost the fleet's state.", registers: [registry] });
}

/**
 * The judge's loop: which judge is live (value: when it became live, unix seconds — the dashboards'
 * promote/rollback annotations) and how a shadow candidate compares with it, side by side.
 */
export function judgeLoopMetrics(registry: Registry) {
  return {
    liveJudge: new Gauge({
      name: "tracesift_judge_live_info",
      help: "The judge this worker runs (1 series per model and prompt version); value: when it became live, unix seconds (0 when from the environment).",
      labelNames: ["model", "prompt_version"] as const,
      registers: [registry],
    }),
    shadowVerdicts: new Counter({
      name: "tracesift_shadow_verdicts_total",
      help: "Shadow comparisons by the live and the candidate verdict (perceived_error / no_error).",
      labelNames: ["candidate", "live_verdict", "candidate_verdict"] as const,
      registers: [registry],
    }),
    shadowCost: new Counter({
      name: "tracesift_shadow_cost_usd_total",
      help: "USD of the shadowed conversations, for the live judge and the candidate (side).",
      labelNames: ["candidate", "side"] as const,
      registers: [registry],
    }),
    shadowLatency: new Histogram({
      name: "tracesift_shadow_latency_seconds",
      help: "Model call latency of the shadowed conversations, for the live judge and the candidate (side).",
      labelNames: ["candidate", "side"] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    shadowFailures: new Counter({
      name: "tracesift_shadow_failures_total",
      help: "Shadow calls that failed (they never affect the live verdict).",
      labelNames: ["candidate"] as const,
      registers: [registry],
    }),
  };
}
export type JudgeLoopMetrics = ReturnType<typeof judgeLoopMetrics>;

/** `tracesift replay --batch`: requests sent through the provider's Batch API, their jobs and their cost at batch prices. */
export function batchMetrics(registry: Registry) {
  return {
    requests: new Counter({
      name: "tracesift_batch_requests_total",
      help: "Batch requests by outcome: verdict, invalid (answered, not a verdict), resubmitted, fallback_live, dead_lettered.",
      labelNames: ["model", "outcome"] as const,
      registers: [registry],
    }),
    jobs: new Gauge({
      name: "tracesift_batch_jobs",
      help: "Batch inference jobs of running backfills, by provider state.",
      labelNames: ["state"] as const,
      registers: [registry],
    }),
    cost: new Counter({
      name: "tracesift_batch_cost_usd_total",
      help: "USD paid for batch verdicts, at batch prices (cached prompt tokens at their discount).",
      labelNames: ["model"] as const,
      registers: [registry],
    }),
    savings: new Counter({
      name: "tracesift_batch_savings_usd_total",
      help: "USD the same tokens would have cost at the live price, minus what they cost in batch.",
      labelNames: ["model"] as const,
      registers: [registry],
    }),
  };
}
export type BatchMetrics = ReturnType<typeof batchMetrics>;

/**
 * Backpressure: 1 while a producer (ingest, replay) has stopped reading because the judge queue or
 * Redis memory is above its high-water mark, or while a judge worker holds its jobs before their
 * model calls because Redis is nearly full; and the Redis memory share the service last read.
 */
export function backpressureGauges(registry: Registry): { paused: Gauge<never>; redisMemoryRatio: Gauge<never> } {
  const get = (name: string, help: string): Gauge<never> =>
    (registry.getSingleMetric(name) as Gauge<never> | undefined) ?? new Gauge({ name, help, registers: [registry] });
  return {
    paused: get("tracesift_backpressure_paused", "1 while this service holds back: a producer (ingest, replay) stopped reading because the judge queue or Redis memory is above its high-water mark, or a judge worker starts no model call because Redis is nearly full."),
    redisMemoryRatio: get("tracesift_redis_memory_ratio", "Redis used_memory / maxmemory as last read by this service (0 when Redis has no maxmemory)."),
  };
}

/**
 * Live quality canaries (`tracesift canary`): rolling agreement of each judge version with the
 * canaries' labels. Labels: the judge model and prompt version only. A metric is absent (NaN is
 * not exported) while it is undefined, e.g. precision before any positive verdict.
 */
export function canaryMetrics(registry: Registry) {
  const labelNames = ["model", "prompt_version"] as const;
  const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames, registers: [registry] });
  return {
    fed: new Counter({ name: "tracesift_canary_fed_total", help: "Labelled canary conversations fed into the input topic.", registers: [registry] }),
    scored: new Counter({ name: "tracesift_canary_scored_total", help: "Canary verdicts scored against their labels.", labelNames, registers: [registry] }),
    window: gauge("tracesift_canary_window_verdicts", "Canary verdicts in the rolling window."),
    accuracy: gauge("tracesift_canary_accuracy", "Rolling accuracy of the judge on canaries."),
    precision: gauge("tracesift_canary_precision", "Rolling precision (perceived error = positive) on canaries."),
    recall: gauge("tracesift_canary_recall", "Rolling recall on canaries."),
    kappa: gauge("tracesift_canary_kappa", "Rolling Cohen's kappa between canary labels and the judge."),
    kappaFloor: new Gauge({ name: "tracesift_canary_kappa_floor", help: "The configured kappa floor (CANARY_KAPPA_FLOOR) alerts compare against.", registers: [registry] }),
  };
}
export type CanaryMetrics = ReturnType<typeof canaryMetrics>;
