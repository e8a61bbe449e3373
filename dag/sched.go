package dag

import "time"

// Scheduling. There is no goroutine per node. Ready nodes wait in the run's
// queue; a worker that finishes a node takes the next one itself, and
// before it runs a step it makes sure one more worker is on its way while
// nodes are left in the queue: it wakes an idle worker or starts a
// goroutine. That worker does the same on arrival, so k nodes that become
// ready together get k workers, one after the other (dispatch by chain),
// while a worker that finds the queue drained by faster steps simply stops.
// Every node that can run is therefore running or has a worker coming for
// it, without a goroutine started per node when steps are quick. All of it
// under run.mu, which is held only for bookkeeping, never across a step.

// work runs node i, already taken, and then whatever it is handed next.
func (r *run) work(i int32) {
	for {
		var o outcome
		r.exec(i, &o)
		r.mu.Lock()
		r.finish(i, &o)
		var ok bool
		if i, ok = r.next(o.end); !ok {
			return
		}
	}
}

// helper is a worker started by dispatch: it takes a queued node, passes the
// rest on, and works.
func (r *run) helper() {
	r.mu.Lock()
	r.coming--
	if i, ok := r.next(-1); ok {
		r.work(i)
	}
}

// next takes the next ready node, started at now (-1: measure now), waiting
// for one while waiting can help, and makes sure a worker comes for what is
// left in the queue; false when the run is over or this worker should end.
// Called with mu held; returns with it released.
func (r *run) next(now time.Duration) (int32, bool) {
	i, ok := r.take(now)
	if !ok {
		i, ok = r.wait()
	}
	spawn := ok && r.dispatch()
	r.mu.Unlock()
	if spawn {
		go r.helper()
	}
	return i, ok
}

// take pops a ready node and marks it started at now (-1: measure now).
// Called with mu held.
func (r *run) take(now time.Duration) (int32, bool) {
	if r.over || r.qh == r.qt {
		return -1, false
	}
	i := r.nodes[r.qh].q
	r.qh++
	st := &r.nodes[i]
	// A queued node's start holds when it became ready; now may be a
	// worker's earlier reading, taken before it got mu.
	if now < 0 {
		now = time.Since(r.t0)
	}
	st.state, st.started, st.start = stRunning, true, max(now, st.start)
	return i, true
}

// dispatch makes sure a worker is on its way while nodes wait in the queue:
// one coming is enough, since each takes a node and dispatches again. It
// wakes an idle worker if there is one, else reports that the caller must
// start a goroutine on helper once mu is released. Called with mu held.
func (r *run) dispatch() (spawn bool) {
	if r.over || r.qh == r.qt || r.coming > 0 {
		return false
	}
	r.coming++
	if r.idle > 0 {
		r.idle--
		r.cond.Signal()
		return false
	}
	return true
}

// wait takes the next ready node, waiting for one while waiting can help;
// false when the run is over or this worker should end. Called with mu held.
func (r *run) wait() (int32, bool) {
	for !r.over {
		if i, ok := r.take(-1); ok {
			return i, true
		}
		if r.waiting == 0 || r.idle >= r.g.maxIdle {
			// No node can become ready any more, or enough workers wait
			// already: end rather than be woken only to exit.
			return -1, false
		}
		r.idle++
		r.cond.Wait()
		if !r.over {
			// Only Signal wakes a worker before the run is over, and its
			// sender counted this worker in coming.
			r.coming--
		}
	}
	return -1, false
}

// expire gives up on node i when its own timeout passes before its step
// returns, then works on as a worker. It runs on the goroutine that
// context.AfterFunc started.
func (r *run) expire(i int32) {
	r.mu.Lock()
	if r.over || r.nodes[i].state != stRunning || r.ctx.Err() != nil {
		// Decided already, or the whole run is ending (Run's goroutine
		// handles a done run ctx).
		r.mu.Unlock()
		return
	}
	o := outcome{status: StatusTimeout, err: r.g.nodes[i].timeoutErr, end: time.Since(r.t0)}
	r.finish(i, &o)
	if i, ok := r.next(o.end); ok {
		r.work(i)
	}
}
