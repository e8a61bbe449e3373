package lifecycle

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// blocker is an actor that runs until stopped, taking drain to drain.
type blocker struct {
	name  string
	drain time.Duration
	quit  chan struct{}
	log   *[]string
	mu    *sync.Mutex
}

func newBlocker(name string, drain time.Duration, log *[]string, mu *sync.Mutex) *blocker {
	return &blocker{name: name, drain: drain, quit: make(chan struct{}), log: log, mu: mu}
}

func (b *blocker) run() error { <-b.quit; return nil }

func (b *blocker) stop(ctx context.Context) error {
	b.mu.Lock()
	*b.log = append(*b.log, b.name)
	b.mu.Unlock()
	defer close(b.quit)
	select {
	case <-time.After(b.drain):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestStopsInOrderOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var order []string
		var mu sync.Mutex
		g := New(slog.New(slog.DiscardHandler), 15*time.Second)
		for _, n := range []string{"http", "consumer", "cron"} {
			b := newBlocker(n, time.Second, &order, &mu)
			g.Add(n, b.run, b.stop)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(time.Minute); cancel() }()
		start := time.Now()
		require.NoError(t, g.Run(ctx))
		require.Equal(t, []string{"http", "consumer", "cron"}, order)
		require.Equal(t, time.Minute+3*time.Second, time.Since(start), "each actor drains 1s, sequentially")
	})
}

func TestActorFailureStopsTheRest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var order []string
		var mu sync.Mutex
		g := New(slog.New(slog.DiscardHandler), time.Second)
		b := newBlocker("consumer", 0, &order, &mu)
		g.Add("consumer", b.run, b.stop)
		boom := errors.New("listen: address in use")
		g.Add("http", func() error { return boom }, func(context.Context) error { return nil })
		err := g.Run(context.Background())
		require.ErrorIs(t, err, boom)
		require.ErrorContains(t, err, "http: listen")
		require.Equal(t, []string{"consumer"}, order)
	})
}

func TestShutdownBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(slog.New(slog.DiscardHandler), 2*time.Second)
		release := make(chan struct{})
		// An actor that ignores its stop deadline.
		g.Add("stuck", func() error { <-release; return nil }, func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		start := time.Now()
		err := g.Run(ctx)
		require.ErrorIs(t, err, ErrShutdownTimeout)
		require.Less(t, time.Since(start), 3*time.Second)
		close(release)
		synctest.Wait()
	})
}
