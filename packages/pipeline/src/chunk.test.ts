import type { ConversationAssembler } from "@tracesift/assembly";
import type { BatchingProducer, KafkaMessage, OutgoingRecord } from "@tracesift/kafka";
import { ingestMetrics } from "@tracesift/metrics";
import { mergeFragments, normalizeEvent } from "@tracesift/normalize";
import { createRegistry } from "@tracesift/runtime";
import { conversationVersion, type JudgeJob, PROVENANCE_HEADER } from "@tracesift/schemas";
import { decodeJudgeJob, type JudgeQueue } from "@tracesift/queue";
import { describe, expect, it } from "vitest";
import { handleChunk, type PipelineOptions } from "./index.ts";

let offset = 0;
const message = (value: unknown, headers: KafkaMessage["headers"] = {}): KafkaMessage =>
  ({
    key: null,
    value: Buffer.from(typeof value === "string" ? value : JSON.stringify(value)),
    offset: String(offset++),
    timestamp: "1764320000000",
    headers,
    attributes: 0,
  }) as KafkaMessage;

const turns = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ role: i % 2 === 0 ? "user" : "assistant", content: i === n - 1 && n > 2 ? "No, I meant Tuesday." : `turn ${i}` }));

function setup() {
  const registry = createRegistry("ingest");
  const jobs: JudgeJob[] = [];
  const records: OutgoingRecord[] = [];
  const buffered: unknown[] = [];
  const options: PipelineOptions = {
    // Jobs are enqueued compact: decoding them here also proves the round trip.
    queue: {
      addBulk: async (added: { data: unknown }[]) =>
        void jobs.push(
          ...added.map((a) => {
            const decoded = decodeJudgeJob(a.data);
            if (!decoded.ok) throw new Error(decoded.error);
            return decoded.job;
          }),
        ),
    } as unknown as JudgeQueue,
    producer: { sendAll: async (r: OutgoingRecord[]) => void records.push(...r) } as unknown as BatchingProducer,
    assembler: {
      add: async (items: unknown[]) => {
        buffered.push(...items);
        return [];
      },
      ack: async () => undefined,
    } as unknown as ConversationAssembler,
    metrics: ingestMetrics(registry),
    outputTopic: "out",
    deadLetterTopic: "dlq",
    maxEventBytes: 100_000,
    maxAttempts: 5,
    priority: "live",
    replay: "live",
    topicFormats: {},
    immediateFormats: new Set(["openai"]),
    selection: { sampleRate: 1, includeApps: [], excludeApps: [], requireMetadata: {} },
    limits: { maxMessages: 100, maxChars: 100_000, trim: "none" },
  };
  const counts = async (name: string) => {
    const metric = registry.getSingleMetric(name);
    const values = (await metric?.get())?.values ?? [];
    return Object.fromEntries(values.filter((v) => v.value > 0).map((v) => [Object.values(v.labels).join("/"), v.value]));
  };
  return { options, jobs, records, buffered, counts };
}

describe("handleChunk", () => {
  it("enqueues whole conversations, dead-letters and skips, and counts every event once", async () => {
    const { options, jobs, records, buffered, counts } = setup();
    const chunk = [
      message({ id: "a", metadata: { app: "shop" }, messages: turns(3) }),
      message("{not json"),
      message({ id: "b", metadata: { app: "shop" }, messages: turns(4) }),
      message({ id: "a", metadata: { app: "shop" }, messages: turns(3) }), // redelivered
      message({ id: "c", messages: turns(3) }, { [PROVENANCE_HEADER]: "judge-worker" }),
      message({ id: "d", messages: turns(2) }), // no user reply yet
      message({ id: "a", metadata: { app: "shop" }, messages: turns(5) }), // a later state
      message({ id: "e", messages: "nope" }),
      message({ run_type: "llm", id: "r1", trace_id: "t1", inputs: { messages: [{ role: "user", content: "hi" }] }, outputs: { generations: [[{ text: "hello" }]] } }),
    ];
    const first = chunk[0]!.offset;
    const totals = await handleChunk(chunk, "traces", 2, options);

    expect(totals).toEqual({ buffered: 6, enqueued: 2, skipped: 2, alreadyJudged: 0, deadLettered: 2 });
    expect(await counts("tracesift_ingest_events_total")).toEqual({
      "traces/openai/buffered/live": 5,
      "traces/langsmith/buffered/live": 1,
      "traces/openai/skipped/live": 1,
      "traces/unknown/dead_lettered/live": 1,
      "traces/openai/dead_lettered/live": 1,
    });
    expect(await counts("tracesift_dead_letters_total")).toEqual({ "ingest/invalid_json": 1, "ingest/invalid_shape": 1 });
    expect(await counts("tracesift_verdicts_total")).toEqual({ "unknown/skipped/live": 2 });

    // One job per conversation, merged from all its events in the chunk, at its first event's position.
    expect(jobs.map((j) => j.conversation.id)).toEqual(["a", "b"]);
    const a = jobs[0]!;
    const expected = mergeFragments(
      [turns(3), turns(3), turns(5)].map((messages) => normalizeEvent({ id: "a", metadata: { app: "shop" }, messages })[0]!).map((f) => structuredClone(f)),
    );
    expect(a.conversation).toEqual(expected);
    expect(a.conversation.messages).toHaveLength(5);
    expect(a.source).toMatchObject({ topic: "traces", partition: 2, offset: first });
    for (const j of jobs) expect(j.version).toEqual(conversationVersion(j.conversation));
    expect(a.version).toEqual(conversationVersion(expected));

    expect(records.map((r) => r.topic).sort()).toEqual(["dlq", "dlq", "out", "out"]);
    expect(buffered).toHaveLength(1);
  });

  it("counts nothing twice across chunks and creates no series for outcomes that did not happen", async () => {
    const { options, counts } = setup();
    await handleChunk([message({ id: "x", messages: turns(3) })], "traces", 0, options);
    await handleChunk([message({ id: "y", messages: turns(3) }), message({ id: "z", messages: turns(3) })], "traces", 0, options);
    expect(await counts("tracesift_ingest_events_total")).toEqual({ "traces/openai/buffered/live": 3 });
  });
});
