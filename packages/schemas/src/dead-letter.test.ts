import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { buildDeadLetter, DeadLetter, MAX_EMBEDDED_ORIGINAL_BYTES } from "./index.ts";

const source = { topic: "traces", partition: 2, offset: "41" };

describe("buildDeadLetter", () => {
  it("embeds a small original, with its size and hash", () => {
    const original = Buffer.from("{oops");
    const letter = buildDeadLetter({ reason_code: "invalid_json", reason: "not JSON", stage: "ingest", source, original_key: "k", original });
    expect(DeadLetter.parse(letter)).toEqual(letter);
    expect(Buffer.from(letter.original_base64 ?? "", "base64").toString()).toBe("{oops");
    expect(letter.original_bytes).toBe(5);
    expect(letter.original_sha256).toBe(createHash("sha256").update(original).digest("hex"));
    expect(letter.original_truncated).toBeUndefined();
  });

  it("never embeds an original that could push the letter over Kafka's message limit", () => {
    const original = Buffer.from(`not json ${"x".repeat(3_200_000)}`);
    const letter = buildDeadLetter({ reason_code: "invalid_json", reason: `Unexpected token ${"x".repeat(10_000)}`, stage: "ingest", source, original_key: null, original });
    expect(letter.original_base64).toBeNull();
    expect(letter.original_truncated).toBe(true);
    expect(letter.original_bytes).toBe(original.length);
    expect(JSON.stringify(letter).length).toBeLessThan(8_000);
    expect(MAX_EMBEDDED_ORIGINAL_BYTES * 1.4).toBeLessThan(1_000_000);
  });

  it("gives the same event and reason the same id, and anything else another", () => {
    const make = (over: Partial<Parameters<typeof buildDeadLetter>[0]>) =>
      buildDeadLetter({ reason_code: "invalid_json", reason: "r", stage: "ingest", source, original_key: null, original: null, ...over }).dead_letter_id;
    expect(make({})).toBe(make({ reason: "another text, same event" }));
    expect(make({})).not.toBe(make({ source: { ...source, offset: "42" } }));
    expect(make({})).not.toBe(make({ reason_code: "oversized" }));
    expect(make({})).not.toBe(make({ subject: "conv-1" }));
  });
});
