/**
 * Conversation assembly in Redis. Spans and runs of one conversation arrive separately, out of
 * order and sometimes twice, across many traces and ingest replicas. Fragments are stored per
 * conversation key (a redelivered fragment overwrites itself), and a conversation becomes ready
 * when it has been idle for the window, when an event says it ended, or — in per-turn mode — as
 * soon as a user answers the assistant.
 *
 * Ready conversations are claimed with a lease: if the claimer dies before `ack`, the lease
 * expires and another replica claims it again, so nothing buffered is lost.
 */
import { mergeFragments, TraceFragment } from "@tracesift/normalize";
import { type Conversation, type ConversationVersion, conversationVersion, SourcePosition } from "@tracesift/schemas";
import type { Redis } from "ioredis";

export type AssemblyMode = "idle" | "per-turn";

export type AssemblerOptions = {
  redis: Redis;
  /** Key namespace; live ingest and each replay use their own. */
  prefix: string;
  idleMs: number;
  mode: AssemblyMode;
  /** How long a claim may stay un-acked before another replica takes it over. */
  claimLeaseMs?: number;
  /** Buffered conversations nobody touched for this long are forgotten (Redis TTL). */
  retentionMs?: number;
};

export type ReadyConversation = {
  key: string;
  conversation: Conversation;
  version: ConversationVersion;
  /** Position of the newest event that contributed, for results and tracing. */
  source: SourcePosition;
  /** The previous emitted version, if this conversation was judged before. */
  previous: string | null;
};

// Moves due keys (and expired claims) into the claimed set atomically, so two replicas never
// claim the same conversation at once.
const CLAIM_SCRIPT = `
local due, claimed = KEYS[1], KEYS[2]
local now, lease, limit, dueBefore = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local expired = redis.call('ZRANGEBYSCORE', claimed, '-inf', now, 'LIMIT', 0, limit)
for _, k in ipairs(expired) do redis.call('ZADD', due, now, k) end
if #expired > 0 then redis.call('ZREM', claimed, unpack(expired)) end
local keys = redis.call('ZRANGEBYSCORE', due, '-inf', dueBefore, 'LIMIT', 0, limit)
for _, k in ipairs(keys) do redis.call('ZADD', claimed, now + lease, k) end
if #keys > 0 then redis.call('ZREM', due, unpack(keys)) end
return keys
`;

// Acks a claim unless new fragments arrived meanwhile (then the key is due again and stays so).
const ACK_SCRIPT = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'emitted', ARGV[2])
return 1
`;

export class ConversationAssembler {
  private readonly claimLeaseMs: number;
  private readonly retentionMs: number;

  constructor(private readonly options: AssemblerOptions) {
    this.claimLeaseMs = options.claimLeaseMs ?? 60_000;
    this.retentionMs = options.retentionMs ?? 7 * 24 * 3600_000;
  }

  private k(kind: "frag" | "meta", key: string): string {
    return `${this.options.prefix}:${kind}:${key}`;
  }
  private get dueKey(): string {
    return `${this.options.prefix}:due`;
  }
  private get claimedKey(): string {
    return `${this.options.prefix}:claimed`;
  }

  /**
   * Buffer fragments. Conversations that are ready at once (ended, or per-turn with a fresh user
   * reply) are returned claimed; the rest become due after the idle window.
   */
  async add(items: { fragment: TraceFragment; source: SourcePosition; immediate?: boolean }[]): Promise<ReadyConversation[]> {
    if (items.length === 0) return [];
    const now = Date.now();
    const pipeline = this.options.redis.multi();
    const immediate = new Set<string>();
    const touched = new Set<string>();
    for (const { fragment, source, immediate: now_ } of items) {
      const key = fragment.conversation_key;
      touched.add(key);
      pipeline.hset(this.k("frag", key), fragment.fragment_id, JSON.stringify(fragment));
      pipeline.hset(this.k("meta", key), "source", JSON.stringify(source));
      pipeline.pexpire(this.k("frag", key), this.retentionMs);
      pipeline.pexpire(this.k("meta", key), this.retentionMs);
      if (fragment.end || now_) immediate.add(key);
    }
    for (const key of touched) {
      // Every new fragment pushes the idle deadline back; an ended conversation is due now.
      pipeline.zadd(this.dueKey, immediate.has(key) ? now : now + this.options.idleMs, key);
    }
    await pipeline.exec();

    if (this.options.mode === "per-turn") {
      for (const key of touched) {
        if (immediate.has(key)) continue;
        const loaded = await this.load(key);
        if (loaded && endsWithUserReply(loaded.conversation)) immediate.add(key);
      }
      if (immediate.size > 0) {
        const bump = this.options.redis.multi();
        for (const key of immediate) bump.zadd(this.dueKey, now, key);
        await bump.exec();
      }
    }
    return immediate.size > 0 ? this.claimDue(Math.max(100, immediate.size)) : [];
  }

  /** Claim conversations whose idle window has passed (`all`: every buffered one, e.g. at a replay's end). */
  async claimDue(limit = 100, options: { all?: boolean } = {}): Promise<ReadyConversation[]> {
    const now = Date.now();
    const dueBefore = options.all ? Number.MAX_SAFE_INTEGER : now;
    const keys = (await this.options.redis.eval(
      CLAIM_SCRIPT,
      2,
      this.dueKey,
      this.claimedKey,
      String(now),
      String(this.claimLeaseMs),
      String(limit),
      String(dueBefore),
    )) as string[];
    const ready: ReadyConversation[] = [];
    for (const key of keys) {
      const loaded = await this.load(key);
      if (loaded) ready.push(loaded);
      else await this.options.redis.zrem(this.claimedKey, key); // expired meanwhile: nothing to judge
    }
    return ready;
  }

  /** The conversation was enqueued or skipped: remember its version so an unchanged re-trigger is ignored. */
  async ack(ready: ReadyConversation): Promise<void> {
    await this.options.redis.eval(ACK_SCRIPT, 2, this.claimedKey, this.k("meta", ready.key), ready.key, ready.version.content_hash);
  }

  private async load(key: string): Promise<ReadyConversation | null> {
    const [frags, meta] = await Promise.all([
      this.options.redis.hvals(this.k("frag", key)),
      this.options.redis.hgetall(this.k("meta", key)),
    ]);
    if (frags.length === 0 || !meta.source) return null;
    const fragments = frags.map((f) => TraceFragment.parse(JSON.parse(f)));
    const conversation = mergeFragments(fragments);
    return {
      key,
      conversation,
      version: conversationVersion(conversation),
      source: SourcePosition.parse(JSON.parse(meta.source)),
      previous: meta.emitted ?? null,
    };
  }
}

/** Per-turn trigger: the last turn is the user's, answering an assistant turn. */
export function endsWithUserReply(conversation: Pick<Conversation, "messages">): boolean {
  const turns = conversation.messages.filter((m) => m.role !== "system");
  const last = turns[turns.length - 1];
  const before = turns[turns.length - 2];
  return last?.role === "user" && before?.role === "assistant";
}
