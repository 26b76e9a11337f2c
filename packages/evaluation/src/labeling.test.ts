import { describe, expect, it } from "vitest";
import { decide, type Vote } from "./labeling.ts";

const yes = (judge: string): Vote => ({ judge, model: judge, perceived_error: true, reason: `${judge} sees an error` });
const no = (judge: string): Vote => ({ judge, model: judge, perceived_error: false, reason: `${judge} sees none` });
const invalid = (judge: string): Vote => ({ judge, model: judge, error: "model output is not JSON" });

describe("decide", () => {
  it("takes a unanimous panel's verdict with the first judge's reason", () => {
    expect(decide([yes("a"), yes("b"), yes("c")])).toEqual({ kind: "unanimous", verdict: { perceived_error: true, reason: "a sees an error" } });
  });

  it("asks the arbiters when the panel splits or a judge gave no valid answer", () => {
    expect(decide([yes("a"), no("b"), yes("c")]).kind).toBe("needs_arbiters");
    expect(decide([no("a"), no("b"), invalid("c")]).kind).toBe("needs_arbiters");
  });

  it("takes agreeing arbiters' verdict, and sends the rest to people", () => {
    const panel = [yes("a"), no("b"), yes("c")];
    expect(decide(panel, [no("x"), no("y")])).toEqual({ kind: "arbitrated", verdict: { perceived_error: false, reason: "x sees none" } });
    expect(decide(panel, [no("x"), yes("y")]).kind).toBe("human_review");
    expect(decide(panel, [no("x"), invalid("y")]).kind).toBe("human_review");
    expect(decide(panel, []).kind).toBe("human_review");
  });
});
