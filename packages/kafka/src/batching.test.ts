import type { Producer, ProducerBatch } from "kafkajs";
import { describe, expect, it } from "vitest";
import { BatchingProducer } from "./index.ts";

/** Records each produce request; each request's ack waits until `release()` (a broker round trip). */
function fakeProducer() {
  const requests: string[][] = [];
  const acks: (() => void)[] = [];
  let fail: Error | null = null;
  const producer = {
    sendBatch: (batch: ProducerBatch) => {
      requests.push((batch.topicMessages ?? []).flatMap((t) => t.messages.map((m) => String(m.value))));
      if (fail) return Promise.reject(fail);
      return new Promise<never[]>((resolve) => acks.push(() => resolve([])));
    },
  } as unknown as Producer;
  return {
    producer,
    requests,
    release: () => {
      for (const ack of acks.splice(0)) ack();
    },
    failWith: (err: Error) => {
      fail = err;
    },
  };
}

const rec = (value: string) => ({ topic: "out", key: value, value });
const turn = () => new Promise<void>((r) => setImmediate(r));

describe("BatchingProducer", () => {
  it("sends records of one event-loop turn together, without waiting for a timer", async () => {
    const fake = fakeProducer();
    const p = new BatchingProducer(fake.producer);
    const sent = [p.send(rec("a")), p.send(rec("b"))];
    await turn();
    expect(fake.requests).toEqual([["a", "b"]]);
    fake.release();
    await Promise.all(sent);
  });

  it("batches what arrives during a round trip into the next request, one request in flight", async () => {
    const fake = fakeProducer();
    const p = new BatchingProducer(fake.producer);
    let acked = 0;
    const first = p.send(rec("a")).then(() => acked++);
    await turn();
    const later = ["b", "c", "d"].map((v) => p.send(rec(v)).then(() => acked++));
    await turn();
    expect(fake.requests).toEqual([["a"]]); // b, c, d wait for a's ack
    fake.release();
    await first;
    await turn();
    expect(fake.requests).toEqual([["a"], ["b", "c", "d"]]);
    expect(acked).toBe(1);
    fake.release();
    await Promise.all(later);
    expect(acked).toBe(4);
  });

  it("caps a request at maxBatch and flush() waits for every ack", async () => {
    const fake = fakeProducer();
    const p = new BatchingProducer(fake.producer, { maxBatch: 2, lingerMs: 60_000 });
    const sent = ["a", "b", "c"].map((v) => p.send(rec(v)));
    const flushed = p.flush();
    let done = false;
    void flushed.then(() => {
      done = true;
    });
    await turn();
    expect(fake.requests).toEqual([["a", "b"]]);
    fake.release();
    await turn();
    expect(fake.requests).toEqual([["a", "b"], ["c"]]);
    expect(done).toBe(false);
    fake.release();
    await flushed;
    await Promise.all(sent);
  });

  it("rejects every record of a failed request", async () => {
    const fake = fakeProducer();
    fake.failWith(new Error("broker gone"));
    const p = new BatchingProducer(fake.producer);
    const results = await Promise.allSettled([p.send(rec("a")), p.send(rec("b"))]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
  });
});
