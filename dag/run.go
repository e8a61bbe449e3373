package dag

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// state is where a node is in one run.
type state uint8

const (
	stWaiting state = iota // dependencies pending, or queued
	stRunning              // taken by a worker
	stDone                 // decided: its result is final
)

// nodeRun is one node's state and result in one run (NodeResult without the
// name, kept small: a run allocates one per node and clears them).
type nodeRun struct {
	start   time.Duration
	dur     time.Duration
	err     error
	value   any
	pending int32 // dependencies not yet done
	q       int32 // the ready queue's slot of the same index (each node enters once)
	status  Status
	started bool
	state   state
}

// run is one execution of a graph. Every field below mu is guarded by it; a
// node's result is written under mu and never after the run is over, so
// a step that returns late (it ignored its ctx) changes nothing the caller
// sees.
type run struct {
	Result
	g           *Graph
	parent      context.Context // the caller's
	ctx         context.Context // parent, cancelled when the run is over
	cancel      context.CancelCauseFunc
	input       any
	t0          time.Time
	deadline    time.Time
	hasDeadline bool

	mu       sync.Mutex
	cond     sync.Cond // idle workers wait here for queued nodes
	doneCond sync.Cond // Run waits here when the caller's ctx cannot be cancelled
	over     bool
	err      error
	left     int   // nodes not yet decided
	waiting  int   // nodes not yet queued
	qh, qt   int32 // ready queue: nodes[qh:qt].q
	idle     int   // workers waiting on cond, not yet signalled
	coming   int   // workers signalled that have not yet looked at the queue
}

// Run executes the graph once with input and returns every node's result.
// It returns when every node is decided, when a required node fails (a
// *NodeError), or when ctx is done (an error wrapping ctx.Err()), whichever
// comes first; steps still running then are cancelled through their ctx and
// not waited for. The Result is returned in every case.
//
// When ctx has a deadline or can be cancelled, or a node has a timeout, the
// goroutine calling Run only waits: steps run on worker goroutines, so a
// step that ignores its ctx cannot hold Run past the run's deadline or its
// node's timeout. Otherwise nothing can time out, and the calling goroutine
// runs steps too; then a required node's failure returns once the step the
// caller is running returns.
func (g *Graph) Run(ctx context.Context, input any) (*Result, error) {
	r := g.newRun()
	r.input = input
	r.cond.L = &r.mu
	r.doneCond.L = &r.mu
	r.parent = ctx
	r.deadline, r.hasDeadline = ctx.Deadline()
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	r.left = len(g.nodes)
	r.waiting = len(g.nodes) - len(g.roots)
	for i := range g.nodes {
		r.nodes[i].pending = int32(len(g.nodes[i].preds))
	}
	for k, i := range g.roots {
		r.nodes[k].q = i
	}
	r.qt = int32(len(g.roots))
	r.t0 = time.Now()
	// Nothing can time out or cancel this run: the caller's goroutine can
	// work too, no "on time" to keep (see Run's doc).
	r.mu.Lock()
	if ctx.Done() == nil && !g.timeouts {
		if i, ok := r.next(-1); ok {
			r.work(i)
		}
	} else {
		r.coming = 1
		r.mu.Unlock()
		go r.helper()
	}
	if ctx.Done() == nil {
		// Nothing can cancel the caller's ctx: wait for the run to end
		// without making the run ctx's Done channel.
		r.mu.Lock()
		for !r.over {
			r.doneCond.Wait()
		}
	} else {
		<-r.ctx.Done()
		r.mu.Lock()
		if !r.over {
			r.abortParent()
		}
	}
	r.mu.Unlock()
	return &r.Result, r.err
}

// newRun allocates a run and its nodes' state, in one allocation for graphs
// of up to 64 nodes.
func (g *Graph) newRun() *run {
	var r *run
	switch n := len(g.nodes); {
	case n <= 4:
		r = newSlab(n, func(a *[4]nodeRun) []nodeRun { return a[:] })
	case n <= 8:
		r = newSlab(n, func(a *[8]nodeRun) []nodeRun { return a[:] })
	case n <= 12:
		r = newSlab(n, func(a *[12]nodeRun) []nodeRun { return a[:] })
	case n <= 16:
		r = newSlab(n, func(a *[16]nodeRun) []nodeRun { return a[:] })
	case n <= 24:
		r = newSlab(n, func(a *[24]nodeRun) []nodeRun { return a[:] })
	case n <= 32:
		r = newSlab(n, func(a *[32]nodeRun) []nodeRun { return a[:] })
	case n <= 64:
		r = newSlab(n, func(a *[64]nodeRun) []nodeRun { return a[:] })
	default:
		r = &run{}
		r.nodes = make([]nodeRun, n)
	}
	r.g, r.graph = g, g
	return r
}

// slab is a run with room for its nodes' state.
type slab[A any] struct {
	run
	a A
}

func newSlab[A any](n int, all func(*A) []nodeRun) *run {
	x := new(slab[A])
	x.nodes = all(&x.a)[:n]
	return &x.run
}

// abortParent ends the run because the caller's ctx is done. Called with mu
// held.
func (r *run) abortParent() {
	err := r.parent.Err()
	if cause := context.Cause(r.parent); cause != nil && cause != err {
		err = fmt.Errorf("%w (%w)", err, cause)
	}
	r.abort(fmt.Errorf("dag: %s: %w", r.g.name, err), err)
}

// finish records node i's outcome and readies its dependents. A node the run
// already gave up on (by its timeout, or because the run is over) keeps its
// recorded result. Called with mu held.
func (r *run) finish(i int32, o *outcome) {
	st := &r.nodes[i]
	if st.state != stRunning || r.over {
		r.late(i, o)
		return
	}
	if o.status != StatusOK && o.status != StatusSkipped && r.ctx.Err() != nil {
		// The caller's ctx is done (the run's own cancel sets over first):
		// the step failed because the whole run is ending.
		r.abortParent()
		return
	}
	n := &r.g.nodes[i]
	st.state = stDone
	st.dur = o.end - st.start
	st.status, st.err = o.status, o.err
	switch o.status {
	case StatusOK:
		st.value = o.value
	case StatusSkipped:
		st.value = n.Default
	default:
		if n.Policy == Required {
			r.total = o.end
			err := &NodeError{Graph: r.g.name, Node: n.Name, Status: o.status, Err: o.err}
			r.abort(err, err)
			return
		}
		st.value = n.Default
	}
	r.left--
	if r.left == 0 {
		r.over, r.total = true, o.end
		r.cond.Broadcast()
		r.doneCond.Broadcast()
		r.cancel(nil)
		return
	}
	for _, s := range n.succs {
		ns := &r.nodes[s]
		if ns.pending--; ns.pending == 0 {
			ns.start = o.end // ready; take starts it no earlier
			r.nodes[r.qt].q = s
			r.qt++
			r.waiting--
		}
	}
}

// late logs a step that returned after its node was decided.
func (r *run) late(i int32, o *outcome) {
	st := &r.nodes[i]
	if !o.ran {
		return
	}
	over := o.end - (st.start + st.dur)
	lvl := levelDebug
	if over >= lateWarn {
		lvl = levelWarn
	}
	r.g.log.Log(context.Background(), lvl, "dag: step returned after its node was given up",
		"graph", r.g.name, "node", r.g.nodes[i].Name, "status", st.status.String(), "late", over)
}

// abort ends the run with err: nodes still running are given up (timeout when
// the run's deadline passed, else cancelled), the others never start, and the
// run's ctx is cancelled with cause. Called with mu held.
func (r *run) abort(err, cause error) {
	now := time.Since(r.t0)
	if r.total == 0 {
		r.total = now
	}
	status := StatusCancelled
	if r.hasDeadline && !time.Now().Before(r.deadline) {
		status = StatusTimeout
	}
	for k := range r.nodes {
		st := &r.nodes[k]
		switch st.state {
		case stRunning:
			st.dur = now - st.start
			st.status, st.err = status, cause
		case stWaiting:
			st.status, st.err, st.start = StatusCancelled, cause, 0
		}
		st.state = stDone
	}
	r.over, r.err = true, err
	r.cond.Broadcast()
	r.doneCond.Broadcast()
	r.cancel(cause)
}
