// Package limit is the push handler's rate-limit stage: per channel account,
// at most Rate requests (tasks) or receivers per period, waiting for capacity
// rather than dropping.
//
// A Limiter takes capacity for one account. Two backends implement it: Local
// (in-process, golang.org/x/time/rate) for the embedded default, and
// redislimit (cluster-wide GCRA in Redis through go-redis/redis_rate) for
// several instances. Both share the waiting logic of Acquire: a call waits up
// to the limit's MaxWait; when the capacity it needs lies further out it
// returns ErrWaitTooLong with a suggested retry delay, so the handler hands
// the task back for later redelivery instead of holding a worker.
package limit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrWaitTooLong is matched (errors.Is) by the error a Limiter returns when
// the capacity a call needs is further away than the limit's MaxWait. The
// error is a *WaitTooLongError with the suggested retry delay.
var ErrWaitTooLong = errors.New("rate limit: wait too long")

// WaitTooLongError says how much of a call was granted and when to try the
// rest.
type WaitTooLongError struct {
	Key string
	// Granted units were taken and may be used now; Requested were asked for.
	Granted, Requested int
	// RetryAfter is when the next units are expected to be free; a good
	// delay for handing the task back.
	RetryAfter time.Duration
}

// Error describes the refusal.
func (e *WaitTooLongError) Error() string {
	return fmt.Sprintf("rate limit %q: %d of %d granted; the rest would wait %v, past the bound",
		e.Key, e.Granted, e.Requested, e.RetryAfter.Round(time.Millisecond))
}

// Is makes errors.Is(err, ErrWaitTooLong) true.
func (e *WaitTooLongError) Is(target error) bool { return target == ErrWaitTooLong }

// RetryAfter returns the suggested retry delay of an ErrWaitTooLong error.
func RetryAfter(err error) (time.Duration, bool) {
	if e, ok := errors.AsType[*WaitTooLongError](err); ok {
		return e.RetryAfter, true
	}
	return 0, false
}

// Limiter takes capacity from named limits. Implementations are safe for
// concurrent use.
type Limiter interface {
	// Wait takes n units from key's limit lim, waiting as needed, and
	// returns how many it took. All n: err is nil. Fewer: err is a
	// *WaitTooLongError (the rest lies past lim.MaxWait), the ctx error, or
	// a backend error; the units granted so far are taken and may be used.
	// A limit that is Unlimited grants n at once. n larger than lim.Burst is
	// taken in chunks of at most Burst, one after the other.
	Wait(ctx context.Context, key string, lim Limit, n int) (int, error)
}

// Reservation is a backend's answer to one Reserve.
type Reservation struct {
	// OK: the units are taken and may be used after Delay. Not OK: nothing
	// was taken, and Delay is the earliest they might be.
	OK    bool
	Delay time.Duration
	// Cancel, when set, gives OK units back if the caller stops waiting for them.
	Cancel func()
}

// Reserver is the primitive a backend gives Acquire: take n ≤ lim.Burst units
// of key's capacity if they are free within maxDelay, and say when they may
// be used; otherwise take nothing and say when they might be free.
type Reserver interface {
	Reserve(ctx context.Context, key string, lim Limit, n int, maxDelay time.Duration) (Reservation, error)
}

// Acquire implements Limiter.Wait over a backend's Reserver; now is the clock
// that measures MaxWait. It returns the units granted and how long it slept
// waiting for them.
func Acquire(ctx context.Context, r Reserver, now func() time.Time, key string, lim Limit, n int) (granted int, waited time.Duration, err error) {
	lim = lim.WithDefaults()
	if n <= 0 {
		return 0, 0, nil
	}
	if lim.Unlimited() {
		return n, 0, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("rate limit %q: %w", key, err)
	}
	deadline := now().Add(lim.MaxWait.D())
	for granted < n {
		c := min(n-granted, lim.Burst)
		budget := max(deadline.Sub(now()), 0)
		res, err := r.Reserve(ctx, key, lim, c, budget)
		if err != nil {
			return granted, waited, fmt.Errorf("rate limit %q: %w", key, err)
		}
		if !res.OK && res.Delay <= 0 {
			res.Delay = time.Millisecond // never spin on a backend that gives no delay
		}
		// An OK reservation is within the budget by contract (give or take
		// rounding), and giving it up could waste it: it is always kept.
		if !res.OK && res.Delay > budget {
			return granted, waited, &WaitTooLongError{Key: key, Granted: granted, Requested: n, RetryAfter: res.Delay}
		}
		if res.Delay > 0 {
			waited += res.Delay
			if err := sleep(ctx, res.Delay); err != nil {
				if res.OK && res.Cancel != nil {
					res.Cancel()
				}
				return granted, waited, fmt.Errorf("rate limit %q: %w", key, err)
			}
		}
		if res.OK {
			granted += c
		}
		// Not OK but within the budget: nothing was taken (another instance
		// got there first); the loop asks again now the delay has passed.
	}
	return granted, waited, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
