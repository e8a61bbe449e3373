package rediskv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waypost/waypost/internal/platform/kv"
)

// admitChunk is how many admissions one script call carries. Larger chunks
// amortise the call's fixed cost further but hold the server longer, since a
// script runs alone; 32 admissions take well under a millisecond.
const admitChunk = 32

func checkWindow(req kv.WindowRequest) error {
	if err := req.Validate(); err != nil {
		return fmt.Errorf("rediskv: %w", err)
	}
	return nil
}

// admitCall builds the KEYS and ARGV of one script call for reqs (see admitSrc).
func (s *Store) admitCall(reqs []kv.WindowRequest) (keys []string, args []any) {
	keys = make([]string, len(reqs))
	args = make([]any, 0, 5*len(reqs))
	for i, r := range reqs {
		now := r.Now.UnixMicro()
		keys[i] = s.key(r.Key)
		args = append(args,
			now,
			"("+strconv.FormatInt(now-r.Window.Microseconds(), 10),
			r.Limit,
			r.Member,
			millis(r.Window),
		)
	}
	return keys, args
}

// admitResults decodes one script reply into out, one result per request.
// On an error it also returns the index of the failing request (0 when the
// whole call failed).
func admitResults(reqs []kv.WindowRequest, cmd *redis.Cmd, out []kv.WindowResult) (int, error) {
	reply, err := cmd.Slice()
	if err != nil {
		return 0, fail("admit", reqs[0].Key, err)
	}
	if len(reply) != len(reqs) {
		return 0, fmt.Errorf("rediskv: admit %q: %d replies for %d requests", reqs[0].Key, len(reply), len(reqs))
	}
	for i, v := range reply {
		switch v := v.(type) {
		case int64:
			out[i] = kv.WindowResult{Admitted: v > 0, Count: int(max(v, -v))}
		case string:
			return i, fail("admit", reqs[i].Key, redisError(v))
		default:
			return i, fmt.Errorf("rediskv: admit %q: unexpected reply %v", reqs[i].Key, v)
		}
	}
	return 0, nil
}

// redisError is an error text the admit script caught with pcall; it counts
// as a Redis error so that fail translates it like any other.
type redisError string

func (e redisError) Error() string { return string(e) }
func (redisError) RedisError()     {}

// Admit runs the sliding-window script once; Script.Run retries with EVAL
// (which also caches the script again) when the server has lost it.
func (s *Store) Admit(ctx context.Context, req kv.WindowRequest) (kv.WindowResult, error) {
	if err := checkWindow(req); err != nil {
		return kv.WindowResult{}, err
	}
	reqs := []kv.WindowRequest{req}
	keys, args := s.admitCall(reqs)
	var out [1]kv.WindowResult
	if _, err := admitResults(reqs, s.sc.admit.Run(ctx, s.rdb, keys, args...), out[:]); err != nil {
		return kv.WindowResult{}, err
	}
	return out[0], nil
}

// AdmitBatch sends the requests in chunks of admitChunk, one EVALSHA per
// chunk, all in a single pipeline. Chunks the server answered NOSCRIPT (its
// script cache was flushed) had no effect, so they are sent again with the
// full source in a second pipeline that also reloads the script for later
// calls.
func (s *Store) AdmitBatch(ctx context.Context, reqs []kv.WindowRequest) ([]kv.WindowResult, error) {
	for i, r := range reqs {
		if err := checkWindow(r); err != nil {
			return nil, fmt.Errorf("rediskv: admit batch request %d: %w", i, err)
		}
	}
	out := make([]kv.WindowResult, len(reqs))
	if len(reqs) == 0 {
		return out, nil
	}
	type chunk struct {
		from, to int
		cmd      *redis.Cmd
	}
	var chunks []chunk
	sha := s.sc.admit.Hash()
	pipe := s.rdb.Pipeline()
	for from := 0; from < len(reqs); from += admitChunk {
		to := min(from+admitChunk, len(reqs))
		keys, args := s.admitCall(reqs[from:to])
		chunks = append(chunks, chunk{from: from, to: to, cmd: pipe.EvalSha(ctx, sha, keys, args...)})
	}
	// Exec's error is the first failed command's; each is inspected below.
	_, _ = pipe.Exec(ctx)

	var lost []int
	for i, c := range chunks {
		if isNoScript(c.cmd.Err()) {
			lost = append(lost, i)
		}
	}
	if len(lost) > 0 {
		s.log.WarnContext(ctx, "redis lost the admit script, resending with EVAL", slog.Int("calls", len(lost)))
		pipe := s.rdb.Pipeline()
		pipe.ScriptLoad(ctx, s.sc.admitSrc)
		for _, i := range lost {
			keys, args := s.admitCall(reqs[chunks[i].from:chunks[i].to])
			chunks[i].cmd = s.sc.admit.Eval(ctx, pipe, keys, args...)
		}
		_, _ = pipe.Exec(ctx)
	}

	var first error
	for _, c := range chunks {
		if i, err := admitResults(reqs[c.from:c.to], c.cmd, out[c.from:c.to]); err != nil && first == nil {
			first = fmt.Errorf("rediskv: admit batch request %d: %w", c.from+i, err)
		}
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}

// pairChunk is how many pairs one script call carries; a pair costs up to
// a dozen commands inside the script, so a call stays well under a
// millisecond.
const pairChunk = 32

// AdmitPairs sends the pairs in chunks of pairChunk, one script call per
// chunk, all in a single pipeline (see pairSrc).
func (s *Store) AdmitPairs(ctx context.Context, reqs []kv.PairRequest) ([]kv.PairResult, error) {
	for i, r := range reqs {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("rediskv: admit pairs request %d: %w", i, err)
		}
	}
	out := make([]kv.PairResult, len(reqs))
	if len(reqs) == 0 {
		return out, nil
	}
	calls := make([]*scriptCall, 0, (len(reqs)+pairChunk-1)/pairChunk)
	for from := 0; from < len(reqs); from += pairChunk {
		calls = append(calls, s.pairCall(reqs, from, min(from+pairChunk, len(reqs))))
	}
	s.evalPipelined(ctx, s.sc.pair, s.sc.pairSrc, calls)
	var first error
	for _, c := range calls {
		got, i, err := replies("admitpairs", reqs[c.from].First.Key, c)
		if err != nil {
			if first == nil {
				first = fmt.Errorf("rediskv: admit pairs request %d: %w", c.from+i, err)
			}
			continue
		}
		for j, v := range got {
			out[c.from+j] = kv.PairResult(v)
		}
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

// windowSpec is what the windows of a call share: all of a request but its
// key and member.
type windowSpec struct {
	now    time.Time
	window time.Duration
	limit  int
}

// pairCall builds the script call of reqs[from:to] (see pairSrc): the
// distinct specs first, then each pair's members and spec numbers.
func (s *Store) pairCall(reqs []kv.PairRequest, from, to int) *scriptCall {
	var specs []windowSpec
	specOf := func(r kv.WindowRequest) int {
		sp := windowSpec{r.Now, r.Window, r.Limit}
		for i, x := range specs {
			if x.now.Equal(sp.now) && x.window == sp.window && x.limit == sp.limit {
				return i + 1
			}
		}
		specs = append(specs, sp)
		return len(specs)
	}
	c := &scriptCall{from: from, to: to, keys: make([]string, 0, 2*(to-from))}
	pairs := make([]any, 0, 5*(to-from))
	for _, r := range reqs[from:to] {
		c.keys = append(c.keys, s.key(r.First.Key))
		if r.Second.Key == "" {
			pairs = append(pairs, 1, r.First.Member, specOf(r.First))
			continue
		}
		c.keys = append(c.keys, s.key(r.Second.Key))
		m2 := r.Second.Member
		if m2 == r.First.Member {
			m2 = ""
		}
		pairs = append(pairs, 2, r.First.Member, specOf(r.First), m2, specOf(r.Second))
	}
	c.args = make([]any, 0, 1+4*len(specs)+len(pairs))
	c.args = append(c.args, len(specs))
	for _, sp := range specs {
		now := sp.now.UnixMicro()
		c.args = append(c.args, now, strconv.FormatInt(now-sp.window.Microseconds(), 10), sp.limit, millis(sp.window))
	}
	c.args = append(c.args, pairs...)
	return c
}
