import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { conversationVersion, type Message } from "./index.ts";

/** The definition: `role NUL content SOH` per message, each piece hashed in turn. */
function reference(messages: Message[]): string {
  const hash = createHash("sha256");
  for (const m of messages) {
    hash.update(m.role);
    hash.update("\u0000");
    hash.update(m.content);
    hash.update("\u0001");
  }
  return hash.digest("hex").slice(0, 16);
}

describe("conversationVersion", () => {
  it("keeps its hash: results, job ids and the assembler's emitted versions depend on it", () => {
    const messages: Message[] = [
      { role: "user", content: "Book me a table for Tuesday." },
      { role: "assistant", content: "Booked for Wednesday." },
      { role: "user", content: "No, I said Tuesday." },
    ];
    expect(conversationVersion({ messages })).toEqual({ message_count: 3, content_hash: "41b46cf3fe04f923" });
    expect(conversationVersion({ messages: [] })).toEqual({ message_count: 0, content_hash: "e3b0c44298fc1c14" });
  });

  it("hashes exactly the bytes of the piecewise definition, whatever the text", () => {
    const texts = ["", "plain", "héllo wörld", "emoji \u{1F600} here", "lone \ud800 high", "\udc00 lone low", "ends high \ud83d", "\u0000\u0001 separators", "x".repeat(70_000)];
    for (const a of texts) {
      for (const b of texts) {
        const messages: Message[] = [
          { role: "system", content: a },
          { role: "user", content: b, timestamp: "2025-03-01T10:00:00.000Z" },
          { role: "assistant", content: `${a}${b}` },
        ];
        expect(conversationVersion({ messages }).content_hash).toBe(reference(messages));
      }
    }
  });
});
