/**
 * The short fault suite (`scripts/dev.sh faults --short`) with the tests: every phase must end with
 * every event accounted for and no verdict paid twice. The full suite (2,000+ events, a broker
 * restart too) is `scripts/dev.sh faults`.
 */
import { describe, expect, it } from "vitest";
import { formatRow, runFaultSuite, TABLE_HEADER } from "./faults/suite.ts";

describe("fault suite (short)", () => {
  it("loses nothing and pays nothing twice under kill -9, Redis restarts and loss, provider faults", { timeout: 420_000 }, async () => {
    const rows = await runFaultSuite({ short: true, log: () => undefined });
    const table = `${TABLE_HEADER}\n${rows.map(formatRow).join("\n")}`;
    expect(rows.length, table).toBeGreaterThanOrEqual(6);
    for (const r of rows) {
      expect({ phase: r.phase, lost: r.lost, paidTwice: r.paidTwice, lettersWithoutReason: r.lettersWithoutReason }, table).toEqual({
        phase: r.phase,
        lost: 0,
        paidTwice: 0,
        lettersWithoutReason: 0,
      });
      expect(r.judged + r.skipped + r.deadLettered, table).toBeGreaterThan(0);
    }
    const loss = rows[rows.length - 1]!;
    expect(loss.notes.join(" "), table).toContain("the fleet logged that Redis lost its state");
    // The big events of the first phase were dead-lettered (the 3.2 MB garbage and the 3.9 MB conversation).
    expect(rows[0]!.deadLettered, table).toBeGreaterThanOrEqual(2);
  });
});
