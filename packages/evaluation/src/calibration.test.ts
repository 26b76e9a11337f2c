import { describe, expect, it } from "vitest";
import { calibrationOf, escalationOf, inBand, type ScoredVerdict, UncertainBand } from "./calibration.ts";

const v = (id: string, label: boolean, predicted: boolean, confidence?: number): ScoredVerdict => ({
  conversation_id: id,
  label,
  predicted,
  ...(confidence === undefined ? {} : { confidence }),
});

describe("UNCERTAIN_BAND", () => {
  it("parses LOW-HIGH and rejects the rest", () => {
    expect(UncertainBand.parse("0.35-0.65")).toEqual({ low: 0.35, high: 0.65 });
    expect(UncertainBand.safeParse("0.7-0.3").success).toBe(false);
    expect(UncertainBand.safeParse("1.5-2").success).toBe(false);
    expect(inBand(0.5, { low: 0.35, high: 0.65 })).toBe(true);
    expect(inBand(undefined, { low: 0, high: 1 })).toBe(false);
  });
});

describe("calibrationOf", () => {
  it("bins by confidence and weighs each bin's gap by its size", () => {
    // Bin [0.9,1.0): 4 verdicts at 0.95, 3 right (0.75) → gap 0.2. Bin [0.6,0.7): 1 at 0.6, right → gap 0.4.
    const verdicts = [v("a", true, true, 0.95), v("b", true, true, 0.95), v("c", false, false, 0.95), v("d", true, false, 0.95), v("e", false, false, 0.6), v("f", true, true)];
    const c = calibrationOf(verdicts);
    expect(c.n).toBe(5);
    expect(c.bins[9]).toMatchObject({ n: 4, accuracy: 0.75 });
    expect(c.bins[9]!.mean_confidence).toBeCloseTo(0.95);
    expect(c.bins[6]).toMatchObject({ n: 1, accuracy: 1 });
    expect(c.ece).toBeCloseTo((4 / 5) * 0.2 + (1 / 5) * 0.4, 9);
  });

  it("puts confidence 1 in the last bin and has no ECE without confidences", () => {
    expect(calibrationOf([v("a", true, true, 1)]).bins[9]!.n).toBe(1);
    expect(calibrationOf([v("a", true, true)]).ece).toBeNull();
  });
});

describe("escalationOf", () => {
  it("reports accuracy inside and outside the band, if reviewed and if escalated to another judge", () => {
    const verdicts = [v("a", true, true, 0.9), v("b", false, true, 0.5), v("c", true, false, 0.55), v("d", false, false, 0.99)];
    const other = new Map([["b", false], ["c", false]]);
    const e = escalationOf(verdicts, { low: 0.35, high: 0.65 }, [{ judge: "arbiter", verdicts: other }]);
    expect(e).toMatchObject({ in_band: 2, in_band_share: 0.5, accuracy: 0.5, accuracy_in_band: 0, accuracy_outside_band: 1, accuracy_if_reviewed: 1 });
    expect(e.accuracy_if_escalated_to).toEqual([{ judge: "arbiter", accuracy: 0.75 }]);
  });
});
