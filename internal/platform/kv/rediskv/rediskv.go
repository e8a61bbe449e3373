// Package rediskv is the Redis kv.Store, for running several waypost
// instances that must share dedup windows, caps and limits.
//
// Every key is stored under Config.Prefix, so environments (and tests) can
// share one server. Values use Redis's own types — string, list, hash and
// sorted set — so a type clash surfaces as WRONGTYPE and becomes
// kv.ErrWrongType. Multi-step operations run as Lua scripts called by SHA;
// see scripts.go.
package rediskv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/waypost/waypost/internal/platform/kv"
)

// DefaultAddr is the server used when Config.Addr is empty.
const DefaultAddr = "127.0.0.1:6379"

// Config says how to reach Redis and where this Store's keys live.
type Config struct {
	// Addr is host:port of the server (default DefaultAddr).
	Addr string `yaml:"addr"`
	// Username and Password authenticate with AUTH (ACL user or legacy password).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// DB selects the logical database.
	DB int `yaml:"db"`
	// Prefix is prepended to every key, e.g. "waypost:prod:".
	Prefix string `yaml:"prefix"`
	// PoolSize caps open connections (0: the client's default, 10 per CPU).
	PoolSize int `yaml:"pool_size"`
	// MinIdleConns keeps this many connections open while idle.
	MinIdleConns int `yaml:"min_idle_conns"`
	// DialTimeout, ReadTimeout and WriteTimeout bound network waits (0: the
	// client's defaults of 5s, 3s and 3s); a context deadline also applies.
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// TLS, when set, connects over TLS.
	TLS *tls.Config `yaml:"-"`
}

// LogValue renders the config for logs with the password masked.
func (c Config) LogValue() slog.Value {
	pw := ""
	if c.Password != "" {
		pw = "***"
	}
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("username", c.Username),
		slog.String("password", pw),
		slog.Int("db", c.DB),
		slog.String("prefix", c.Prefix),
		slog.Int("poolSize", c.PoolSize),
		slog.Bool("tls", c.TLS != nil),
	)
}

// Store is a kv.Store on Redis. It is safe for concurrent use.
type Store struct {
	rdb    *redis.Client
	prefix string
	sc     scripts
	log    *slog.Logger
}

var _ kv.Store = (*Store)(nil)

// New connects to Redis, checks the connection and loads the scripts. A nil
// logger discards.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	rdb := redis.NewClient(&redis.Options{
		Addr:         cfg.Addr,
		Username:     cfg.Username,
		Password:     cfg.Password,
		DB:           cfg.DB,
		PoolSize:     cfg.PoolSize,
		MinIdleConns: cfg.MinIdleConns,
		DialTimeout:  cfg.DialTimeout,
		ReadTimeout:  cfg.ReadTimeout,
		WriteTimeout: cfg.WriteTimeout,
		TLSConfig:    cfg.TLS,
		// A plain Redis server has no maintenance notifications; asking for
		// them only costs a failed command per connection.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	s := &Store{rdb: rdb, prefix: cfg.Prefix, sc: newScripts(""), log: logger}
	if err := s.start(ctx); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("rediskv: connect %s: %w", cfg.Addr, err)
	}
	logger.InfoContext(ctx, "redis kv ready", slog.Any("config", cfg))
	return s, nil
}

// start pings the server and loads every script, so that later calls go by
// SHA from the first one.
func (s *Store) start(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return err
	}
	for _, sc := range s.sc.all() {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return fmt.Errorf("load script: %w", err)
		}
	}
	return nil
}

func (s *Store) key(k string) string { return s.prefix + k }

// fail wraps err from op on key, translating Redis errors to kv's sentinels.
func fail(op, key string, err error) error {
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("rediskv: %s %q: %w", op, key, kv.ErrNotFound)
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		switch {
		case strings.HasPrefix(msg, "WRONGTYPE"), strings.Contains(msg, "not an integer"):
			return fmt.Errorf("rediskv: %s %q: %w: %s", op, key, kv.ErrWrongType, msg)
		case strings.Contains(msg, "overflow"):
			return fmt.Errorf("rediskv: %s %q: %w: %s", op, key, kv.ErrInvalidArgument, msg)
		}
	}
	return fmt.Errorf("rediskv: %s %q: %w", op, key, err)
}

func invalid(op, key, why string) error {
	return fmt.Errorf("rediskv: %s %q: %s: %w", op, key, why, kv.ErrInvalidArgument)
}

// checkKeyTTL validates the arguments most operations share.
func checkKeyTTL(op, key string, ttl time.Duration) error {
	if key == "" {
		return invalid(op, key, "empty key")
	}
	if ttl < 0 {
		return invalid(op, key, fmt.Sprintf("negative ttl %v", ttl))
	}
	return nil
}

// millis rounds a positive duration up to whole milliseconds, Redis's expiry
// resolution, so a key never expires before its ttl; 0 stays 0.
func millis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// Get returns the value of a string key, or kv.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if key == "" {
		return nil, invalid("get", key, "empty key")
	}
	v, err := s.rdb.Get(ctx, s.key(key)).Bytes()
	if err != nil {
		return nil, fail("get", key, err)
	}
	return v, nil
}

// Set stores val under key, replacing any value and its expiry.
func (s *Store) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := checkKeyTTL("set", key, ttl); err != nil {
		return err
	}
	args := []any{"set", s.key(key), val}
	if ttl > 0 {
		args = append(args, "px", millis(ttl))
	}
	if err := s.rdb.Do(ctx, args...).Err(); err != nil {
		return fail("set", key, err)
	}
	return nil
}

// SetNX stores val only if key does not exist and reports whether it did.
func (s *Store) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := checkKeyTTL("setnx", key, ttl); err != nil {
		return false, err
	}
	args := []any{"set", s.key(key), val, "nx"}
	if ttl > 0 {
		args = append(args, "px", millis(ttl))
	}
	err := s.rdb.Do(ctx, args...).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, fail("setnx", key, err)
	}
	return true, nil
}

// CompareAndSwap replaces key's value with val only if it currently equals
// old (old == nil: only if key is absent), in one script.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, val []byte, ttl time.Duration) (bool, error) {
	if err := checkKeyTTL("compare-and-swap", key, ttl); err != nil {
		return false, err
	}
	hasOld := "0"
	if old != nil {
		hasOld = "1"
	}
	n, err := s.sc.cas.Run(ctx, s.rdb, []string{s.key(key)}, hasOld, old, val, millis(ttl)).Int64()
	if err != nil {
		return false, fail("compare-and-swap", key, err)
	}
	return n == 1, nil
}

// Delete removes the keys, of any type; missing keys are not an error.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		if k == "" {
			return invalid("delete", k, "empty key")
		}
		full[i] = s.key(k)
	}
	if err := s.rdb.Del(ctx, full...).Err(); err != nil {
		return fail("delete", keys[0], err)
	}
	return nil
}

// IncrBy adds delta to the counter at key and, when expireAt is set, moves
// its expiry there (INCRBY + PEXPIREAT in one script).
func (s *Store) IncrBy(ctx context.Context, key string, delta int64, expireAt time.Time) (int64, error) {
	if key == "" {
		return 0, invalid("incrby", key, "empty key")
	}
	var at int64
	if !expireAt.IsZero() {
		// Rounded up, and at least 1 so that a past instant still means "now".
		at = max((expireAt.UnixNano()+int64(time.Millisecond)-1)/int64(time.Millisecond), 1)
	}
	v, err := s.sc.incr.Run(ctx, s.rdb, []string{s.key(key)}, delta, at).Text()
	if err != nil {
		return 0, fail("incrby", key, err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("rediskv: incrby %q: reply %q: %w", key, v, err)
	}
	return n, nil
}

// Ping reports whether the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("rediskv: ping: %w", err)
	}
	return nil
}

// Close closes the connection pool.
func (s *Store) Close() error {
	if err := s.rdb.Close(); err != nil {
		return fmt.Errorf("rediskv: close: %w", err)
	}
	return nil
}
