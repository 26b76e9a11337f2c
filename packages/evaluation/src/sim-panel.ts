/**
 * A simulated panel of disagreeing models for demos and tests: one Fireworks simulator behind a
 * verdict-flipping proxy. Every model id works; the ones in `rules` dissent on a fixed share of
 * conversations, the others answer like the simulator (cue-based, see fireworks-sim verdict.ts).
 * Not used by the commands themselves: they only see an OpenAI-compatible endpoint.
 */
import { createSimulator, type Simulator } from "@tracesift/fireworks-sim";
import { type FlipProxy, type FlipRule, startFlipProxy } from "./flip-proxy.ts";

/** The model ids of the sample configs (services/cli/samples/eval/*.json). */
export const SAMPLE_PANEL_RULES: Record<string, FlipRule> = {
  "sim-judge-b": { share: 0.2, salt: "judge-b" },
  "sim-judge-c": { share: 0.2, salt: "judge-c" },
  "sim-arbiter-b": { share: 0.2, salt: "arbiter-b" },
};

export type SimPanel = { url: string; simulator: Simulator; proxy: FlipProxy; close: () => Promise<void> };

export async function startSimPanel(options: { port?: number; host?: string; rules?: Record<string, FlipRule>; latencyMs?: number } = {}): Promise<SimPanel> {
  const simulator = createSimulator({ latencyMs: options.latencyMs ?? 5, latencyJitterMs: options.latencyMs ?? 5, seed: 7 });
  const upstream = await simulator.listen(0, "127.0.0.1");
  const proxy = await startFlipProxy({
    upstream: upstream.url,
    rules: options.rules ?? SAMPLE_PANEL_RULES,
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.host !== undefined ? { host: options.host } : {}),
  });
  return {
    url: proxy.url,
    simulator,
    proxy,
    close: async () => {
      await proxy.close();
      await simulator.close();
    },
  };
}
