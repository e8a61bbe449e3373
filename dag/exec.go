package dag

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

const (
	levelDebug = slog.LevelDebug
	levelWarn  = slog.LevelWarn
	// lateWarn is how late a step may return after its node was given up
	// before it is logged as a warning: a step that honours its ctx returns
	// within microseconds of the cancel, one that ignores it much later.
	lateWarn = 10 * time.Millisecond
)

// outcome is what running one node gave, before the run records it.
type outcome struct {
	status Status
	value  any
	err    error
	end    time.Duration      // offset from the run's start
	span   trace.Span         // nil without a tracer
	cancel context.CancelFunc // the node's timeout, nil without one
	ran    bool               // the step or skip condition was called
}

// release ends the node's span with the step's outcome and releases its
// timeout. It runs before the outcome is recorded, so every span of a node
// its own worker decided has ended when Run returns.
func (o *outcome) release() {
	if o.cancel != nil {
		o.cancel()
	}
	if o.span == nil {
		return
	}
	o.span.SetAttributes(attribute.String("dag.status", o.status.String()))
	if o.err != nil && o.status != StatusOK && o.status != StatusSkipped {
		o.span.RecordError(o.err)
		o.span.SetStatus(codes.Error, o.status.String())
	}
	o.span.End()
}

// exec runs node i: its skip rules, then its step under its timeout, and
// fills o. Its frame is kept small (tracing and timeouts live in helpers)
// because it sits under every step on a fresh goroutine's stack, which
// starts at 2 KiB: a bigger frame makes each new worker grow its stack.
func (r *run) exec(i int32, o *outcome) {
	n := &r.g.nodes[i]
	in := Inputs{r: r, i: i}
	ctx := r.ctx
	if ctx.Err() != nil {
		// The run ended between the node's start and now: run nothing.
		o.status, o.err, o.end = StatusCancelled, context.Cause(ctx), time.Since(r.t0)
		return
	}
	o.ran = true
	if r.g.tracer != nil {
		ctx = r.startSpan(ctx, n, o)
	}
	if n.Disabled || n.Skip != nil {
		skip, err := r.skip(n, in)
		switch {
		case err != nil:
			o.status, o.err, o.end = StatusError, err, time.Since(r.t0)
			o.release()
			return
		case skip:
			o.status, o.end = StatusSkipped, time.Since(r.t0)
			o.release()
			return
		}
	}
	var stop func() bool
	if n.Timeout > 0 {
		ctx, stop = r.withTimeout(ctx, i, o)
	}
	o.value, o.err = r.call(ctx, i, n, in)
	if stop != nil {
		stop()
	}
	o.end = time.Since(r.t0)
	switch {
	case o.err == nil:
		o.status = StatusOK
	case r.ctx.Err() != nil:
		// The run is ending (another node failed, or the caller's ctx is
		// done); the run records the node as such.
		o.status = StatusCancelled
	case o.cancel != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		o.status, o.err = StatusTimeout, n.timeoutErr
	default:
		o.status = StatusError
	}
	if o.span != nil || o.cancel != nil {
		o.release()
	}
}

// startSpan starts node n's span under ctx and keeps it in o.
func (r *run) startSpan(ctx context.Context, n *node, o *outcome) context.Context {
	ctx, o.span = r.g.tracer.Start(ctx, n.spanName, trace.WithAttributes(
		attribute.String("dag.graph", r.g.name), attribute.String("dag.node", n.Name),
		attribute.String("dag.policy", n.Policy.String())))
	return ctx
}

// withTimeout derives node i's ctx from its timeout, counted from the node's
// start. When the run's deadline comes first the node simply runs under the
// run's ctx, and the run's deadline decides. Otherwise a guard gives up on
// the node at its deadline even if the step ignores ctx.
func (r *run) withTimeout(ctx context.Context, i int32, o *outcome) (context.Context, func() bool) {
	dl := r.t0.Add(r.nodes[i].start + r.g.nodes[i].Timeout)
	if r.hasDeadline && !dl.Before(r.deadline) {
		return ctx, nil
	}
	ctx, o.cancel = context.WithDeadline(ctx, dl)
	return ctx, context.AfterFunc(ctx, func() { r.expire(i) })
}

// skip tells whether node n is skipped in this run; a panicking condition is
// an error.
func (r *run) skip(n *node, in Inputs) (skip bool, err error) {
	if n.Disabled {
		return true, nil
	}
	if n.Skip == nil {
		return false, nil
	}
	defer func() {
		if v := recover(); v != nil {
			err = r.panicked(n, v)
		}
	}()
	return n.Skip(in), nil
}

// call runs node i's step, turning a panic into a *PanicError.
func (r *run) call(ctx context.Context, i int32, n *node, in Inputs) (out any, err error) {
	returned := false
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, r.panicked(n, v)
		} else if !returned {
			r.goexit(i)
		}
	}()
	out, err = n.Step(ctx, in)
	returned = true
	return out, err
}

// goexit fails node i, whose step called runtime.Goexit (t.FailNow does):
// the goroutine is ending, so a new worker takes over what it would have run
// next. The node's span, if any, is not ended.
func (r *run) goexit(i int32) {
	n := &r.g.nodes[i]
	r.g.log.Error("dag: step called runtime.Goexit", "graph", r.g.name, "node", n.Name)
	o := outcome{status: StatusError, err: fmt.Errorf("node %s: %w", n.Name, ErrGoexit), end: time.Since(r.t0), ran: true}
	r.mu.Lock()
	r.finish(i, &o)
	spawn := r.dispatch()
	r.mu.Unlock()
	if spawn {
		go r.helper()
	}
}

func (r *run) panicked(n *node, v any) error {
	stack := debug.Stack()
	r.g.log.Error("dag: step panicked", "graph", r.g.name, "node", n.Name, "panic", v, "stack", string(stack))
	return &PanicError{Node: n.Name, Value: v, Stack: stack}
}
