import type { TokenUsage } from "@tracesift/schemas";
import { z } from "zod";

/** Serverless: USD per 1M tokens. */
export const TokenPrice = z.object({
  input: z.number().nonnegative(),
  cached_input: z.number().nonnegative().optional(),
  output: z.number().nonnegative(),
});
export type TokenPrice = z.infer<typeof TokenPrice>;

/**
 * Dedicated deployments (how LoRA fine-tunes are served) bill GPU-hours, not tokens. A verdict's
 * share is its GPU time: latency × hourly price ÷ the requests the deployment serves at once.
 * The bill itself is hours × price, whatever the traffic.
 */
export const GpuHourPrice = z.object({
  usd_per_gpu_hour: z.number().nonnegative(),
  gpus: z.number().int().positive().default(1),
  /** Requests the deployment serves concurrently at full load. */
  parallelism: z.number().int().positive().default(16),
});
export type GpuHourPrice = z.infer<typeof GpuHourPrice>;

export const Price = z.union([TokenPrice, GpuHourPrice]);
export type Price = z.infer<typeof Price>;

/**
 * Fireworks serverless list prices (mid-2026) as defaults; deployments and fine-tunes are
 * overridden in config (JUDGE_PRICING). Cached input defaults to half the input price.
 */
export const DEFAULT_PRICES: Record<string, Price> = {
  "accounts/fireworks/models/qwen3p5-35b-a3b": { input: 0.5, cached_input: 0.25, output: 0.5 },
  "accounts/fireworks/models/qwen3-30b-a3b": { input: 0.15, cached_input: 0.075, output: 0.6 },
  "*": { input: 0.5, cached_input: 0.25, output: 0.5 },
};

export const PricingTable = z.record(z.string(), Price);
export type PricingTable = z.infer<typeof PricingTable>;

export function priceFor(table: PricingTable, model: string): Price {
  return table[model] ?? DEFAULT_PRICES[model] ?? table["*"] ?? DEFAULT_PRICES["*"]!;
}

export function tokenCostUsd(usage: TokenUsage, price: TokenPrice): number {
  const cached = Math.min(usage.cached_prompt_tokens, usage.prompt_tokens);
  const uncached = usage.prompt_tokens - cached;
  const cachedPrice = price.cached_input ?? price.input / 2;
  const usd = (uncached * price.input + cached * cachedPrice + usage.completion_tokens * price.output) / 1_000_000;
  return round(usd);
}

/** Cost of one call under either billing mode. */
export function callCostUsd(usage: TokenUsage, latencyMs: number, price: Price): number {
  if ("usd_per_gpu_hour" in price) {
    return round((price.usd_per_gpu_hour * price.gpus * (latencyMs / 3_600_000)) / price.parallelism);
  }
  return tokenCostUsd(usage, price);
}

// Nano-dollar precision keeps sums in dashboards free of float noise.
function round(usd: number): number {
  return Math.round(usd * 1e9) / 1e9;
}
