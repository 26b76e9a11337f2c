import { z } from "zod";

/** One message of the conversation under judgement (not of the judge request itself). */
export type TranscriptMessage = { role: string; content: string };

export type Verdict = { perceived_error: boolean; reason: string };

type CueKind = "correction" | "repeat" | "rejection";

/**
 * Cues in a user message (that follows an assistant message) meaning the assistant got something wrong.
 * Matched case-insensitively on word boundaries, so "no," does not fire on "piano," and "stop" not on "stopwatch".
 */
export const USER_CUES: Readonly<Record<CueKind, readonly string[]>> = {
  correction: [
    "that's wrong",
    "that is wrong",
    "that's not",
    "that is not",
    "incorrect",
    "no,",
    "not what i asked",
    "you misunderstood",
    "wrong",
    "you forgot",
    "doesn't work",
    "didn't work",
  ],
  repeat: ["i said", "i already told you", "i told you", "try again", "still not"],
  rejection: ["stop", "don't do that", "undo"],
};

/** Cues in an assistant message (after the first user message) that admit a mistake. */
export const ASSISTANT_CUES: readonly string[] = [
  "my mistake",
  "i apologize",
  "my apologies",
  "sorry, i",
  "you're right, i",
  "you are right, i",
  "i made an error",
  "i was wrong",
];

export const NO_PROBLEM_REASON = "The user does not signal any problem with the assistant's replies.";

const USER_REASON: Record<CueKind, (cue: string) => string> = {
  correction: (cue) => `The user corrects the assistant ("${cue}").`,
  repeat: (cue) => `The user has to repeat the request ("${cue}").`,
  rejection: (cue) => `The user rejects what the assistant did ("${cue}").`,
};

type Matcher = { cue: string; pattern: RegExp; reason: string };

function matcher(cue: string, reason: string): Matcher {
  const escaped = cue.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  // \b is ASCII-only and meaningless next to punctuation ("no,"), so guard only the ends that are letters.
  const start = /^[\p{L}\p{N}]/u.test(cue) ? "(?<![\\p{L}\\p{N}])" : "";
  const end = /[\p{L}\p{N}]$/u.test(cue) ? "(?![\\p{L}\\p{N}])" : "";
  return { cue, pattern: new RegExp(`${start}${escaped}${end}`, "u"), reason };
}

const USER_MATCHERS = (Object.keys(USER_CUES) as CueKind[]).flatMap((kind) =>
  USER_CUES[kind].map((cue) => matcher(cue, USER_REASON[kind](cue))),
);
const ASSISTANT_MATCHERS = ASSISTANT_CUES.map((cue) =>
  matcher(cue, `The assistant acknowledges a mistake ("${cue}").`),
);

/** Lower-cases and straightens typographic apostrophes, so "That’s wrong" matches "that's wrong". */
function normalize(text: string): string {
  return text.toLowerCase().replace(/[\u2018\u2019\u02bc]/g, "'");
}

/** The cue that starts earliest in the text; on a tie the longer cue wins ("that's wrong" over "wrong"). */
function firstCue(text: string, matchers: readonly Matcher[]): Matcher | undefined {
  let best: { m: Matcher; at: number } | undefined;
  for (const m of matchers) {
    const at = text.search(m.pattern);
    if (at < 0) continue;
    if (!best || at < best.at || (at === best.at && m.cue.length > best.m.cue.length)) best = { m, at };
  }
  return best?.m;
}

/**
 * The simulator's judge. `perceived_error` is true iff a user message that follows an assistant message
 * carries a correction/repeat/rejection cue, or an assistant message that follows a user message admits
 * a mistake. The first such message (in conversation order) names the cue in the reason.
 *
 * @example
 * decideVerdict([{ role: "user", content: "Sum 2+2" }, { role: "assistant", content: "5" }, { role: "user", content: "That's wrong" }]);
 * // → { perceived_error: true, reason: 'The user corrects the assistant ("that\'s wrong").' }
 */
export function decideVerdict(messages: readonly TranscriptMessage[]): Verdict {
  let seenUser = false;
  let seenAssistant = false;
  for (const message of messages) {
    const text = normalize(message.content);
    if (message.role === "user") {
      const hit = seenAssistant ? firstCue(text, USER_MATCHERS) : undefined;
      if (hit) return { perceived_error: true, reason: hit.reason };
      seenUser = true;
    } else if (message.role === "assistant") {
      const hit = seenUser ? firstCue(text, ASSISTANT_MATCHERS) : undefined;
      if (hit) return { perceived_error: true, reason: hit.reason };
      seenAssistant = true;
    }
  }
  return { perceived_error: false, reason: NO_PROBLEM_REASON };
}

/** The reply text the simulated judge sends: `{"perceived_error": true, "reason": "..."}`. */
export function verdictContent(verdict: Verdict): string {
  return `{"perceived_error": ${verdict.perceived_error}, "reason": ${JSON.stringify(verdict.reason)}}`;
}

const TranscriptSchema = z.object({
  messages: z.array(z.object({ role: z.string(), content: z.string() })),
});

/**
 * Reads the conversation out of the judge's user message: a header line, "\n", then
 * `JSON.stringify({ messages })`. Anything else is treated as one user message, as the contract says.
 */
export function parseTranscript(userContent: string): TranscriptMessage[] {
  const newline = userContent.indexOf("\n");
  if (newline >= 0) {
    try {
      const parsed = TranscriptSchema.safeParse(JSON.parse(userContent.slice(newline + 1)));
      if (parsed.success) return parsed.data.messages;
    } catch {
      // Not JSON: fall through to the single-message reading.
    }
  }
  return [{ role: "user", content: userContent }];
}
