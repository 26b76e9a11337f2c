import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/**
 * Runs a Lua script by SHA and loads it on NOSCRIPT (after a Redis restart or failover), so the
 * body crosses the wire once per server rather than on every call.
 */
export class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  async run(redis: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

// Window entries are sorted-set members "<leaseId>|<requests>|<prompt>|<uncached>|<generated>"
// scored by admission time (Redis server ms): one entry carries a call's charge on every meter, so
// all four windows expire together. The tot hash keeps running sums per meter (fields 1..4, burst
// window b1..b4), so a check costs O(expired entries), not O(window). An entry admitted at s counts
// while now <= s + window (one ms longer than the provider's window: rounding must never undercount).
const PRELUDE = `
local N = 4
local LEARNED = {'rpm', 'ptpm', 'utpm', 'gtpm'}
local NAMES = {'requests', 'prompt', 'uncachedPrompt', 'generated'}

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function parse(member)
  local a, b, c, d = string.match(member, '|(%d+)|(%d+)|(%d+)|(%d+)$')
  return {tonumber(a), tonumber(b), tonumber(c), tonumber(d)}
end

local function member(id, v)
  return id .. '|' .. v[1] .. '|' .. v[2] .. '|' .. v[3] .. '|' .. v[4]
end

local function add(tot, pre, v, sign)
  for i = 1, N do
    if v[i] ~= 0 then redis.call('HINCRBY', tot, pre .. i, sign * v[i]) end
  end
end

local function purge(zkey, tot, cutoff, pre)
  local old = redis.call('ZRANGEBYSCORE', zkey, '-inf', cutoff)
  if #old > 0 then
    local s = {0, 0, 0, 0}
    for _, m in ipairs(old) do
      local v = parse(m)
      for i = 1, N do s[i] = s[i] + v[i] end
    end
    redis.call('ZREMRANGEBYSCORE', zkey, '-inf', cutoff)
    add(tot, pre, s, -1)
  end
  -- Self-heal: an empty window has zero usage even if a sum drifted.
  if redis.call('ZCARD', zkey) == 0 then
    for i = 1, N do redis.call('HDEL', tot, pre .. i) end
  end
end

local function used(tot, pre)
  local u = redis.call('HMGET', tot, pre .. 1, pre .. 2, pre .. 3, pre .. 4)
  return {tonumber(u[1]) or 0, tonumber(u[2]) or 0, tonumber(u[3]) or 0, tonumber(u[4]) or 0}
end

-- ms until, oldest first, enough entries leave the window to free x[i] on every meter.
local function wait_for(zkey, window, now, x)
  local f, last = {0, 0, 0, 0}, now
  for start = 0, 900, 100 do
    local batch = redis.call('ZRANGE', zkey, start, start + 99, 'WITHSCORES')
    if #batch == 0 then break end
    for i = 1, #batch, 2 do
      local v = parse(batch[i])
      local done = true
      for k = 1, N do
        f[k] = f[k] + v[k]
        if f[k] < x[k] then done = false end
      end
      last = tonumber(batch[i + 1])
      if done then return last + window + 1 - now end
    end
  end
  return math.max(1, last + window + 1 - now)
end

-- How much must leave a window before n more fit under cap; 0 when it fits now. An empty
-- window always admits one request, so a request larger than the cap is not starved.
local function excess(u, n, cap)
  if not cap or u <= 0 or u + n <= cap then return 0 end
  return math.min(u, u + n - cap)
end

-- The meters that block: excess per meter, the first blocking meter's name (or nil).
local function check(u, need, caps)
  local x, reason = {0, 0, 0, 0}, nil
  for i = 1, N do
    x[i] = excess(u[i], need[i], caps[i])
    if x[i] > 0 and not reason then reason = NAMES[i] end
  end
  return x, reason
end
`;

const keysDoc = "-- KEYS: win, burst, tot, flight, state\n";

/** ARGV: id, priority, leaseTtlMs, windowMs, burstWindowMs (0 = off), burstFactor, safety,
 *  liveReserve, maxInFlight ('' = unknown), adaptiveInitial, then need[1..4], then configured
 *  limit[1..4] ('' = unknown), meters in METERS order.
 *  Returns {1, 'ok', nowMs} | {0, reason, waitMs} | {-1, meter, limitForPriority}. */
export const acquireScript = new LuaScript(`${keysDoc}${PRELUDE}
local win, burst, tot, flight, state = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, live = ARGV[1], ARGV[2] == 'live'
local leaseTtl, window, bwin, bfactor = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local safety, reserve, cfgMax, acInit = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local need, cfg = {}, {}
for i = 1, N do
  need[i] = tonumber(ARGV[10 + i])
  cfg[i] = tonumber(ARGV[14 + i])
end

local now = now_ms()
local st = redis.call('HMGET', state, 'stopped', 'pausedUntil', 'ac', LEARNED[1], LEARNED[2], LEARNED[3], LEARNED[4])
if st[1] then return {0, 'stopped', 0} end
local pu = tonumber(st[2]) or 0
if pu > now then return {0, 'paused', pu - now} end

local share = live and 1 or (1 - reserve)
local limit, caps, tokensKnown = {}, {}, false
for i = 1, N do
  limit[i] = cfg[i] or tonumber(st[3 + i])
  if limit[i] then
    if i > 1 then tokensKnown = true end
    if (i == 1 and limit[i] * share < 1) or (i > 1 and need[i] > limit[i] * share) then
      return {-1, NAMES[i], math.floor(limit[i] * share)}
    end
    caps[i] = limit[i] * safety * share
  end
end

purge(win, tot, now - window - 1, '')
if bwin > 0 then purge(burst, tot, now - bwin - 1, 'b') end

local x, reason = check(used(tot, ''), need, caps)
local wait = 0
if reason then wait = wait_for(win, window, now, x) end
if bwin > 0 then
  local f, bcaps = bfactor * bwin / window, {}
  for i = 1, N do bcaps[i] = caps[i] and caps[i] * f end
  local bx, breason = check(used(tot, 'b'), need, bcaps)
  if breason then
    local w = wait_for(burst, bwin, now, bx)
    if not reason or w > wait then reason, wait = 'burst', w end
  end
end
if reason then return {0, reason, wait} end

redis.call('ZREMRANGEBYSCORE', flight, '-inf', now)
local cap = cfgMax
-- Without any token meter (a dedicated deployment) only 429/503s tell how much fits: AIMD.
if not tokensKnown then
  local ac = math.max(1, math.floor(tonumber(st[3]) or acInit))
  if not cap or ac < cap then cap = ac end
end
if cap then
  if not live then cap = math.max(1, math.floor(cap * share)) end
  if redis.call('ZCARD', flight) >= cap then
    local first = redis.call('ZRANGE', flight, 0, 0, 'WITHSCORES')
    return {0, 'inflight', tonumber(first[2]) - now}
  end
end

local m = member(id, need)
redis.call('ZADD', win, now, m)
add(tot, '', need, 1)
if bwin > 0 then
  redis.call('ZADD', burst, now, m)
  add(tot, 'b', need, 1)
  redis.call('PEXPIRE', burst, window + 1000)
end
redis.call('PEXPIRE', win, window + 1000)
redis.call('PEXPIRE', tot, window + 1000)
redis.call('ZADD', flight, now + leaseTtl, id)
redis.call('PEXPIRE', flight, leaseTtl + 1000)
return {1, 'ok', now}
`);

/** ARGV: id, windowMs, burstWindowMs, reserved[1..4], actual[1..4]. Frees the in-flight slot and
 *  rewrites the reservation with the actual charges in place; if it already left the window, the
 *  excesses are recorded now (conservative) and refunds are dropped. */
export const settleScript = new LuaScript(`${keysDoc}${PRELUDE}
local win, burst, tot, flight = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, window, bwin = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local reserved, actual, diff = {}, {}, {}
for i = 1, N do
  reserved[i] = tonumber(ARGV[3 + i])
  actual[i] = tonumber(ARGV[7 + i])
  diff[i] = actual[i] - reserved[i]
end
redis.call('ZREM', flight, id)

local now = now_ms()
purge(win, tot, now - window - 1, '')
if bwin > 0 then purge(burst, tot, now - bwin - 1, 'b') end
local old, new = member(id, reserved), member(id, actual)
local s = redis.call('ZSCORE', win, old)
if s then
  -- Re-stamped at completion: the provider counted the call when it arrived, somewhere between
  -- admission and now, so keeping it until now + window never frees capacity before the provider does.
  redis.call('ZREM', win, old)
  redis.call('ZADD', win, now, new)
  add(tot, '', diff, 1)
  local bs = bwin > 0 and redis.call('ZSCORE', burst, old)
  if bs then
    redis.call('ZREM', burst, old)
    redis.call('ZADD', burst, bs, new)
    add(tot, 'b', diff, 1)
  end
  return 1
end
local more, any = {0, 0, 0, 0}, false
for i = 1, N do
  if diff[i] > 0 then
    more[i] = diff[i]
    any = true
  end
end
if not any then return 0 end
local m = member(id .. '+', more)
redis.call('ZADD', win, now, m)
add(tot, '', more, 1)
if bwin > 0 then
  redis.call('ZADD', burst, now, m)
  add(tot, 'b', more, 1)
  redis.call('PEXPIRE', burst, window + 1000)
end
redis.call('PEXPIRE', win, window + 1000)
redis.call('PEXPIRE', tot, window + 1000)
return 2
`);

/** KEYS: state. ARGV: retryAfterMs ('' = none), baseMs, maxMs, random in [0,1), adaptiveInitial.
 *  A rate-limit answer that arrives while the fleet is already paused belongs to the same
 *  congestion event: it may extend the pause but neither bumps the counter nor shrinks the
 *  concurrency again (otherwise N parallel 429s would mean N halvings). Returns the pause ms. */
export const rateLimitedScript = new LuaScript(`${PRELUDE}
local state = KEYS[1]
local retryAfter, base, max, rnd, acInit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
local pu = tonumber(redis.call('HGET', state, 'pausedUntil')) or 0
if pu > now then
  if retryAfter and now + retryAfter > pu then
    pu = now + retryAfter
    redis.call('HSET', state, 'pausedUntil', pu)
  end
  return pu - now
end
local n = redis.call('HINCRBY', state, 'n429', 1)
local pause = retryAfter
if not pause then pause = math.floor(rnd * math.min(max, base * 2 ^ math.min(n - 1, 40))) end
local ac = tonumber(redis.call('HGET', state, 'ac')) or acInit
redis.call('HSET', state, 'pausedUntil', now + pause, 'ac', tostring(math.max(1, ac * 0.5)))
return pause
`);

/** KEYS: state. ARGV: adaptiveInitial, adaptiveMax. Additive increase of 1/ac per success:
 *  about +1 per round of ac calls, as TCP congestion avoidance. */
export const successScript = new LuaScript(`
local state = KEYS[1]
local acInit, acMax = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('HMGET', state, 'n429', 'ac')
if v[1] and v[1] ~= '0' then redis.call('HSET', state, 'n429', 0) end
local ac = tonumber(v[2]) or acInit
local nac = math.min(acMax, ac + 1 / ac)
if nac ~= ac then redis.call('HSET', state, 'ac', tostring(nac)) end
return tostring(nac)
`);

/** KEYS: win, burst, tot, flight, state. ARGV: windowMs, burstWindowMs.
 *  Returns {used[1..4], inFlight, nowMs, stopped, pausedUntil, ac, n429, learned[1..4]}. */
export const snapshotScript = new LuaScript(`${keysDoc}${PRELUDE}
local win, burst, tot, flight, state = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local window, bwin = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = now_ms()
purge(win, tot, now - window - 1, '')
if bwin > 0 then purge(burst, tot, now - bwin - 1, 'b') end
redis.call('ZREMRANGEBYSCORE', flight, '-inf', now)
local u = used(tot, '')
local s = redis.call('HMGET', state, 'stopped', 'pausedUntil', 'ac', 'n429', LEARNED[1], LEARNED[2], LEARNED[3], LEARNED[4])
return {u[1], u[2], u[3], u[4], redis.call('ZCARD', flight), now,
  s[1] or false, s[2] or false, s[3] or false, s[4] or false, s[5] or false, s[6] or false, s[7] or false, s[8] or false}
`);

/** Learned limits' fields in the state hash, in METERS order. */
export const LEARNED_FIELDS = ["rpm", "ptpm", "utpm", "gtpm"] as const;
