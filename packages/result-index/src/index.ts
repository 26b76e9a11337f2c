/**
 * Which conversation versions have been judged by which judge. Replays skip what is already
 * judged (same conversation state, same model, same prompt version), and `eval` uses it as a
 * verdict cache, so re-running either costs no model calls for work already done.
 */
import { createHash } from "node:crypto";
import { type ConversationVersion, type JudgeIdentity, JudgedResult } from "@tracesift/schemas";
import type { Redis } from "ioredis";

export type ResultKey = { conversationId: string; version: ConversationVersion; judge: JudgeIdentity };

export class ResultIndex {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** Entries expire: an index is an optimisation over the output topic, not the record of truth. */
    private readonly ttlSeconds = 90 * 24 * 3600,
  ) {}

  private key(k: ResultKey): string {
    const h = createHash("sha256")
      .update(`${k.conversationId}\u0000${k.version.content_hash}\u0000${k.judge.model}\u0000${k.judge.prompt_version}`)
      .digest("hex")
      .slice(0, 32);
    return `${this.prefix}:result:${h}`;
  }

  async get(k: ResultKey): Promise<JudgedResult | null> {
    const raw = await this.redis.get(this.key(k));
    if (!raw) return null;
    const parsed = JudgedResult.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  }

  /** Which of many keys are judged already, in one round trip. */
  async has(keys: ResultKey[]): Promise<boolean[]> {
    if (keys.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const k of keys) pipeline.exists(this.key(k));
    const answers = (await pipeline.exec()) ?? [];
    // A failed lookup is not "not judged": that answer would judge (and bill) the conversation again.
    const failed = answers.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
    return answers.map(([, n]) => n === 1);
  }

  /** `json` is the result as already serialized for the output topic, when the caller has it. */
  async put(result: JudgedResult, json = JSON.stringify(result)): Promise<void> {
    await this.redis.set(
      this.key({ conversationId: result.conversation_id, version: result.conversation_version, judge: result.judge }),
      json,
      "EX",
      this.ttlSeconds,
    );
  }
}
