// Package redislimit is the cluster-wide limit.Limiter: a GCRA per key in
// Redis through github.com/go-redis/redis_rate, so every instance sharing the
// server draws on one budget per channel account.
//
// Each call reserves its units ahead on the account's GCRA state and sleeps
// until they are due (see Reserve), so waiters on every instance queue in
// order of arrival. Redis's own clock (the TIME command inside the script)
// measures the rate, so instances with skewed clocks still agree.
package redislimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/waypost/waypost/internal/platform/metrics"
	"github.com/waypost/waypost/internal/push/limit"
)

// KeyNamespace is where limiter state lives below Config.Prefix. redis_rate
// puts its own "rate:" in front, so a key reads
// "rate:<prefix>push:limit:<account>".
const KeyNamespace = "push:limit:"

// Timings of the fallback.
const (
	// DefaultLogEvery is the least time between two fallback warnings.
	DefaultLogEvery = 10 * time.Second
	// DefaultRetryRedisAfter is how long calls go straight to the fallback
	// after Redis failed, before Redis is tried again: a failing call can
	// take the client's whole retry schedule, which every task should not pay.
	DefaultRetryRedisAfter = 5 * time.Second
)

// Config says where the limiter's keys live and what to do when Redis fails.
type Config struct {
	// Prefix isolates environments sharing one server, e.g. "waypost:prod:".
	Prefix string
	// Fallback, when set, takes over while Redis fails (an in-process
	// limit.Local, say): each instance then enforces the full limit on its
	// own, a metric and a rate-limited warning say so, and Redis is tried
	// again after DefaultRetryRedisAfter. Nil: Wait returns the Redis error
	// and the caller decides.
	Fallback limit.Limiter
	// Clock replaces time.Now for MaxWait (default time.Now); the rate itself
	// runs on Redis's clock.
	Clock func() time.Time
}

// Limiter is a limit.Limiter on Redis. It is safe for concurrent use.
type Limiter struct {
	rl       *redis_rate.Limiter
	prefix   string
	fallback limit.Limiter
	now      func() time.Time
	log      *slog.Logger
	met      *limit.Metrics
	fellBack prometheus.Counter
	closer   func() error

	warnMu   sync.Mutex
	lastWarn time.Time
	// downUntil (unix nanoseconds by now) sends calls to the fallback
	// without trying Redis.
	downUntil atomic.Int64
}

var _ limit.Limiter = (*Limiter)(nil)

// New returns a Limiter on rdb, which the caller owns (Close leaves it
// open). A nil logger discards; a nil registerer registers nowhere.
func New(rdb redis.UniversalClient, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Limiter, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	met, err := limit.NewMetrics(reg, "redis")
	if err != nil {
		return nil, err
	}
	fellBack := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "waypost", Subsystem: "push_limit", Name: "fallback_total",
		Help: "Limiter calls served by the in-process fallback because Redis failed."})
	if fellBack, err = metrics.Register(reg, fellBack); err != nil {
		return nil, fmt.Errorf("redislimit: register metrics: %w", err)
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	return &Limiter{
		rl: redis_rate.NewLimiter(rdb), prefix: cfg.Prefix, fallback: cfg.Fallback, now: now,
		log: logger, met: met, fellBack: fellBack, closer: func() error { return nil },
	}, nil
}

// Open connects to Redis with opts, checks the connection and returns a
// Limiter that owns the client; Close closes it. The composition root builds
// opts from the same settings as the kv store's Redis.
func Open(ctx context.Context, opts *redis.Options, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Limiter, error) {
	o := *opts
	if o.MaintNotificationsConfig == nil {
		// A plain Redis server has no maintenance notifications; asking
		// costs a failed command per connection.
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	}
	rdb := redis.NewClient(&o)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redislimit: connect %s: %w", o.Addr, err)
	}
	l, err := New(rdb, cfg, logger, reg)
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	l.closer = rdb.Close
	return l, nil
}

// Close closes the Redis client if Open made it.
func (l *Limiter) Close() error { return l.closer() }

// Wait takes n units of key's limit, cluster-wide; see limit.Limiter.
func (l *Limiter) Wait(ctx context.Context, key string, lim limit.Limit, n int) (int, error) {
	if err := lim.Validate(); err != nil {
		return 0, err
	}
	if l.fallback != nil && l.now().UnixNano() < l.downUntil.Load() {
		l.fellBack.Inc()
		return l.fallback.Wait(ctx, key, lim, n)
	}
	granted, waited, err := limit.Acquire(ctx, l, l.now, key, lim, n)
	if err != nil && l.fallback != nil && isBackendError(ctx, err) {
		l.downUntil.Store(l.now().Add(DefaultRetryRedisAfter).UnixNano())
		l.fellBack.Inc()
		l.warn(ctx, key, err)
		more, ferr := l.fallback.Wait(ctx, key, lim, n-granted)
		granted += more
		err = ferr
	}
	l.met.Observe(waited, err)
	return granted, err
}

// isBackendError tells a Redis failure from the limiter's own outcomes.
func isBackendError(ctx context.Context, err error) bool {
	return !errors.Is(err, limit.ErrWaitTooLong) && !errors.Is(err, limit.ErrInvalidSettings) && ctx.Err() == nil
}

// Reserve takes n units that conform within maxDelay, scheduling them ahead
// like a reservation.
//
// redis_rate's GCRA only admits units that conform now. Asking with the
// burst raised by the units that fit in maxDelay ("ahead") admits them up to
// maxDelay early, and advances the account's theoretical arrival time (TAT)
// exactly as admitting them on time would. The caller then sleeps until they
// conform under the real burst: new TAT - burst×interval, which is
// ResetAfter - burst×interval from now. Waiters so queue on the TAT instead
// of polling, and a waiter that wakes late loses nothing: with burst 1,
// polling lost a fifth of the rate to round-trip lateness at 200/s.
//
// A reservation cannot be given back on Redis; a waiter whose ctx ends
// wastes its slot, erring on the side of the provider.
func (l *Limiter) Reserve(ctx context.Context, key string, lim limit.Limit, n int, maxDelay time.Duration) (limit.Reservation, error) {
	interval := lim.Per.D().Seconds() / float64(lim.Rate)
	ahead := int(maxDelay.Seconds() / interval)
	res, err := l.rl.AllowN(ctx, l.prefix+KeyNamespace+key, redis_rate.Limit{
		Rate: lim.Rate, Burst: lim.Burst + ahead, Period: lim.Per.D(),
	}, n)
	if err != nil {
		return limit.Reservation{}, err
	}
	if res.Allowed >= n {
		delay := res.ResetAfter - seconds(float64(lim.Burst)*interval)
		if delay < clockResolution {
			delay = 0
		}
		return limit.Reservation{OK: true, Delay: delay}, nil
	}
	// Free under the real burst that many intervals after the raised one.
	return limit.Reservation{Delay: res.RetryAfter + seconds(float64(ahead)*interval)}, nil
}

// clockResolution is below what the script's clock can tell apart: it
// counts seconds since 2017 in a double, good to a fraction of a
// microsecond, so a delay shorter than this is rounding, not waiting.
const clockResolution = 10 * time.Microsecond

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func (l *Limiter) warn(ctx context.Context, key string, err error) {
	l.warnMu.Lock()
	now := l.now()
	ok := l.lastWarn.IsZero() || now.Sub(l.lastWarn) >= DefaultLogEvery
	if ok {
		l.lastWarn = now
	}
	l.warnMu.Unlock()
	if ok {
		l.log.WarnContext(ctx, "rate limit falling back to in-process: redis failed; each instance now limits alone",
			slog.String("key", key), slog.Any("err", err))
	}
}
