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

type Matcher = { cue: string; pattern: string; reason: string };

function matcher(cue: string, reason: string): Matcher {
  // The start is guarded in cueSet; every cue begins with a letter or digit, which that relies on.
  if (!/^[\p{L}\p{N}]/u.test(cue)) throw new Error(`cue ${JSON.stringify(cue)} must start with a letter or digit`);
  const escaped = cue.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  // \b is ASCII-only and meaningless next to punctuation ("no,"), so only an end that is a letter is guarded.
  const end = /[\p{L}\p{N}]$/u.test(cue) ? "(?![\\p{L}\\p{N}])" : "";
  return { cue, pattern: `${escaped}${end}`, reason };
}

/**
 * All of a role's cues in one regex, so a message is scanned once rather than once per cue (the
 * simulator's hottest loop on large conversations): the start of the text or a character that is not
 * a letter or digit, then any cue (captured). Matches are found in the order the cues start, and at
 * one position the longer cues are tried first, so the longer cue wins a tie ("that's wrong" over
 * "wrong"). Consuming the character before the cue scans faster than a lookbehind on each cue.
 */
type CueSet = { pattern: RegExp; reasons: Map<string, string> };

function cueSet(matchers: readonly Matcher[]): CueSet {
  const longestFirst = [...matchers].sort((a, b) => b.cue.length - a.cue.length);
  const reasons = new Map<string, string>();
  for (const m of longestFirst) if (!reasons.has(m.cue)) reasons.set(m.cue, m.reason);
  const cues = longestFirst.map((m) => m.pattern).join("|");
  return { pattern: new RegExp(`(?:^|[^\\p{L}\\p{N}])(${cues})`, "u"), reasons };
}

const USER_CUE_SET = cueSet(
  (Object.keys(USER_CUES) as CueKind[]).flatMap((kind) => USER_CUES[kind].map((cue) => matcher(cue, USER_REASON[kind](cue)))),
);
const ASSISTANT_CUE_SET = cueSet(ASSISTANT_CUES.map((cue) => matcher(cue, `The assistant acknowledges a mistake ("${cue}").`)));

/** Lower-cases and straightens typographic apostrophes, so "That’s wrong" matches "that's wrong". */
function normalize(text: string): string {
  return text.toLowerCase().replace(/[\u2018\u2019\u02bc]/g, "'");
}

/** The reason for the cue that starts earliest in the text; on a tie the longer cue wins. */
function firstCue(text: string, cues: CueSet): string | undefined {
  // The captured text is exactly one cue: the cues are literals and `text` is already lower-cased.
  const match = cues.pattern.exec(text);
  return match ? cues.reasons.get(match[1]!) : undefined;
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
    if (message.role === "user") {
      const hit = seenAssistant ? firstCue(normalize(message.content), USER_CUE_SET) : undefined;
      if (hit) return { perceived_error: true, reason: hit };
      seenUser = true;
    } else if (message.role === "assistant") {
      const hit = seenUser ? firstCue(normalize(message.content), ASSISTANT_CUE_SET) : undefined;
      if (hit) return { perceived_error: true, reason: hit };
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
