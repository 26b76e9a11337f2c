import { randomUUID } from "node:crypto";
import type { TraceFragment } from "@tracesift/normalize";
import { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { ConversationAssembler, endsWithUserReply } from "./index.ts";

const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const prefixes: string[] = [];
afterEach(async () => {
  for (const p of prefixes.splice(0)) {
    const keys = await redis.keys(`${p}:*`);
    if (keys.length) await redis.del(...keys);
  }
});
afterAll(async () => {
  await redis.quit();
});

function assembler(options: Partial<ConstructorParameters<typeof ConversationAssembler>[0]> = {}) {
  const prefix = `test-asm-${randomUUID().slice(0, 8)}`;
  prefixes.push(prefix);
  return new ConversationAssembler({ redis, prefix, idleMs: 200, mode: "idle", ...options });
}

const source = { topic: "t", partition: 0, offset: "1" };
const at = (s: number) => new Date(Date.UTC(2026, 10, 28, 10, 0, s)).toISOString();

function fragment(id: string, turns: [role: "user" | "assistant", content: string, second: number][], end = false): TraceFragment {
  return {
    source: "otel-genai",
    conversation_key: "conv-1",
    fragment_id: id,
    messages: turns.map(([role, content, s]) => ({ role, content, timestamp: at(s) })),
    started_at: at(turns[0]?.[2] ?? 0),
    metadata: { app: "demo" },
    end,
  };
}

describe("ConversationAssembler", () => {
  it("merges out-of-order, duplicated fragments into one conversation after the idle window", async () => {
    const a = assembler();
    const turn2 = fragment("span-2", [["user", "book tuesday", 0], ["assistant", "booked wednesday", 1], ["user", "no, tuesday", 2], ["assistant", "fixed", 3]]);
    const turn1 = fragment("span-1", [["user", "book tuesday", 0], ["assistant", "booked wednesday", 1]]);
    expect(await a.add([{ fragment: turn2, source }, { fragment: turn1, source }, { fragment: turn2, source }])).toEqual([]);
    expect(await a.claimDue()).toEqual([]);
    await new Promise((r) => setTimeout(r, 250));
    const [ready, ...rest] = await a.claimDue();
    expect(rest).toEqual([]);
    expect(ready?.conversation.messages.map((m) => m.content)).toEqual(["book tuesday", "booked wednesday", "no, tuesday", "fixed"]);
    expect(ready?.version.message_count).toBe(4);
    // Claimed once: a second sweep finds nothing.
    expect(await a.claimDue()).toEqual([]);
    await a.ack(ready!);
  });

  it("judges at once on an explicit end, and a later turn re-opens the conversation with a new version", async () => {
    const a = assembler({ idleMs: 60_000 });
    const [first] = await a.add([{ fragment: fragment("s1", [["user", "hi", 0], ["assistant", "hello", 1]], true), source }]);
    expect(first?.version.message_count).toBe(2);
    await a.ack(first!);
    const [second] = await a.add([{ fragment: fragment("s2", [["user", "hi", 0], ["assistant", "hello", 1], ["user", "wrong", 2]], true), source }]);
    expect(second?.version.message_count).toBe(3);
    expect(second?.previous).toBe(first?.version.content_hash);
  });

  it("per-turn mode triggers as soon as the user answers the assistant", async () => {
    const a = assembler({ idleMs: 60_000, mode: "per-turn" });
    expect(await a.add([{ fragment: fragment("s1", [["user", "hi", 0], ["assistant", "hello", 1]]), source }])).toEqual([]);
    const [ready] = await a.add([{ fragment: fragment("s2", [["user", "that is not it", 2]]), source }]);
    expect(ready?.conversation.messages.map((m) => m.role)).toEqual(["user", "assistant", "user"]);
  });

  it("hands an un-acked claim to another replica once its lease expires", async () => {
    const a = assembler({ idleMs: 0, claimLeaseMs: 100 });
    const b = new ConversationAssembler({ redis, prefix: prefixes[prefixes.length - 1]!, idleMs: 0, mode: "idle", claimLeaseMs: 100 });
    await a.add([{ fragment: fragment("s1", [["user", "x", 0]]), source }]);
    await new Promise((r) => setTimeout(r, 5));
    expect(await a.claimDue()).toHaveLength(1);
    expect(await b.claimDue()).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 150));
    expect(await b.claimDue()).toHaveLength(1);
  });
});

describe("endsWithUserReply", () => {
  it("ignores system messages", () => {
    expect(
      endsWithUserReply({ messages: [{ role: "assistant", content: "a" }, { role: "system", content: "s" }, { role: "user", content: "u" }] }),
    ).toBe(true);
    expect(endsWithUserReply({ messages: [{ role: "user", content: "u" }] })).toBe(false);
  });
});
