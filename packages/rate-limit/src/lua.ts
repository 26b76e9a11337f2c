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

// Window entries are sorted-set members "<leaseId>|<requests>|<tokens>" scored by admission time
// (Redis server ms); the tot hash keeps running sums so a check costs O(expired entries), not
// O(window). An entry admitted at s counts while now <= s + window (one ms longer than the
// provider's window: ms rounding must never undercount).
const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function parse(member)
  local r, t = string.match(member, '|(%d+)|(%d+)$')
  return tonumber(r), tonumber(t)
end

local function purge(zkey, tot, cutoff, rf, tf)
  local old = redis.call('ZRANGEBYSCORE', zkey, '-inf', cutoff)
  if #old > 0 then
    local r, t = 0, 0
    for _, m in ipairs(old) do
      local a, b = parse(m)
      r = r + a
      t = t + b
    end
    redis.call('ZREMRANGEBYSCORE', zkey, '-inf', cutoff)
    redis.call('HINCRBY', tot, rf, -r)
    redis.call('HINCRBY', tot, tf, -t)
  end
  -- Self-heal: an empty window has zero usage even if a sum drifted.
  if redis.call('ZCARD', zkey) == 0 then redis.call('HDEL', tot, rf, tf) end
end

-- ms until, oldest first, enough entries leave the window to free xr requests and xt tokens.
local function wait_for(zkey, window, now, xr, xt)
  local fr, ft, last = 0, 0, now
  for start = 0, 900, 100 do
    local batch = redis.call('ZRANGE', zkey, start, start + 99, 'WITHSCORES')
    if #batch == 0 then break end
    for i = 1, #batch, 2 do
      local a, b = parse(batch[i])
      fr = fr + a
      ft = ft + b
      last = tonumber(batch[i + 1])
      if fr >= xr and ft >= xt then return last + window + 1 - now end
    end
  end
  return math.max(1, last + window + 1 - now)
end

-- How much must leave a window before n more fit under cap; 0 when it fits now. An empty
-- window always admits one request, so a request larger than the cap is not starved.
local function excess(used, n, cap)
  if not cap or used <= 0 or used + n <= cap then return 0 end
  return math.min(used, used + n - cap)
end
`;

const keysDoc = "-- KEYS: win, burst, tot, flight, state\n";

/** ARGV: id, priority, tokens, leaseTtlMs, windowMs, burstWindowMs (0 = off), burstFactor,
 *  safety, liveReserve, rpm, tpm, maxInFlight ('' = unknown), adaptiveInitial.
 *  Returns {1, 'ok', nowMs} | {0, reason, waitMs} | {-1, dimension, limitForPriority}. */
export const acquireScript = new LuaScript(`${keysDoc}${PRELUDE}
local win, burst, tot, flight, state = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, live, need = ARGV[1], ARGV[2] == 'live', tonumber(ARGV[3])
local leaseTtl, window, bwin, bfactor = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local safety, reserve = tonumber(ARGV[8]), tonumber(ARGV[9])
local cfgRpm, cfgTpm, cfgMax, acInit = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])

local now = now_ms()
local st = redis.call('HMGET', state, 'stopped', 'pausedUntil', 'rpm', 'tpm', 'ac')
if st[1] then return {0, 'stopped', 0} end
local pu = tonumber(st[2]) or 0
if pu > now then return {0, 'paused', pu - now} end

local rpm, tpm = cfgRpm or tonumber(st[3]), cfgTpm or tonumber(st[4])
local share = live and 1 or (1 - reserve)
if rpm and rpm * share < 1 then return {-1, 'requests', math.floor(rpm * share)} end
if tpm and need > tpm * share then return {-1, 'tokens', math.floor(tpm * share)} end

purge(win, tot, now - window - 1, 'r', 't')
if bwin > 0 then purge(burst, tot, now - bwin - 1, 'br', 'bt') end
local u = redis.call('HMGET', tot, 'r', 't', 'br', 'bt')
local ur, ut, ubr, ubt = tonumber(u[1]) or 0, tonumber(u[2]) or 0, tonumber(u[3]) or 0, tonumber(u[4]) or 0
local rCap, tCap = rpm and rpm * safety * share, tpm and tpm * safety * share

local reason, wait = nil, 0
local xr, xt = excess(ur, 1, rCap), excess(ut, need, tCap)
if xr > 0 or xt > 0 then
  reason = xr > 0 and 'requests' or 'tokens'
  wait = wait_for(win, window, now, xr, xt)
end
if bwin > 0 then
  local f = bfactor * bwin / window
  local xbr, xbt = excess(ubr, 1, rCap and rCap * f), excess(ubt, need, tCap and tCap * f)
  if xbr > 0 or xbt > 0 then
    local w = wait_for(burst, bwin, now, xbr, xbt)
    if not reason or w > wait then reason, wait = 'burst', w end
  end
end
if reason then return {0, reason, wait} end

redis.call('ZREMRANGEBYSCORE', flight, '-inf', now)
local cap = cfgMax
if not rpm or not tpm then
  local ac = math.max(1, math.floor(tonumber(st[5]) or acInit))
  if not cap or ac < cap then cap = ac end
end
if cap then
  if not live then cap = math.max(1, math.floor(cap * share)) end
  if redis.call('ZCARD', flight) >= cap then
    local first = redis.call('ZRANGE', flight, 0, 0, 'WITHSCORES')
    return {0, 'inflight', tonumber(first[2]) - now}
  end
end

local m = id .. '|1|' .. ARGV[3]
redis.call('ZADD', win, now, m)
redis.call('HINCRBY', tot, 'r', 1)
redis.call('HINCRBY', tot, 't', need)
if bwin > 0 then
  redis.call('ZADD', burst, now, m)
  redis.call('HINCRBY', tot, 'br', 1)
  redis.call('HINCRBY', tot, 'bt', need)
  redis.call('PEXPIRE', burst, window + 1000)
end
redis.call('PEXPIRE', win, window + 1000)
redis.call('PEXPIRE', tot, window + 1000)
redis.call('ZADD', flight, now + leaseTtl, id)
redis.call('PEXPIRE', flight, leaseTtl + 1000)
return {1, 'ok', now}
`);

/** ARGV: id, reservedTokens, actualTokens, windowMs, burstWindowMs. Frees the in-flight slot and
 *  rewrites the reservation with the actual count in place; if it already left the window, an
 *  excess is recorded now (conservative) and a refund is dropped. Returns the token difference. */
export const settleScript = new LuaScript(`${keysDoc}${PRELUDE}
local win, burst, tot, flight = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, reserved, actual = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local window, bwin = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREM', flight, id)
local diff = actual - reserved

local now = now_ms()
purge(win, tot, now - window - 1, 'r', 't')
if bwin > 0 then purge(burst, tot, now - bwin - 1, 'br', 'bt') end
local old, new = id .. '|1|' .. ARGV[2], id .. '|1|' .. ARGV[3]
local s = redis.call('ZSCORE', win, old)
if s then
  -- Re-stamped at completion: the provider counted the call when it arrived, somewhere between
  -- admission and now, so keeping it until now + window never frees capacity before the provider does.
  redis.call('ZREM', win, old)
  redis.call('ZADD', win, now, new)
  redis.call('HINCRBY', tot, 't', diff)
  local bs = bwin > 0 and redis.call('ZSCORE', burst, old)
  if bs then
    redis.call('ZREM', burst, old)
    redis.call('ZADD', burst, bs, new)
    redis.call('HINCRBY', tot, 'bt', diff)
  end
elseif diff > 0 then
  local m = id .. '+|0|' .. diff
  redis.call('ZADD', win, now, m)
  redis.call('HINCRBY', tot, 't', diff)
  if bwin > 0 then
    redis.call('ZADD', burst, now, m)
    redis.call('HINCRBY', tot, 'bt', diff)
    redis.call('PEXPIRE', burst, window + 1000)
  end
  redis.call('PEXPIRE', win, window + 1000)
  redis.call('PEXPIRE', tot, window + 1000)
else
  return 0
end
return diff
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
 *  Returns {usedRequests, usedTokens, inFlight, nowMs, stopped, pausedUntil, rpm, tpm, ac, n429}. */
export const snapshotScript = new LuaScript(`${keysDoc}${PRELUDE}
local win, burst, tot, flight, state = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local window, bwin = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = now_ms()
purge(win, tot, now - window - 1, 'r', 't')
if bwin > 0 then purge(burst, tot, now - bwin - 1, 'br', 'bt') end
redis.call('ZREMRANGEBYSCORE', flight, '-inf', now)
local u = redis.call('HMGET', tot, 'r', 't')
local s = redis.call('HMGET', state, 'stopped', 'pausedUntil', 'rpm', 'tpm', 'ac', 'n429')
return {tonumber(u[1]) or 0, tonumber(u[2]) or 0, redis.call('ZCARD', flight), now,
  s[1] or false, s[2] or false, s[3] or false, s[4] or false, s[5] or false, s[6] or false}
`);
