import type { KafkaLagMetrics } from "@tracesift/metrics";

export type PartitionOffsets = { topic: string; partition: number; committed: number; low: number; high: number };
export type PartitionLag = PartitionOffsets & { lag: number; position: number };

/**
 * Lag per partition from what the broker holds. A partition the group never committed is read
 * from its log start (ingest reads new groups from the beginning), so its whole retained log is
 * lag; a committed offset below the log start (retention deleted unread messages) counts from there.
 */
export function partitionLag(p: PartitionOffsets): PartitionLag {
  const position = p.committed < 0 ? p.low : Math.max(p.committed, p.low);
  return { ...p, position, lag: Math.max(0, p.high - position) };
}

/** The minimal admin surface used, so tests can pass a stand-in. */
export type OffsetsAdmin = {
  fetchOffsets(options: { groupId: string; topics: string[] }): Promise<{ topic: string; partitions: { partition: number; offset: string }[] }[]>;
  fetchTopicOffsets(topic: string): Promise<{ partition: number; high: string; low: string }[]>;
};

export async function readGroupLag(admin: OffsetsAdmin, groupId: string, topics: string[]): Promise<PartitionLag[]> {
  const committed = new Map<string, number>();
  for (const t of await admin.fetchOffsets({ groupId, topics })) {
    for (const p of t.partitions) committed.set(`${t.topic}/${p.partition}`, Number(p.offset));
  }
  const out: PartitionLag[] = [];
  for (const topic of topics) {
    let offsets: Awaited<ReturnType<OffsetsAdmin["fetchTopicOffsets"]>>;
    try {
      offsets = await admin.fetchTopicOffsets(topic);
    } catch (err) {
      // Ingest creates its topics on start: until then there is nothing to lag behind.
      if ((err as { type?: string }).type === "UNKNOWN_TOPIC_OR_PARTITION") continue;
      throw err;
    }
    for (const p of offsets) {
      out.push(
        partitionLag({
          topic,
          partition: p.partition,
          committed: committed.get(`${topic}/${p.partition}`) ?? -1,
          low: Number(p.low),
          high: Number(p.high),
        }),
      );
    }
  }
  return out;
}

export function exportLag(metrics: KafkaLagMetrics, group: string, lags: PartitionLag[]): void {
  for (const l of lags) {
    const labels = { group, topic: l.topic, partition: String(l.partition) };
    metrics.lag.set(labels, l.lag);
    metrics.committed.set(labels, l.position);
    metrics.highWatermark.set(labels, l.high);
  }
}
