package rediskv

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waypost/waypost/internal/platform/kv"
)

// idsSuffix names the sorted set of IDs HashIncrOnce keeps beside a hash.
// The NUL byte keeps it apart from any key a caller can reasonably choose.
const idsSuffix = "\x00once"

// Chunk sizes of the batched scripts: large enough to amortise a call's fixed
// cost, small enough that one call (which runs alone on the server) stays
// well under a millisecond.
const (
	onceChunk     = 128 // HashIncrOnce requests per call
	listChunkKeys = 64  // ListPushBatch keys per call
	listChunkVals = 512 // ListPushBatch values per call
)

// scriptCall is one script call of a chunked batch, carrying the requests
// [from, to).
type scriptCall struct {
	from, to int
	keys     []string
	args     []any
	cmd      *redis.Cmd
}

// evalPipelined sends calls as EVALSHA of sc in one pipeline. Calls the
// server answered NOSCRIPT (its script cache was flushed) had no effect, so
// they are sent again with the full source in a second pipeline that also
// reloads the script for later calls.
func (s *Store) evalPipelined(ctx context.Context, sc *redis.Script, src string, calls []*scriptCall) {
	pipe := s.rdb.Pipeline()
	for _, c := range calls {
		c.cmd = pipe.EvalSha(ctx, sc.Hash(), c.keys, c.args...)
	}
	// Exec's error is the first failed command's; each is inspected by the caller.
	_, _ = pipe.Exec(ctx)
	var lost []*scriptCall
	for _, c := range calls {
		if isNoScript(c.cmd.Err()) {
			lost = append(lost, c)
		}
	}
	if len(lost) == 0 {
		return
	}
	s.log.WarnContext(ctx, "redis lost a script, resending with EVAL", slog.Int("calls", len(lost)))
	pipe = s.rdb.Pipeline()
	pipe.ScriptLoad(ctx, src)
	for _, c := range lost {
		c.cmd = sc.Eval(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx)
}

// replies decodes one call's reply: an integer per request, or the text of
// a Redis error that request ran into. It returns the integers, or the error
// of the first failed request with its index within the call.
func replies(op, key string, c *scriptCall) ([]int64, int, error) {
	reply, err := c.cmd.Slice()
	if err != nil {
		return nil, 0, fail(op, key, err)
	}
	if len(reply) != c.to-c.from {
		return nil, 0, fmt.Errorf("rediskv: %s %q: %d replies for %d requests", op, key, len(reply), c.to-c.from)
	}
	out := make([]int64, len(reply))
	for i, v := range reply {
		switch v := v.(type) {
		case int64:
			out[i] = v
		case string:
			return nil, i, fail(op, key, redisError(v))
		default:
			return nil, i, fmt.Errorf("rediskv: %s %q: unexpected reply %v", op, key, v)
		}
	}
	return out, 0, nil
}

// HashIncrOnce groups the requests by key (and ttls), keeping each key's
// requests in order, and sends the groups in calls of at most onceChunk
// requests, all in a single pipeline (see hashOnceSrc). Grouping lets one
// prune and one pair of expiries serve every request of a key, as the
// trace's few busy counters need.
func (s *Store) HashIncrOnce(ctx context.Context, reqs []kv.OnceIncrement) ([]bool, error) {
	for i, r := range reqs {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("rediskv: hash incr once request %d: %w", i, err)
		}
	}
	out := make([]bool, len(reqs))
	if len(reqs) == 0 {
		return out, nil
	}
	type group struct {
		first   int // index of the group's first request
		members []int
	}
	type groupKey struct {
		key        string
		ttl, idTTL time.Duration
	}
	var groups []*group
	byKey := map[groupKey]*group{}
	for i, r := range reqs {
		k := groupKey{r.Key, r.TTL, r.IDTTL}
		g := byKey[k]
		if g == nil {
			g = &group{first: i}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.members = append(g.members, i)
	}
	var (
		calls []*scriptCall
		order []int // request index of each reply, in call order
		c     *scriptCall
	)
	for _, g := range groups {
		r := reqs[g.first]
		k := s.key(r.Key)
		for from := 0; from < len(g.members); {
			if c == nil || c.to-c.from == onceChunk {
				c = &scriptCall{from: len(order), to: len(order)}
				calls = append(calls, c)
			}
			n := min(len(g.members)-from, onceChunk-(c.to-c.from))
			c.keys = append(c.keys, k, k+idsSuffix)
			c.args = append(c.args, millis(r.TTL), millis(r.IDTTL), n)
			for _, i := range g.members[from : from+n] {
				c.args = append(c.args, reqs[i].Field, reqs[i].Delta, reqs[i].ID)
				order = append(order, i)
			}
			c.to += n
			from += n
		}
	}
	s.evalPipelined(ctx, s.sc.hashOnce, s.sc.hashOnceSrc, calls)
	var first error
	for _, c := range calls {
		got, i, err := replies("hashincronce", reqs[order[c.from]].Key, c)
		if err != nil {
			if first == nil {
				first = fmt.Errorf("rediskv: hash incr once request %d: %w", order[c.from+i], err)
			}
			continue
		}
		for j, v := range got {
			out[order[c.from+j]] = v == 1
		}
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

// ListPushBatch sends the pushes in chunks of at most listChunkKeys keys and
// about listChunkVals values, one script call per chunk, all in a single
// pipeline (see listBatchSrc). Requests without values do nothing.
func (s *Store) ListPushBatch(ctx context.Context, reqs []kv.ListPushRequest) error {
	for i, r := range reqs {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("rediskv: list push batch request %d: %w", i, err)
		}
	}
	var (
		calls []*scriptCall
		c     *scriptCall
		vals  int
		index []int // request index of each key of the calls, in order
	)
	for i, r := range reqs {
		if len(r.Vals) == 0 {
			continue
		}
		if c == nil || len(c.keys) == listChunkKeys || vals+len(r.Vals) > listChunkVals && len(c.keys) > 0 {
			c = &scriptCall{from: len(index), to: len(index)}
			calls = append(calls, c)
			vals = 0
		}
		c.keys = append(c.keys, s.key(r.Key))
		c.args = append(c.args, r.MaxLen, millis(r.TTL), len(r.Vals))
		for _, v := range r.Vals {
			c.args = append(c.args, v)
		}
		c.to++
		vals += len(r.Vals)
		index = append(index, i)
	}
	if len(calls) == 0 {
		return nil
	}
	s.evalPipelined(ctx, s.sc.listBatch, s.sc.listBatchSrc, calls)
	for _, c := range calls {
		if _, i, err := replies("listpushbatch", reqs[index[c.from]].Key, c); err != nil {
			return fmt.Errorf("rediskv: list push batch request %d: %w", index[c.from+i], err)
		}
	}
	return nil
}

// idsTTL reports the remaining ttl of the ID set beside hash key k; tests
// use it to check that the set expires.
func (s *Store) idsTTL(ctx context.Context, k string) (time.Duration, error) {
	return s.rdb.PTTL(ctx, s.key(k)+idsSuffix).Result()
}
