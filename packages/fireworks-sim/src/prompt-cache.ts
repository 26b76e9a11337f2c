import { createHash } from "node:crypto";
import { CHARS_PER_TOKEN, TOKENS_PER_MESSAGE } from "./tokens.ts";

/** Prompt text is cached in blocks of this many characters (64 tokens), as KV caches page it. */
export const CACHE_BLOCK_CHARS = 64 * CHARS_PER_TOKEN;
/** Cached blocks kept per simulator before the least recently used are dropped. */
const MAX_BLOCKS = 500_000;

/** One block of a prompt: the chained hash of everything up to and including it, and its tokens. */
type Block = { key: string; tokens: number };

/**
 * Fireworks-style prompt caching: a prompt's tokens are cached by exact prefix, on the replica that
 * served it. A prompt is split into messages, each message into fixed blocks; each block is keyed by
 * the hash of the whole prefix up to it, so a lookup finds the longest prefix this replica served
 * within the TTL. A later turn of the same conversation (same system prompt, transcript grown at
 * the end) reuses everything but its last partial block and what was appended.
 */
export class PromptCache {
  /** Block key → last use; a Map iterates in insertion order, so re-inserting keeps it LRU. */
  private readonly lastSeen = new Map<string, number>();

  constructor(
    private ttlMs: number,
    private readonly now: () => number,
  ) {}

  setTtl(ttlMs: number): void {
    this.ttlMs = ttlMs;
  }

  /** The prompt's blocks on one replica, ready for lookup() and store(). */
  blocks(replica: number, model: string, messages: readonly { role: string; content: string }[]): Block[] {
    const out: Block[] = [];
    let chain = `${replica}\u0000${model}`;
    for (const m of messages) {
      const text = m.content;
      for (let start = 0, first = true; first || start < text.length; start += CACHE_BLOCK_CHARS, first = false) {
        const piece = text.slice(start, start + CACHE_BLOCK_CHARS);
        chain = createHash("sha1").update(chain).update(first ? `\u0001${m.role}\u0002` : "").update(piece).digest("base64");
        out.push({ key: chain, tokens: Math.ceil(piece.length / CHARS_PER_TOKEN) + (first ? TOKENS_PER_MESSAGE : 0) });
      }
    }
    return out;
  }

  /** Tokens of the longest prefix of `blocks` cached within the TTL. */
  lookup(blocks: readonly Block[]): number {
    const t = this.now();
    let tokens = 0;
    for (const b of blocks) {
      const seen = this.lastSeen.get(b.key);
      if (seen === undefined || t - seen >= this.ttlMs) break;
      tokens += b.tokens;
    }
    return tokens;
  }

  /** Marks every block as served now (the whole prompt is in this replica's cache afterwards). */
  store(blocks: readonly Block[]): void {
    const t = this.now();
    for (const b of blocks) {
      this.lastSeen.delete(b.key);
      this.lastSeen.set(b.key, t);
    }
    if (this.lastSeen.size > MAX_BLOCKS) {
      for (const key of this.lastSeen.keys()) {
        this.lastSeen.delete(key);
        if (this.lastSeen.size <= MAX_BLOCKS * 0.9) break;
      }
    }
  }

  clear(): void {
    this.lastSeen.clear();
  }
}
