import type { TokenUsage } from "@tracesift/schemas";
import { z } from "zod";

/** USD per 1M tokens. */
export const TokenPrice = z.object({
  input: z.number().nonnegative(),
  cached_input: z.number().nonnegative().optional(),
  output: z.number().nonnegative(),
});
export type TokenPrice = z.infer<typeof TokenPrice>;

/**
 * Fireworks serverless list prices (mid-2026) as defaults; deployments and fine-tunes are
 * overridden in config (JUDGE_PRICING). Cached input defaults to half the input price.
 */
export const DEFAULT_PRICES: Record<string, TokenPrice> = {
  "accounts/fireworks/models/qwen3p5-35b-a3b": { input: 0.5, cached_input: 0.25, output: 0.5 },
  "accounts/fireworks/models/qwen3-30b-a3b": { input: 0.15, cached_input: 0.075, output: 0.6 },
  "*": { input: 0.5, cached_input: 0.25, output: 0.5 },
};

export const PricingTable = z.record(z.string(), TokenPrice);
export type PricingTable = z.infer<typeof PricingTable>;

export function priceFor(table: PricingTable, model: string): TokenPrice {
  return table[model] ?? DEFAULT_PRICES[model] ?? table["*"] ?? DEFAULT_PRICES["*"]!;
}

export function tokenCostUsd(usage: TokenUsage, price: TokenPrice): number {
  const cached = Math.min(usage.cached_prompt_tokens, usage.prompt_tokens);
  const uncached = usage.prompt_tokens - cached;
  const cachedPrice = price.cached_input ?? price.input / 2;
  const usd = (uncached * price.input + cached * cachedPrice + usage.completion_tokens * price.output) / 1_000_000;
  // Round to a micro-dollar fraction so sums in dashboards do not show float noise.
  return Math.round(usd * 1e9) / 1e9;
}
