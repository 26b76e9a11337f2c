import { describe, expect, it } from "vitest";
import { readTokenLogprobs, verdictConfidence } from "./confidence.ts";

const tok = (token: string, logprob: number, top: [string, number][] = []) => ({
  token,
  logprob,
  top_logprobs: top.map(([t, lp]) => ({ token: t, logprob: lp })),
});

describe("verdictConfidence", () => {
  it("reads the probability of the chosen value at the token after the key, renormalised over true/false", () => {
    const logprobs = {
      content: [
        tok('{"', -0.001),
        tok("perceived", -0.001),
        tok("_error", -0.001),
        tok('":', -0.001),
        tok(" true", Math.log(0.6), [[" true", Math.log(0.6)], [" false", Math.log(0.3)], [" null", Math.log(0.1)]]),
        tok(",", -0.001),
      ],
    };
    expect(verdictConfidence(logprobs, true)).toBeCloseTo(0.6 / 0.9, 6);
  });

  it("sums alternatives that spell the same value", () => {
    const logprobs = {
      content: [
        tok('{"perceived_error":', -0.01),
        tok("false", Math.log(0.5), [["false", Math.log(0.5)], [" false", Math.log(0.3)], ["true", Math.log(0.2)]]),
      ],
    };
    expect(verdictConfidence(logprobs, false)).toBeCloseTo(0.8, 6);
  });

  it("handles a token that carries both the key's tail and the value", () => {
    const logprobs = {
      content: [tok('{"perceived_error', -0.01), tok('":true', Math.log(0.7), [['":true', Math.log(0.7)], ['":false', Math.log(0.3)]])],
    };
    expect(verdictConfidence(logprobs, true)).toBeCloseTo(0.7, 6);
  });

  it("uses the chosen token's own probability without alternatives", () => {
    expect(verdictConfidence({ content: [tok('{"perceived_error": ', 0), tok("true", Math.log(0.9))] }, true)).toBeCloseTo(0.9, 6);
  });

  it("reads Fireworks' completions-style shape", () => {
    const logprobs = {
      tokens: ['{"perceived_error":', " false"],
      token_logprobs: [-0.01, Math.log(0.75)],
      top_logprobs: [null, { " false": Math.log(0.75), " true": Math.log(0.25) }],
    };
    expect(verdictConfidence(logprobs, false)).toBeCloseTo(0.75, 6);
  });

  it.each([
    ["no logprobs", null],
    ["empty content", { content: [] }],
    ["no perceived_error key", { content: [tok('{"reason": "x"}', -0.1)] }],
    ["value not among the tokens", { content: [tok('{"perceived_error": ', -0.1)] }],
  ])("is absent with %s: never invented", (_name, logprobs) => {
    expect(verdictConfidence(logprobs, true)).toBeUndefined();
  });

  it("is absent when the deciding token disagrees with the parsed verdict", () => {
    expect(verdictConfidence({ content: [tok('{"perceived_error": ', 0), tok("false", -0.1)] }, true)).toBeUndefined();
  });

  it("rejects shapes it does not know", () => {
    expect(readTokenLogprobs({ content: [{ token: 1 }] })).toBeUndefined();
  });
});
