import { describe, expect, it } from "vitest";
import { fleissKappa, pairwiseAgreement } from "./agreement.ts";

describe("fleissKappa", () => {
  it("matches a hand computation", () => {
    // 4 conversations × 3 raters (k = 3):
    //   [T,T,T] → P = (3² + 0² − 3) / (3·2) = 1
    //   [F,F,F] → 1
    //   [T,T,F] → (2² + 1² − 3) / 6 = 1/3
    //   [F,F,T] → 1/3
    // P̄ = (1 + 1 + 1/3 + 1/3) / 4 = 2/3
    // p(T) = (3 + 0 + 2 + 1) / 12 = 0.5, p(F) = 0.5 → P̄e = 0.25 + 0.25 = 0.5
    // kappa = (2/3 − 1/2) / (1 − 1/2) = 1/3
    const r = fleissKappa([
      [true, true, true],
      [false, false, false],
      [true, true, false],
      [false, false, true],
    ]);
    expect(r.subjects).toBe(4);
    expect(r.observed).toBeCloseTo(2 / 3, 12);
    expect(r.expected).toBeCloseTo(0.5, 12);
    expect(r.kappa).toBeCloseTo(1 / 3, 12);
  });

  it("skips conversations a rater did not answer, and is null when undefined", () => {
    expect(fleissKappa([[true, null, true], [true, true, true]]).subjects).toBe(1);
    expect(fleissKappa([[true, true]]).kappa).toBeNull(); // everyone always says yes: P̄e = 1
    expect(fleissKappa([]).kappa).toBeNull();
  });
});

describe("pairwiseAgreement", () => {
  it("compares every pair on the rows both answered", () => {
    const pairs = pairwiseAgreement(
      [
        [true, true, false],
        [false, false, false],
        [true, null, true],
        [false, true, false],
      ],
      ["a", "b", "c"],
    );
    expect(pairs.map((p) => [p.a, p.b, p.n, p.agreement])).toEqual([
      ["a", "b", 3, 2 / 3],
      ["a", "c", 4, 3 / 4],
      ["b", "c", 3, 1 / 3],
    ]);
    // a vs c: TP 1, FP 0, FN 1, TN 2 → po 0.75, pe = (1·2 + 3·2)/16 = 0.5, kappa 0.5
    expect(pairs[1]!.kappa).toBeCloseTo(0.5, 12);
  });
});
