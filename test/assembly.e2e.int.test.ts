import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startTestFleet, type TestFleet } from "./helpers/fleet.ts";

const WAIT = { timeout: 60_000, interval: 200 };
const T0 = Date.UTC(2026, 10, 28, 9, 0, 0);
const nanos = (s: number) => `${BigInt(T0 + s * 1000) * 1_000_000n}`;
const str = (key: string, value: string) => ({ key, value: { stringValue: value } });
const parts = (msgs: [role: string, text: string][]) => JSON.stringify(msgs.map(([role, content]) => ({ role, parts: [{ type: "text", content }] })));

/** One OTLP JSON export (as the Collector's Kafka exporter writes it) holding one chat span. */
function otlpChatSpan(o: { conversation: string; trace: string; span: string; at: number; input: [string, string][]; output: string }) {
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [str("service.name", "travel-app")] },
        scopeSpans: [
          {
            scope: { name: "test" },
            spans: [
              {
                traceId: o.trace,
                spanId: o.span,
                name: "chat gpt-4o",
                kind: 3,
                startTimeUnixNano: nanos(o.at),
                endTimeUnixNano: nanos(o.at + 1),
                attributes: [
                  str("gen_ai.operation.name", "chat"),
                  str("gen_ai.conversation.id", o.conversation),
                  str("gen_ai.input.messages", parts(o.input)),
                  str("gen_ai.output.messages", parts([["assistant", o.output]])),
                ],
              },
            ],
          },
        ],
      },
    ],
  });
}

describe("conversations assembled from spans across traces", () => {
  let fleet: TestFleet;
  beforeAll(async () => {
    fleet = await startTestFleet({ workers: 1, ingestEnv: { IDLE_WINDOW_MS: "1500", SWEEP_INTERVAL_MS: "200" } });
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it("judges a conversation split over traces, out of order and duplicated, once; a later turn re-judges it", async () => {
    const conversation = `trip-${fleet.id}`;
    const turn1 = otlpChatSpan({
      conversation,
      trace: "a1",
      span: "s1",
      at: 0,
      input: [["user", "Book me a train to Paris on Friday."]],
      output: "Booked: Lyon to Paris, Saturday 07:04.",
    });
    const turn2 = otlpChatSpan({
      conversation,
      trace: "b2",
      span: "s2",
      at: 10,
      input: [
        ["system", "You are a travel agent."],
        ["user", "Book me a train to Paris on Friday."],
        ["assistant", "Booked: Lyon to Paris, Saturday 07:04."],
        ["user", "That's wrong, I said Friday."],
      ],
      output: "Sorry, I moved it to Friday 07:04.",
    });
    // Out of order and duplicated, across partitions (keys differ), as real exporters deliver.
    await fleet.produce([
      { key: "b2", value: turn2 },
      { key: "a1", value: turn1 },
      { key: "b2-again", value: turn2 },
    ]);
    await vi.waitFor(() => expect(fleet.countsByKey().get(conversation)).toBe(1), WAIT);
    // Nothing more arrives for the duplicates once the idle window has passed again.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(fleet.countsByKey().get(conversation)).toBe(1);
    const first = fleet.records.find((r) => r.key === conversation);
    if (first?.topic !== "output" || first.result.status !== "judged") throw new Error("expected a verdict");
    expect(first.result.verdict.perceived_error).toBe(true);
    expect(first.result.conversation_version.message_count).toBe(5);
    expect(first.result.metadata.app).toBe("travel-app");

    const turn3 = otlpChatSpan({
      conversation,
      trace: "c3",
      span: "s3",
      at: 20,
      input: [
        ["user", "Book me a train to Paris on Friday."],
        ["assistant", "Booked: Lyon to Paris, Saturday 07:04."],
        ["user", "That's wrong, I said Friday."],
        ["assistant", "Sorry, I moved it to Friday 07:04."],
        ["user", "Thanks, and a return on Sunday please."],
      ],
      output: "Done: Paris to Lyon, Sunday 18:00.",
    });
    await fleet.produce([{ key: "c3", value: turn3 }]);
    await vi.waitFor(() => expect(fleet.countsByKey().get(conversation)).toBe(2), WAIT);
    const second = fleet.records.filter((r) => r.key === conversation)[1];
    if (second?.topic !== "output" || second.result.status !== "judged") throw new Error("expected a second verdict");
    expect(second.result.conversation_version.message_count).toBe(7);
    expect(second.result.conversation_version.content_hash).not.toBe(first.result.conversation_version.content_hash);
  });

  it("dead-letters unknown and malformed formats with a reason naming the problem", async () => {
    await fleet.produce([
      { key: "unknown-format", value: JSON.stringify({ hello: "world" }) },
      { key: "broken-otlp", value: JSON.stringify({ resourceSpans: "not a list" }) },
    ]);
    await vi.waitFor(() => expect(fleet.countsByKey().get("broken-otlp")).toBe(1), WAIT);
    await vi.waitFor(() => expect(fleet.countsByKey().get("unknown-format")).toBe(1), WAIT);
    const letters = Object.fromEntries(
      fleet.records.filter((r) => r.topic === "dlq").map((r) => [r.key, r.topic === "dlq" ? `${r.letter.reason_code}: ${r.letter.reason}` : ""]),
    );
    expect(letters["unknown-format"]).toMatch(/^unknown_format: .*hello/);
    expect(letters["broken-otlp"]).toMatch(/^invalid_shape: .*resourceSpans/);
  });
});
