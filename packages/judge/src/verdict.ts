import { type TokenUsage, Verdict } from "@tracesift/schemas";

export class InvalidOutputError extends Error {
  override name = "InvalidOutputError";
  /** What the provider billed for the call that produced it: invalid output is paid like any answer. */
  usage?: TokenUsage;
  latencyMs?: number;
  constructor(
    message: string,
    readonly raw: string,
  ) {
    super(message);
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
