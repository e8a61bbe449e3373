// Package lifecycle runs a process's long-running pieces — servers,
// consumers, jobs — as one group: when any of them ends, or the process is
// asked to stop, every piece is stopped, in the order they were added, within
// one shared deadline.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/oklog/run"
)

// ErrShutdownTimeout is returned by Run when the pieces did not all stop
// within the shutdown bound.
var ErrShutdownTimeout = errors.New("lifecycle: shutdown timed out")

// Group is a set of actors that start together and stop together.
type Group struct {
	logger  *slog.Logger
	timeout time.Duration
	g       run.Group
	names   []string

	once     sync.Once
	stopping chan struct{} // closed when the first stop function is called
	stopCtx  context.Context
	stopDone context.CancelFunc
}

// New returns an empty group whose stop functions share a deadline of
// timeout from the moment stopping begins.
func New(logger *slog.Logger, timeout time.Duration) *Group {
	return &Group{logger: logger, timeout: timeout, stopping: make(chan struct{})}
}

// Add registers an actor. run blocks until the actor is done (returning nil
// when it ended because it was stopped); stop must make run return, draining
// in-flight work before ctx's deadline. Stop functions are called in the order
// actors were added, so add intake (HTTP, gRPC) before the workers behind it.
func (g *Group) Add(name string, runFn func() error, stop func(ctx context.Context) error) {
	g.names = append(g.names, name)
	g.g.Add(func() error {
		if err := runFn(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}, func(cause error) {
		ctx := g.deadline()
		start := time.Now()
		if err := stop(ctx); err != nil {
			g.logger.Warn("stop", "actor", name, "err", err)
		}
		g.logger.Debug("stopped", "actor", name, "took", time.Since(start))
	})
}

// deadline returns the shared stop context, starting its clock on first use.
func (g *Group) deadline() context.Context {
	g.once.Do(func() {
		g.stopCtx, g.stopDone = context.WithTimeout(context.Background(), g.timeout)
		close(g.stopping)
	})
	return g.stopCtx
}

// Run starts every actor and blocks until ctx is cancelled (a signal, say) or
// an actor ends, then stops them all. It returns nil after a clean stop on
// ctx, the first actor's error if one failed, or ErrShutdownTimeout when the
// actors did not all return within the bound.
func (g *Group) Run(ctx context.Context) error {
	stopped := make(chan struct{})
	g.g.Add(func() error {
		select {
		case <-ctx.Done():
			g.logger.Info("stopping", "cause", context.Cause(ctx), "bound", g.timeout)
			return nil
		case <-stopped:
			return nil
		}
	}, func(error) { close(stopped) })

	result := make(chan error, 1)
	go func() { result <- g.g.Run() }()

	select {
	case err := <-result:
		g.release()
		return err
	case <-g.stopping:
	}
	// Stopping has begun; allow the bound plus a little for the stop
	// functions' own returns.
	timer := time.NewTimer(g.timeout + 500*time.Millisecond)
	defer timer.Stop()
	select {
	case err := <-result:
		g.release()
		return err
	case <-timer.C:
		g.release()
		return fmt.Errorf("%w after %s (actors: %v)", ErrShutdownTimeout, g.timeout, g.names)
	}
}

func (g *Group) release() {
	if g.stopDone != nil {
		g.stopDone()
	}
}
