/**
 * Every metric the fleet exports, named once: dashboards and alert rules in deploy/ query these
 * names, and a test checks each panel against a real Prometheus scraping them.
 * Labels stay low-cardinality: model, app, priority, outcome — never conversation ids.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120];
const WAIT_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 3600, 14400];

export function ingestMetrics(registry: Registry) {
  return {
    events: new Counter({
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
    requests: new Counter({
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
    tokens: new Counter({
      name: "tracesift_judge_tokens_total",
      help: "Tokens billed, by kind (prompt, cached_prompt, completion). cached_prompt is a subset of prompt.",
      labelNames: ["model", "kind", "priority"] as const,
      registers: [registry],
    }),
    cost: new Counter({
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

/** Ingest writes the skipped results, workers the judged ones: both count into the same series. */
function verdictCounter(registry: Registry) {
  const name = "tracesift_verdicts_total";
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<"app" | "verdict" | "priority">;
  return new Counter({
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
  return new Counter({
    name,
    help: "Events or jobs written to the dead-letter topic, by stage and reason.",
    labelNames: ["stage", "reason"] as const,
    registers: [registry],
  });
}

/**
 * Series exist from start-up at 0 for every label value known then: `rate()` and `increase()`
 * cannot see what a series counted before its first scrape, and alerts on "== 1" need the 0.
 */
export function initJudgeSeries(m: JudgeMetrics, model: string): void {
  for (const outcome of ["ok", "rate_limited", "overloaded", "error", "invalid_output", "fatal"]) m.requests.inc({ model, outcome }, 0);
  for (const priority of ["live", "backfill"]) {
    for (const kind of ["prompt", "cached_prompt", "completion"]) m.tokens.inc({ model, kind, priority }, 0);
    m.budgetPaused.set({ priority }, 0);
  }
  m.modelStopped.set({ model }, 0);
  for (const reason of ["invalid_model_output", "judge_failed", "invalid_shape", "request_too_large", "worker_lost", "publish_failed"]) m.deadLetters.inc({ stage: "judge", reason }, 0);
}

export function initIngestSeries(m: IngestMetrics, topics: string[], replay: string): void {
  for (const topic of topics) {
    for (const outcome of ["buffered", "skipped", "dead_lettered"]) m.events.inc({ topic, format: "unknown", outcome, replay }, 0);
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
