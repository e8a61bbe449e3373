package rediskv

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/waypost/waypost/internal/platform/kv"
)

// ListPush appends vals, trims the list to its newest maxLen elements and
// sets its ttl, all in one script (RPUSH + LTRIM + PEXPIRE).
func (s *Store) ListPush(ctx context.Context, key string, maxLen int, ttl time.Duration, vals ...[]byte) error {
	if err := checkKeyTTL("listpush", key, ttl); err != nil {
		return err
	}
	if len(vals) == 0 {
		return nil
	}
	args := make([]any, 0, 2+len(vals))
	args = append(args, maxLen, millis(ttl))
	for _, v := range vals {
		args = append(args, v)
	}
	if err := s.sc.listPush.Run(ctx, s.rdb, []string{s.key(key)}, args...).Err(); err != nil {
		return fail("listpush", key, err)
	}
	return nil
}

// ListRange is LRANGE.
func (s *Store) ListRange(ctx context.Context, key string, start, stop int) ([][]byte, error) {
	if key == "" {
		return nil, invalid("listrange", key, "empty key")
	}
	vals, err := s.rdb.LRange(ctx, s.key(key), int64(start), int64(stop)).Result()
	if err != nil {
		return nil, fail("listrange", key, err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out, nil
}

// HashIncrBy adds delta to field and sets the hash's ttl in one script
// (HINCRBY + PEXPIRE).
func (s *Store) HashIncrBy(ctx context.Context, key, field string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkKeyTTL("hashincrby", key, ttl); err != nil {
		return 0, err
	}
	v, err := s.sc.hashIncr.Run(ctx, s.rdb, []string{s.key(key)}, field, delta, millis(ttl)).Text()
	if err != nil {
		return 0, fail("hashincrby", key, err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("rediskv: hashincrby %q: reply %q: %w", key, v, err)
	}
	return n, nil
}

// HashGetAll is HGETALL with every value read as an integer.
func (s *Store) HashGetAll(ctx context.Context, key string) (map[string]int64, error) {
	if key == "" {
		return nil, invalid("hashgetall", key, "empty key")
	}
	m, err := s.rdb.HGetAll(ctx, s.key(key)).Result()
	if err != nil {
		return nil, fail("hashgetall", key, err)
	}
	out := make(map[string]int64, len(m))
	for f, v := range m {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("rediskv: hashgetall %q: field %q holds %q: %w", key, f, v, kv.ErrWrongType)
		}
		out[f] = n
	}
	return out, nil
}
