import type { Conversation } from "@tracesift/schemas";

export type ConversationLimits = {
  maxMessages: number;
  maxChars: number;
  /**
   * `none` (default, as the judge was trained: it must see whole conversations) dead-letters an
   * oversized conversation; `oldest-turns` drops the oldest user/assistant messages, keeping system
   * messages and the most recent turns, until the conversation fits.
   */
  trim: "none" | "oldest-turns";
};

export type Limited = { kind: "ok"; conversation: Conversation; trimmed: number } | { kind: "oversized"; reason: string };

const size = (c: Conversation) => c.messages.reduce((n, m) => n + m.content.length, 0);
const fitsIn = (c: Conversation, limits: ConversationLimits) => c.messages.length <= limits.maxMessages && size(c) <= limits.maxChars;

export function applyLimits(conversation: Conversation, limits: ConversationLimits): Limited {
  if (fitsIn(conversation, limits)) return { kind: "ok", conversation, trimmed: 0 };
  const fits = (c: Conversation) => fitsIn(c, limits);
  const describe = `${conversation.messages.length} messages / ${size(conversation)} characters, limits ${limits.maxMessages} / ${limits.maxChars}`;
  if (limits.trim === "none") return { kind: "oversized", reason: `conversation too large: ${describe}` };

  const messages = [...conversation.messages];
  let trimmed = 0;
  const trimmedConversation = () => ({ ...conversation, messages });
  while (!fits(trimmedConversation())) {
    const index = messages.findIndex((m) => m.role !== "system");
    // Never trim below one assistant turn and the user's reply: that is what the judge needs.
    if (index < 0 || messages.filter((m) => m.role !== "system").length <= 2) {
      return { kind: "oversized", reason: `conversation too large even after trimming: ${describe}` };
    }
    messages.splice(index, 1);
    trimmed++;
  }
  return { kind: "ok", conversation: trimmedConversation(), trimmed };
}
