/**
 * `scripts/dev.sh faults [--short]`: the fault suite as a command. Prints one table row per phase
 * and exits non-zero if any phase lost an event, paid a verdict twice or wrote a letter without
 * its reason.
 */
import { parseArgs } from "node:util";
import { formatRow, phasePassed, runFaultSuite, TABLE_HEADER } from "./suite.ts";

let short = false;
try {
  short = parseArgs({ options: { short: { type: "boolean" } }, strict: true }).values.short ?? false;
} catch (err) {
  process.stderr.write(`faults: ${err instanceof Error ? err.message : String(err)} (usage: scripts/dev.sh faults [--short])\n`);
  process.exit(2);
}
const started = Date.now();
const rows = await runFaultSuite({ short, log: (line) => process.stderr.write(`${line}\n`) });
process.stdout.write(`\n${TABLE_HEADER}\n${rows.map(formatRow).join("\n")}\n`);
const failed = rows.filter((r) => !phasePassed(r));
process.stdout.write(`\nfaults: ${rows.length - failed.length}/${rows.length} phases held the promise (0 lost, 0 paid twice) in ${Math.round((Date.now() - started) / 1000)} s\n`);
process.exit(failed.length === 0 ? 0 : 1);
