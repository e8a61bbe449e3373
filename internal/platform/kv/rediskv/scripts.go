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

// scripts are the Lua scripts a Store runs by SHA.
type scripts struct {
	cas, incr, listPush, hashIncr, admit, hashOnce, listBatch *redis.Script
	// admitSrc is admit's source, reloaded through a pipeline after NOSCRIPT
	// (Script.Load cannot be pipelined: it reads the reply at once); so are
	// hashOnceSrc and listBatchSrc.
	admitSrc, hashOnceSrc, listBatchSrc string
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
	}
}

func (s scripts) all() []*redis.Script {
	return []*redis.Script{s.cas, s.incr, s.listPush, s.hashIncr, s.admit, s.hashOnce, s.listBatch}
}
