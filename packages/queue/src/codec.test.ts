import { gunzipSync } from "node:zlib";
import type { JudgeJob } from "@tracesift/schemas";
import { describe, expect, it } from "vitest";
import { decodeJudgeJob, describeQueuedJob, encodeJudgeJob } from "./index.ts";

const words = "the meeting was booked on tuesday but the user wanted wednesday at three instead of noon".split(" ");
const job: JudgeJob = {
  conversation: {
    id: "conv-42",
    source: "openai",
    metadata: { app: "calendar" },
    messages: Array.from({ length: 12 }, (_, i) => ({
      role: i % 2 === 0 ? ("user" as const) : ("assistant" as const),
      content: Array.from({ length: 80 }, (_, k) => words[(i * 7 + k * 3) % words.length]).join(" "),
    })),
  },
  version: { message_count: 12, content_hash: "9f2c00aa" },
  source: { topic: "traces", partition: 1, offset: "17" },
  priority: "backfill",
  enqueued_at: "2026-11-28T10:00:00.000Z",
};

describe("compact judge jobs", () => {
  it("round-trips a job and stores less than its JSON, without its text", () => {
    const encoded = encodeJudgeJob(job);
    const stored = JSON.stringify(encoded);
    expect(stored.length).toBeLessThan(JSON.stringify(job).length / 2);
    expect(stored).not.toContain("wednesday");
    expect(encoded).toMatchObject({ v: 2, priority: "backfill", id: "conv-42", bytes: JSON.stringify(job).length });
    // What BullMQ stores is JSON text: decode what comes back from it, not the object in hand.
    expect(decodeJudgeJob(JSON.parse(stored))).toEqual({ ok: true, job });
    expect(JSON.parse(gunzipSync(Buffer.from(encoded.gz, "base64")).toString("utf8"))).toEqual(job);
  });

  it("still reads a v1 job (the whole JudgeJob) enqueued before compaction", () => {
    expect(decodeJudgeJob(JSON.parse(JSON.stringify(job)))).toEqual({ ok: true, job });
  });

  it("says why a payload cannot be read instead of throwing", () => {
    const corrupt = { ...encodeJudgeJob(job), gz: Buffer.from("not gzip").toString("base64") };
    const bad = decodeJudgeJob(corrupt);
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error).toMatch(/does not inflate/);
    const wrong = decodeJudgeJob({ hello: "world" });
    expect(wrong.ok).toBe(false);
    if (!wrong.ok) expect(wrong.error).toMatch(/not a JudgeJob/);
  });

  it("describes a job for logs by id and size only", () => {
    expect(describeQueuedJob(encodeJudgeJob(job))).toEqual({ conversation_id: "conv-42", bytes: JSON.stringify(job).length });
    expect(describeQueuedJob(job)).toEqual({ conversation_id: "conv-42", bytes: JSON.stringify(job).length });
    expect(describeQueuedJob("garbage")).toEqual({});
  });
});
