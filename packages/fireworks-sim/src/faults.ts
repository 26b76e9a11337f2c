import type { FaultRates, InjectedFault, MalformedVariant } from "./options.ts";
import { type Verdict, verdictContent } from "./verdict.ts";

/** Per-conversation instructions hidden in message text, for end-to-end tests that need determinism. */
export type Directives = {
  malformed?: MalformedVariant;
  /** Ids from `[sim:fail-once:<id>]`: the first request carrying an unseen id gets a 500. */
  failOnceIds: string[];
  /** Sum of `[sim:slow:<ms>]` delays. */
  slowMs: number;
};

const MALFORMED = /\[sim:malformed(?::(prose|wrong-keys|truncated))?\]/;
const FAIL_ONCE = /\[sim:fail-once:([^\]\s]+)\]/g;
const SLOW = /\[sim:slow:(\d+)\]/g;

export function readDirectives(contents: readonly string[]): Directives {
  // Every directive is "[sim:...]" inside one message (none spans the "\n" joints), so requests without
  // one, nearly all of them, skip joining a possibly large prompt and scanning it three times.
  if (!contents.some((c) => c.includes("[sim:"))) return { failOnceIds: [], slowMs: 0 };
  const text = contents.join("\n");
  const malformed = MALFORMED.exec(text);
  return {
    ...(malformed ? { malformed: (malformed[1] as MalformedVariant | undefined) ?? "prose" } : {}),
    failOnceIds: [...text.matchAll(FAIL_ONCE)].map((m) => m[1]!),
    slowMs: [...text.matchAll(SLOW)].reduce((sum, m) => sum + Number(m[1]), 0),
  };
}

/** Injected faults, consumed one per chat request before anything else, then random draws from the rates. */
export class FaultPlan {
  private queue: InjectedFault[] = [];
  private readonly failedOnce = new Set<string>();

  inject(faults: readonly InjectedFault[]): void {
    this.queue.push(...faults);
  }

  pending(): number {
    return this.queue.length;
  }

  /** The fault for this request, if any: the queue first, then one draw against the configured rates. */
  next(rates: FaultRates, random: () => number): { fault: InjectedFault; source: string } | undefined {
    const queued = this.queue.shift();
    if (queued) return { fault: queued, source: `injected ${queued.kind}` };
    const r = random();
    let edge = 0;
    const table: [number | undefined, InjectedFault["kind"], string][] = [
      [rates.rate429, "429", "rate429"],
      [rates.rate500, "500", "rate500"],
      [rates.rate503, "503", "rate503"],
      [rates.rateTimeout, "timeout", "rateTimeout"],
      [rates.rateMalformed, "malformed", "rateMalformed"],
    ];
    for (const [p, kind, source] of table) {
      edge += p ?? 0;
      if (r < edge) return { fault: { kind }, source };
    }
    return undefined;
  }

  /** True if some fail-once id is new (all of them are remembered from now on). */
  failOnce(ids: readonly string[]): boolean {
    const fresh = ids.filter((id) => !this.failedOnce.has(id));
    for (const id of fresh) this.failedOnce.add(id);
    return fresh.length > 0;
  }

  clear(): void {
    this.queue = [];
    this.failedOnce.clear();
  }
}

/** Replies a badly behaved model gives instead of the requested JSON. */
export function malformedContent(variant: MalformedVariant, verdict: Verdict): string {
  switch (variant) {
    case "prose":
      return verdict.perceived_error
        ? "Sure! The user seems upset with the assistant's answer."
        : "Sure! The conversation looks fine to me.";
    case "wrong-keys":
      return JSON.stringify({ error: verdict.perceived_error ? "yes" : "no", explanation: verdict.reason });
    case "truncated": {
      const full = verdictContent(verdict);
      return full.slice(0, Math.ceil(full.length / 2));
    }
  }
}
