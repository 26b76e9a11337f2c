import { createHash } from "node:crypto";

/**
 * Remembers which static prefixes (system prompts) were served recently, per model, the way Fireworks'
 * prompt cache does: a prefix reused within the TTL is reported as cached tokens.
 */
export class PromptCache {
  private readonly lastSeen = new Map<string, number>();
  /**
   * The last prefix hashed, with its digest: clients send the same system prompt over and over, and
   * comparing it with the last one is much cheaper than hashing it again.
   */
  private last: { prefix: string; digest: string } | undefined;

  constructor(
    private ttlMs: number,
    private readonly now: () => number,
  ) {}

  setTtl(ttlMs: number): void {
    this.ttlMs = ttlMs;
  }

  /** True if the prefix was seen within the TTL; either way it counts as seen now. */
  touch(model: string, prefix: string): boolean {
    if (this.last?.prefix !== prefix) this.last = { prefix, digest: createHash("sha256").update(prefix).digest("hex") };
    const key = `${model}\u0000${this.last.digest}`;
    const t = this.now();
    const previous = this.lastSeen.get(key);
    const hit = previous !== undefined && t - previous < this.ttlMs;
    this.lastSeen.set(key, t);
    if (this.lastSeen.size > 10_000) this.evictExpired(t);
    return hit;
  }

  clear(): void {
    this.lastSeen.clear();
  }

  private evictExpired(t: number): void {
    for (const [key, seen] of this.lastSeen) if (t - seen >= this.ttlMs) this.lastSeen.delete(key);
  }
}
