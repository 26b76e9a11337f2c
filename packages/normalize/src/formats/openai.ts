/**
 * The simplest input: `{id | conversation_id, messages: [...], metadata?, timestamp?}`, one
 * conversation state per event. The messages may be in any shape the message layer knows
 * (OpenAI chat, Anthropic blocks, Gemini contents, LangChain, ...), since teams that write this
 * format by hand usually dump whatever their SDK holds.
 */
import { z } from "zod";
import { readMessages } from "../messages.ts";
import { zodProblem } from "../spans.ts";
import { NormalizeError, type TraceFragment } from "../types.ts";
import { compact, firstString, hasEndFlag, isRecord, messagesHash, scalarEntries, str, toIso } from "../util.ts";

const Id = z.union([z.string().min(1), z.number()]);
const Event = z.looseObject({
  id: Id.optional(),
  conversation_id: Id.optional(),
  thread_id: Id.optional(),
  session_id: Id.optional(),
  messages: z.array(z.unknown()),
  metadata: z.record(z.string(), z.unknown()).nullish(),
  timestamp: z.union([z.string(), z.number()]).nullish(),
  conversation_end: z.boolean().nullish(),
});

/**
 * A `messages` key next to an id claims the openai format even when the list is broken, so the
 * dead letter names the real problem ("messages: expected array") instead of "unknown format".
 */
export function isOpenAiEvent(v: unknown): boolean {
  return isRecord(v) && "messages" in v && ["id", "conversation_id", "thread_id", "session_id"].some((k) => k in v);
}

export function normalizeOpenAi(event: unknown): TraceFragment[] {
  const parsed = Event.safeParse(event);
  if (!parsed.success) throw zodProblem("openai", parsed.error);
  const e = parsed.data;
  const explicit = firstString(e.conversation_id, e.thread_id, e.session_id);
  const eventId = firstString(e.id);
  const conversation = explicit ?? eventId;
  if (conversation === undefined) {
    throw new NormalizeError("invalid_shape", "openai: event needs an id or conversation_id", "openai");
  }
  const messages = readMessages(e.messages);
  if (messages === null && e.messages.length > 0) {
    throw new NormalizeError("invalid_shape", "openai: messages is not a list of chat messages", "openai");
  }
  const ts = toIso(e.timestamp);
  const md = e.metadata ?? undefined;
  const read = messages ?? [];
  // With only `id`, it names the conversation, and each event is one state of it: identify the
  // state by its content (the messages as read, and the event time) so incremental events are not
  // mistaken for redeliveries. Hashing what was read rather than the raw payload spares turning
  // the whole payload back into JSON; raw states that read the same are the same state to a merge.
  const fragmentId =
    explicit !== undefined && eventId !== undefined && eventId !== explicit ? eventId : `${conversation}:${messagesHash(read, JSON.stringify(e.timestamp ?? null))}`;
  return [
    {
      source: "openai",
      conversation_key: conversation,
      fragment_id: fragmentId,
      messages: read,
      ...(ts !== undefined ? { started_at: ts, ended_at: ts } : {}),
      metadata: {
        ...scalarEntries(md),
        ...compact({ app: str(md?.app), project: str(md?.project), environment: str(md?.environment) }),
      },
      end: e.conversation_end === true || hasEndFlag(md),
    },
  ];
}
