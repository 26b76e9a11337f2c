/**
 * Which conversation versions have been judged by which judge. Replays skip what is already
 * judged (same conversation state, same model, same prompt version), and `eval` uses it as a
 * verdict cache, so re-running either costs no model calls for work already done. Judge workers
 * check it before every call, so a redelivery of any age within the TTL is never paid twice (BullMQ's
 * completed-job ids are not kept for that), and keep each paid verdict here until it is published.
 * The output topic is the record of truth: `tracesift recover` rebuilds the index from it.
 */
import { createHash } from "node:crypto";
import { type ConversationVersion, type JudgeIdentity, JudgedResult } from "@tracesift/schemas";
import type { Redis } from "ioredis";

export type ResultKey = { conversationId: string; version: ConversationVersion; judge: JudgeIdentity };

/** Longer than any outage publishing is expected to outlast, short enough not to pile up. */
const KEPT_TTL_SECONDS = 14 * 24 * 3600;

export class ResultIndex {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** Entries expire: an index is an optimisation over the output topic, not the record of truth. */
    private readonly ttlSeconds = 90 * 24 * 3600,
  ) {}

  private hash(k: ResultKey): string {
    return createHash("sha256")
      .update(`${k.conversationId}\u0000${k.version.content_hash}\u0000${k.judge.model}\u0000${k.judge.prompt_version}`)
      .digest("hex")
      .slice(0, 32);
  }

  private key(k: ResultKey): string {
    return `${this.prefix}:result:${this.hash(k)}`;
  }

  /** A verdict paid for but not yet on the output topic. */
  private keptKey(k: ResultKey): string {
    return `${this.prefix}:kept:${this.hash(k)}`;
  }

  private recordKey(id: string): string {
    return `${this.prefix}:written:${id}`;
  }

  /**
   * Where a conversation version stands with this judge, in one round trip: already published
   * (nothing to do, nothing to pay), paid for and kept but not yet published (publish the kept
   * verdict), or neither (call the model).
   */
  async lookup(k: ResultKey): Promise<{ published: boolean; kept: JudgedResult | null }> {
    const [published, kept] = (await this.redis.pipeline().exists(this.key(k)).get(this.keptKey(k)).exec()) ?? [];
    if (published?.[0]) throw published[0];
    if (kept?.[0]) throw kept[0];
    const raw = kept?.[1];
    const parsed = typeof raw === "string" ? JudgedResult.safeParse(JSON.parse(raw)) : null;
    return { published: published?.[1] === 1, kept: parsed?.success ? parsed.data : null };
  }

  /** Keep a paid verdict before publishing it: a retry then publishes it instead of paying again. */
  async keep(result: JudgedResult, json = JSON.stringify(result)): Promise<void> {
    await this.redis.set(this.keptKey(this.resultKey(result)), json, "EX", KEPT_TTL_SECONDS);
  }

  /** The verdict is on the output topic: index it, and drop the kept copy. */
  async published(result: JudgedResult, json = JSON.stringify(result)): Promise<void> {
    const k = this.resultKey(result);
    const answers = (await this.redis.multi().set(this.key(k), json, "EX", this.ttlSeconds).del(this.keptKey(k)).exec()) ?? [];
    for (const [err] of answers) if (err) throw err;
  }

  /**
   * Which skipped results and dead letters (by `result_id` / `dead_letter_id`) were already
   * written: a redelivery or a replay would write them again.
   */
  async recordsWritten(ids: string[]): Promise<boolean[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.exists(this.recordKey(id));
    const answers = (await pipeline.exec()) ?? [];
    return answers.map(([, n]) => n === 1);
  }

  /** Marked only once Kafka acknowledged them: a mark before that could lose a letter. */
  async markRecords(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.set(this.recordKey(id), "1", "EX", this.ttlSeconds);
    await pipeline.exec();
  }

  private resultKey(result: JudgedResult): ResultKey {
    return { conversationId: result.conversation_id, version: result.conversation_version, judge: result.judge };
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
    await this.redis.set(this.key(this.resultKey(result)), json, "EX", this.ttlSeconds);
  }
}
