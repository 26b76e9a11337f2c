/**
 * The live judge, read from the judge registry (Redis) instead of fixed at start-up, so
 * `tracesift promote` / `rollback` switch every replica within `JUDGE_REGISTRY_TTL_MS` without a
 * restart. A job runs start to finish with the judge it started with, and its result carries that
 * judge, so nothing in flight is lost or mislabelled by a switch. Optionally, a shadow candidate
 * also judges a deterministic sample of the live conversations; its verdicts go to SHADOW_TOPIC,
 * never to the output topic, and never change or delay the live result (it is published first).
 */
import { buildChatMessages, callCostUsd, type JudgeClient, PROMPT_VERSION, priceFor, type PricingTable } from "@tracesift/judge";
import { CachedRegistry, inShadowSample, type JudgeIdentity, type JudgeRegistry, judgeLabel, type RegistryState, sameJudge, type ShadowResult } from "@tracesift/judge-registry";
import { BatchingProducer, type OutgoingRecord } from "@tracesift/kafka";
import type { JudgeLoopMetrics } from "@tracesift/metrics";
import { decodeJudgeJob } from "@tracesift/queue";
import type { Logger } from "@tracesift/runtime";
import { JudgedResult, type JudgeJob, PROVENANCE_HEADER } from "@tracesift/schemas";
import type { Job } from "bullmq";
import { z } from "zod";

export const LiveJudgeEnv = z.object({
  /** How stale a replica's view of the registry may be: the longest a switch takes to reach it. */
  JUDGE_REGISTRY_TTL_MS: z.coerce.number().int().positive().default(1_000),
  /** Where shadow verdicts go; the users' output topic never sees them. */
  SHADOW_TOPIC: z.string().default("traces.judged.shadow"),
});
export type LiveJudgeEnv = z.infer<typeof LiveJudgeEnv>;

type Processor = (job: Job, token?: string) => Promise<void>;

export type LiveJudgeDeps = {
  registry: JudgeRegistry;
  /** What the fleet runs until the first promotion: JUDGE_MODEL with this build's prompt. */
  fallback: JudgeIdentity;
  clientFor: (model: string) => JudgeClient;
  /** The unchanged single-judge processor, built for one client and a producer. */
  processorFor: (client: JudgeClient, producer: BatchingProducer) => Processor;
  producer: BatchingProducer;
  outputTopic: string;
  shadowTopic: string;
  pricing: PricingTable;
  metrics: JudgeLoopMetrics;
  logger: Logger;
  ttlMs: number;
};

/**
 * Sees every record the processor publishes, so the shadow can compare with the live verdict
 * without the processor knowing about shadows. A subclass because the processor takes the
 * class; everything is delegated to the shared producer, whose flush the shutdown already awaits.
 */
class TappedProducer extends BatchingProducer {
  constructor(
    private readonly inner: BatchingProducer,
    private readonly tap: (record: OutgoingRecord) => void,
  ) {
    // The base class's own Kafka producer is never used: every call below goes to `inner`.
    super(null as unknown as ConstructorParameters<typeof BatchingProducer>[0]);
  }
  override send(record: OutgoingRecord): Promise<void> {
    this.tap(record);
    return this.inner.send(record);
  }
  override sendAll(records: OutgoingRecord[]): Promise<void> {
    for (const r of records) this.tap(r);
    return this.inner.sendAll(records);
  }
  override flush(): Promise<void> {
    return this.inner.flush();
  }
}

export function createLiveJudging(deps: LiveJudgeDeps): { process: Processor; current: () => Promise<JudgeIdentity> } {
  const { logger, metrics } = deps;
  const cached = new CachedRegistry(deps.registry, deps.ttlMs, (err) => logger.warn({ err: String(err) }, "could not read the judge registry; keeping the last judge"));
  /** Live results of sampled conversations, by conversation id, while their job runs. */
  const watching = new Map<string, JudgedResult | null>();
  const producer = new TappedProducer(deps.producer, (record) => {
    if (record.topic !== deps.outputTopic || typeof record.key !== "string" || !watching.has(record.key)) return;
    const parsed = JudgedResult.safeParse(JSON.parse(String(record.value)));
    if (parsed.success) watching.set(record.key, parsed.data);
  });
  const processors = new Map<string, Processor>();
  let shown: { label: string; since: string | null } | undefined;

  function live(state: RegistryState): JudgeIdentity {
    const judge = state.live ?? deps.fallback;
    if (judge.prompt_version !== PROMPT_VERSION) {
      // The CLI refuses such a promotion; a registry edited by hand must not stop the fleet.
      logger.error({ judge }, `the registry's live judge needs prompt ${judge.prompt_version}, this build has ${PROMPT_VERSION}: running ${judgeLabel(deps.fallback)}`);
      return deps.fallback;
    }
    return judge;
  }

  function processorFor(judge: JudgeIdentity): Processor {
    const key = judgeLabel(judge);
    let p = processors.get(key);
    if (!p) {
      p = deps.processorFor(deps.clientFor(judge.model), producer);
      processors.set(key, p);
    }
    return p;
  }

  function showLive(judge: JudgeIdentity, since: string | null): void {
    const label = judgeLabel(judge);
    if (shown?.label === label && shown.since === since) return;
    metrics.liveJudge.reset();
    metrics.liveJudge.set({ model: judge.model, prompt_version: judge.prompt_version }, since ? Date.parse(since) / 1000 : 0);
    if (shown) logger.info({ judge, since }, "live judge switched");
    shown = { label, since };
  }

  async function process(job: Job, token?: string): Promise<void> {
    const state = await cached.get();
    const judge = live(state);
    showLive(judge, state.live ? state.live_since : null);
    const run = processorFor(judge);
    const candidate = state.candidate;
    const decoded = candidate ? decodeJudgeJob(job.data) : null;
    const shadow =
      candidate && decoded?.ok && candidate.prompt_version === PROMPT_VERSION && !sameJudge(candidate, judge) && inShadowSample(decoded.job.conversation.id, candidate.sample_rate)
        ? { candidate, data: decoded.job }
        : undefined;
    // Two jobs of one conversation at once (two versions) share the slot; only the shadow can miss one.
    if (!shadow) return run(job, token);
    const id = shadow.data.conversation.id;
    watching.set(id, null);
    let liveResult: JudgedResult | null | undefined;
    try {
      await run(job, token);
      liveResult = watching.get(id);
    } finally {
      watching.delete(id);
    }
    if (liveResult && sameJudge(liveResult.judge, judge)) await runShadow(shadow.candidate, shadow.data, liveResult);
  }

  async function runShadow(candidate: JudgeIdentity, data: JudgeJob, liveResult: JudgedResult): Promise<void> {
    const name = judgeLabel(candidate);
    try {
      const call = await deps.clientFor(candidate.model).complete(buildChatMessages(data.conversation));
      const cost = callCostUsd(call.usage, call.latencyMs, priceFor(deps.pricing, candidate.model));
      const record: ShadowResult = {
        schema_version: 1,
        live_result_id: liveResult.result_id,
        conversation_id: data.conversation.id,
        live: { judge: liveResult.judge, verdict: liveResult.verdict, cost_usd: liveResult.cost_usd, latency_ms: liveResult.latency_ms },
        candidate: { judge: candidate, verdict: call.verdict, cost_usd: cost, latency_ms: Math.round(call.latencyMs) },
        agree: call.verdict.perceived_error === liveResult.verdict.perceived_error,
        judged_at: new Date().toISOString(),
      };
      await deps.producer.send({ topic: deps.shadowTopic, key: data.conversation.id, value: JSON.stringify(record), headers: { [PROVENANCE_HEADER]: "judge-worker-shadow" } });
      await deps.registry.recordShadow(candidate, {
        conversationId: data.conversation.id,
        live: liveResult.verdict,
        candidate: call.verdict,
        liveCostUsd: liveResult.cost_usd,
        candidateCostUsd: cost,
        liveLatencyMs: liveResult.latency_ms,
        candidateLatencyMs: call.latencyMs,
      });
      const v = (pe: boolean) => (pe ? "perceived_error" : "no_error");
      metrics.shadowVerdicts.inc({ candidate: name, live_verdict: v(liveResult.verdict.perceived_error), candidate_verdict: v(call.verdict.perceived_error) });
      metrics.shadowCost.inc({ candidate: name, side: "live" }, liveResult.cost_usd);
      metrics.shadowCost.inc({ candidate: name, side: "candidate" }, cost);
      metrics.shadowLatency.observe({ candidate: name, side: "live" }, liveResult.latency_ms / 1000);
      metrics.shadowLatency.observe({ candidate: name, side: "candidate" }, call.latencyMs / 1000);
    } catch (err) {
      // A shadow is an experiment: its failures are counted, never retried into the live job.
      metrics.shadowFailures.inc({ candidate: name });
      logger.warn({ candidate: name, conversation_id: data.conversation.id, err: err instanceof Error ? err.message : String(err) }, "shadow call failed");
    }
  }

  return { process, current: async () => live(await cached.get()) };
}
