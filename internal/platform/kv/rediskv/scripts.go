package rediskv

import "github.com/redis/go-redis/v9"

// Every operation that touches more than one command runs as one Lua script,
// which Redis executes without interleaving any other command: that is what
// makes it atomic across all processes sharing the server. A redis.call error
// (WRONGTYPE, say) aborts the script before it writes anything further.
//
// Integers are read back as strings where they can exceed 2^53, because Lua
// numbers are doubles and would silently lose the low digits.

// casSrc: ARGV[1] '1' when old is given, ARGV[2] old, ARGV[3] new value,
// ARGV[4] ttl in ms ('0': no expiry).
const casSrc = `
if ARGV[1] == '1' then
  if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
elseif redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if ARGV[4] == '0' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
`

// incrSrc: ARGV[1] delta, ARGV[2] expiry instant in unix ms ('0': keep).
const incrSrc = `
redis.call('INCRBY', KEYS[1], ARGV[1])
local v = redis.call('GET', KEYS[1])
if ARGV[2] ~= '0' then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return v
`

// listPushSrc: ARGV[1] maxLen (<= 0: no cap), ARGV[2] ttl in ms ('0': keep),
// ARGV[3..] the values. RPUSH goes in chunks because unpack of a very long
// list would overflow Lua's C stack.
const listPushSrc = `
for i = 3, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local cap = tonumber(ARGV[1])
if cap > 0 then redis.call('LTRIM', KEYS[1], -cap, -1) end
if ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`

// hashIncrSrc: ARGV[1] field, ARGV[2] delta, ARGV[3] ttl in ms ('0': keep).
const hashIncrSrc = `
redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
local v = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[3] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return v
`

// admitSrc is the sliding window on sorted sets scored in unix microseconds
// (exact in a double). It runs one admission per key in KEYS, in order, each
// with five ARGV: now, the exclusive lower bound "(now-window" (built in Go:
// Lua's tostring would round a 16-digit number), limit, member, and the key's
// ttl in ms. One call carries a whole chunk of a batch, because the fixed cost
// of a script call is larger than the admission itself.
//
// It answers one element per key: count when admitted, -count when refused
// (a refusal always has count >= limit >= 1), or the error's text when that
// key failed (WRONGTYPE, say) — pcall keeps one bad key from aborting the
// admissions after it, as a pipeline of separate calls would.
const admitSrc = `
local out = {}
for i, key in ipairs(KEYS) do
  local a = (i - 1) * 5
  local ok = redis.pcall('ZREMRANGEBYSCORE', key, '-inf', ARGV[a + 2])
  if type(ok) == 'table' and ok.err then
    out[i] = ok.err
  else
    local n = redis.call('ZCARD', key)
    if n >= tonumber(ARGV[a + 3]) then
      out[i] = -n
    else
      n = n + redis.call('ZADD', key, ARGV[a + 1], ARGV[a + 4])
      redis.call('PEXPIRE', key, ARGV[a + 5])
      out[i] = n
    end
  end
end
return out
`

// hashOnceSrc runs HashIncrOnce requests grouped by key. KEYS holds a pair
// per group (the hash, then its set of applied IDs); ARGV holds, per group
// in turn, the hash's ttl in ms ('0': keep), the ids' ttl in ms, the number
// n of requests, then n triples of field, delta and id. The IDs are a
// sorted set scored by their expiry in unix ms of the server's clock: the
// group's expired IDs are pruned first, so ZADD NX says exactly whether an
// ID is new. A group's expiries are set once, when any of its requests
// applied.
//
// It answers one element per request, in order: 1 applied, 0 already
// applied, or the error's text when the increment failed (WRONGTYPE,
// overflow) — pcall keeps one bad key from aborting the requests after it,
// and a failed increment takes its ID back out.
const hashOnceSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local p = 1
for g = 1, #KEYS / 2 do
  local h, ids = KEYS[2 * g - 1], KEYS[2 * g]
  local ttl, idttl, n = ARGV[p], tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2])
  p = p + 3
  redis.call('ZREMRANGEBYSCORE', ids, '-inf', now)
  local applied = false
  for i = 1, n do
    local field, delta, id = ARGV[p], ARGV[p + 1], ARGV[p + 2]
    p = p + 3
    if redis.call('ZADD', ids, 'NX', now + idttl, id) == 0 then
      out[#out + 1] = 0
    else
      local ok = redis.pcall('HINCRBY', h, field, delta)
      if type(ok) == 'table' and ok.err then
        redis.call('ZREM', ids, id)
        out[#out + 1] = ok.err
      else
        applied = true
        out[#out + 1] = 1
      end
    end
  end
  if applied then
    if ttl ~= '0' then redis.call('PEXPIRE', h, ttl) end
    if redis.call('PTTL', ids) < idttl then redis.call('PEXPIRE', ids, idttl) end
  end
end
return out
`

// listBatchSrc runs one ListPush per key in KEYS. ARGV holds, per key in
// turn, maxLen, ttl in ms ('0': keep), the number n of values, then the n
// values. It answers 1 per key, or the error's text when the push failed
// (WRONGTYPE), in which case the key was left as it was. LTRIM runs only
// when the push went past the cap.
const listBatchSrc = `
local out = {}
local p = 1
for i, key in ipairs(KEYS) do
  local cap, ttl, n = tonumber(ARGV[p]), ARGV[p + 1], tonumber(ARGV[p + 2])
  local first, last = p + 3, p + 2 + n
  p = last + 1
  local err, len = nil, 0
  for j = first, last, 1000 do
    local ok = redis.pcall('RPUSH', key, unpack(ARGV, j, math.min(j + 999, last)))
    if type(ok) == 'table' and ok.err then
      err = ok.err
      break
    end
    len = ok
  end
  if err then
    out[i] = err
  else
    if cap > 0 and len > cap then redis.call('LTRIM', key, -cap, -1) end
    if ttl ~= '0' then redis.call('PEXPIRE', key, ttl) end
    out[i] = 1
  end
end
return out
`

// pairSrc runs AdmitPairs requests, each atomically: a window, then the
// second only if the first admitted. The windows of a call mostly share
// their parameters (one Now, one rule), so those come once, as specs:
// ARGV[1] is the number of specs, then four values per spec — now in unix
// microseconds, the lowest score still live (now-window, built in Go, as in
// admitSrc), limit, and the key's ttl in ms. Then, per pair: its number of
// windows, the first window's member and spec, and for a second window its
// member ("" when it is the first's) and spec. KEYS holds each pair's one or
// two window keys in turn.
//
// A window below its limit adds the member with ZADD NX (one that was
// there already is admitted as it is when its entry is live, and moved to
// now when it is stale); a full window admits a member with a live entry as
// it is (ZSCORE), else prunes, recounts and adds. An addition then sets
// PEXPIREAT (the server's time at the script's start plus the ttl: what
// PEXPIRE would set, without its rewrite for replication). A window below
// its limit is not pruned: stale entries only overcount, and they are
// pruned as soon as the count matters. So the usual admission, of a new
// member below the limit, costs ZCARD, ZADD and PEXPIREAT. The first
// command on each key runs under pcall, so a key of another type fails only
// its own pair.
//
// It answers one element per pair: 0 admitted, 1 the first window refused,
// 2 the second refused, or the error's text.
const pairSrc = `
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local spec = {}
local p = 2
for i = 1, tonumber(ARGV[1]) do
  local ttl = tonumber(ARGV[p + 3])
  spec[i] = {ARGV[p], ARGV[p + 1], tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2]), string.format('%.0f', ms + ttl)}
  p = p + 4
end
local function admit(key, member, s)
  local n = redis.pcall('ZCARD', key)
  if type(n) == 'table' then return n.err end
  if n >= s[4] then
    local sc = redis.call('ZSCORE', key, member)
    if sc and tonumber(sc) >= s[3] then return 1 end
    n = n - redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. s[2])
    if n >= s[4] then return 0 end
    redis.call('ZADD', key, s[1], member)
  elseif redis.call('ZADD', key, 'NX', s[1], member) == 0 then
    if tonumber(redis.call('ZSCORE', key, member)) >= s[3] then return 1 end
    redis.call('ZADD', key, s[1], member)
  end
  redis.call('PEXPIREAT', key, s[5])
  return 1
end
local out = {}
local k = 1
while p <= #ARGV do
  local w, m = tonumber(ARGV[p]), ARGV[p + 1]
  local r = admit(KEYS[k], m, spec[tonumber(ARGV[p + 2])])
  if r == 0 then
    r = 1
  elseif r == 1 then
    r = 0
    if w == 2 then
      local m2 = ARGV[p + 3]
      if m2 == '' then m2 = m end
      r = admit(KEYS[k + 1], m2, spec[tonumber(ARGV[p + 4])])
      if r == 0 then r = 2 elseif r == 1 then r = 0 end
    end
  end
  out[#out + 1] = r
  k, p = k + w, p + 1 + 2 * w
end
return out
`

// scripts are the Lua scripts a Store runs by SHA.
type scripts struct {
	cas, incr, listPush, hashIncr, admit, hashOnce, listBatch, pair *redis.Script
	// admitSrc is admit's source, reloaded through a pipeline after NOSCRIPT
	// (Script.Load cannot be pipelined: it reads the reply at once); so are
	// hashOnceSrc, listBatchSrc and pairSrc.
	admitSrc, hashOnceSrc, listBatchSrc, pairSrc string
}

// newScripts builds the scripts; a non-empty salt (tests only) changes every
// SHA, so the server has never seen them — exactly its state after SCRIPT FLUSH.
func newScripts(salt string) scripts {
	salted := func(src string) string {
		if salt == "" {
			return src
		}
		return "-- " + salt + "\n" + src
	}
	return scripts{
		cas:      redis.NewScript(salted(casSrc)),
		incr:     redis.NewScript(salted(incrSrc)),
		listPush: redis.NewScript(salted(listPushSrc)),
		hashIncr: redis.NewScript(salted(hashIncrSrc)),
		admit:    redis.NewScript(salted(admitSrc)),
		admitSrc: salted(admitSrc),

		hashOnce:     redis.NewScript(salted(hashOnceSrc)),
		hashOnceSrc:  salted(hashOnceSrc),
		listBatch:    redis.NewScript(salted(listBatchSrc)),
		listBatchSrc: salted(listBatchSrc),
		pair:         redis.NewScript(salted(pairSrc)),
		pairSrc:      salted(pairSrc),
	}
}

func (s scripts) all() []*redis.Script {
	return []*redis.Script{s.cas, s.incr, s.listPush, s.hashIncr, s.admit, s.hashOnce, s.listBatch, s.pair}
}
