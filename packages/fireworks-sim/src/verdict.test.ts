import { describe, expect, it } from "vitest";
import { transcript } from "./test-client.ts";
import { decideVerdict, NO_PROBLEM_REASON, parseTranscript, verdictContent } from "./verdict.ts";

const u = (content: string) => ({ role: "user", content });
const a = (content: string) => ({ role: "assistant", content });

describe("decideVerdict", () => {
  it.each([
    ["That's wrong, it is Canberra.", "that's wrong"],
    ["No, I meant the other file", "no,"],
    ["This is not what I asked for", "not what i asked"],
    ["I ALREADY TOLD YOU to use tabs", "i already told you"],
    ["please try again", "try again"],
    ["It’s still not compiling", "still not"],
    ["Stop.", "stop"],
    ["undo that change", "undo"],
    ["You misunderstood me", "you misunderstood"],
  ])("flags %j after an assistant reply", (text, cue) => {
    const verdict = decideVerdict([u("Do the thing"), a("Done."), u(text)]);
    expect(verdict.perceived_error).toBe(true);
    expect(verdict.reason).toContain(`("${cue}")`);
  });

  it("names the correction in the reason", () => {
    expect(decideVerdict([u("2+2?"), a("5"), u("That's wrong")])).toEqual({
      perceived_error: true,
      reason: 'The user corrects the assistant ("that\'s wrong").',
    });
  });

  it("ignores cues before the assistant has spoken", () => {
    expect(decideVerdict([u("What's wrong with my code? Stop the loop."), a("The loop never ends."), u("Thanks!")])).toEqual({
      perceived_error: false,
      reason: NO_PROBLEM_REASON,
    });
  });

  it("matches whole words only", () => {
    const verdict = decideVerdict([u("Tune it"), a("Done."), u("The piano, the stopwatch and the wrongdoer are fine. Thank you")]);
    expect(verdict.perceived_error).toBe(false);
  });

  it("treats any letter or digit, not only ASCII, as part of a word", () => {
    const flags = (text: string) => decideVerdict([u("Go"), a("Done."), u(text)]).perceived_error;
    expect(flags("wrong")).toBe(true);
    expect(flags("(wrong)")).toBe(true);
    expect(flags("😀wrong😀")).toBe(true);
    expect(flags("éwrong")).toBe(false);
    expect(flags("wrongé")).toBe(false);
    expect(flags("𝐀wrong")).toBe(false);
    expect(flags("2wrong")).toBe(false);
    expect(flags("stopwatch, then stop")).toBe(true);
  });

  it("flags an assistant admitting a mistake after the user spoke", () => {
    const verdict = decideVerdict([u("Sort this"), a("Done."), u("Thanks"), a("Actually, my mistake: it was not sorted.")]);
    expect(verdict).toEqual({ perceived_error: true, reason: 'The assistant acknowledges a mistake ("my mistake").' });
  });

  it("ignores an apology before any user message", () => {
    expect(decideVerdict([a("I apologize for the wait, how can I help?"), u("Hi")]).perceived_error).toBe(false);
  });

  it("reports the first cue in conversation order", () => {
    const verdict = decideVerdict([u("Go"), a("Ok"), u("I said blue"), a("I apologize"), u("wrong")]);
    expect(verdict.reason).toBe('The user has to repeat the request ("i said").');
  });

  it("returns false for an empty conversation", () => {
    expect(decideVerdict([]).perceived_error).toBe(false);
  });
});

describe("parseTranscript", () => {
  it("reads the JSON after the header line", () => {
    const messages = [u("hi"), a("hello")];
    expect(parseTranscript(transcript(messages))).toEqual(messages);
  });

  it("falls back to one user message when the JSON is missing or malformed", () => {
    expect(parseTranscript("just text")).toEqual([u("just text")]);
    expect(parseTranscript("header\n{not json")).toEqual([u("header\n{not json")]);
    expect(parseTranscript('header\n{"turns": []}')).toEqual([u('header\n{"turns": []}')]);
  });
});

it("verdictContent renders the judge's JSON", () => {
  const content = verdictContent({ perceived_error: false, reason: 'a "quoted" reason' });
  expect(content).toBe('{"perceived_error": false, "reason": "a \\"quoted\\" reason"}');
  expect(JSON.parse(content)).toEqual({ perceived_error: false, reason: 'a "quoted" reason' });
});
