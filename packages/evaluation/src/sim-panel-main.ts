/**
 * Starts the simulated panel (simulator + verdict-flipping proxy) until Ctrl-C, for trying
 * `tracesift eval|label` on the sample data: `pnpm exec tsx packages/evaluation/src/sim-panel-main.ts`.
 */
import { SAMPLE_PANEL_RULES, startSimPanel } from "./sim-panel.ts";

const port = Number(process.env.SIM_PANEL_PORT ?? 8790);
const panel = await startSimPanel({ port });
process.stdout.write(
  `simulated panel on ${panel.url}\n` +
    `dissenting models: ${Object.entries(SAMPLE_PANEL_RULES)
      .map(([model, rule]) => `${model} (flips ${Math.round(rule.share * 100)}%)`)
      .join(", ")}; any other model id answers like the simulator\n` +
    "Ctrl-C to stop\n",
);
const stop = () => {
  process.stdout.write(`stopping; ${panel.simulator.stats().requests} chat requests served\n`);
  void panel.close().then(() => process.exit(0));
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
