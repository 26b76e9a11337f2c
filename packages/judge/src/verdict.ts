import { type TokenUsage, Verdict } from "@tracesift/schemas";

/** What the provider billed for a call: a malformed answer is still paid and still metered. */
export type BilledCall = { usage: TokenUsage; latencyMs: number; headers: Headers };

export class InvalidOutputError extends Error {
  override name = "InvalidOutputError";
  /** Set by the judge client (absent only when parseVerdict is called on text alone). */
  readonly usage?: TokenUsage;
  readonly latencyMs?: number;
  readonly headers?: Headers;
  constructor(
    message: string,
    readonly raw: string,
    billed?: BilledCall,
  ) {
    super(message);
    if (billed) {
      this.usage = billed.usage;
      this.latencyMs = billed.latencyMs;
      this.headers = billed.headers;
    }
  }
}

/**
 * Parse the model's answer into a Verdict. Tolerates what well-behaved models wrap around JSON
 * (a thinking block, a code fence) but never guesses: anything else is invalid output.
 */
export function parseVerdict(raw: string): Verdict {
  let text = raw.replace(/<think>[\s\S]*?<\/think>/g, "").trim();
  const fenced = /^```(?:json)?\s*([\s\S]*?)\s*```$/.exec(text);
  if (fenced?.[1] !== undefined) text = fenced[1].trim();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InvalidOutputError("model output is not JSON", raw);
  }
  const result = Verdict.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new InvalidOutputError(`model output is not a verdict: ${issue?.path.join(".") || "(root)"} ${issue?.message ?? ""}`.trim(), raw);
  }
  return result.data;
}
