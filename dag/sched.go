package dag

import "time"

// Scheduling. There is no goroutine per node: a worker that finishes a node
// runs one of the nodes that became ready itself, wakes waiting workers or
// starts new goroutines for the others, and waits for more work only while
// that can still help (see Graph.maxIdle). All of it under run.mu, which is
// held only for bookkeeping, never across a step.

// work runs node i, already taken, and then whatever it is handed next.
func (r *run) work(i int32) {
	for {
		var o outcome
		r.exec(i, &o)
		r.mu.Lock()
		r.finish(i, &o)
		var ok bool
		if i, ok = r.after(o.end); !ok {
			return
		}
	}
}

// after hands out the nodes that a node finishing at now just readied: the
// caller gets one, waiting workers are woken and new goroutines started for the
// rest. With none left for the caller it waits for one, or ends (false).
// Called with mu held; returns with it released.
func (r *run) after(now time.Duration) (int32, bool) {
	i, ok := r.take(now)
	first, spawn := r.reserve(now)
	r.mu.Unlock()
	for k := range spawn {
		go r.work(r.nodes[first+k].q)
	}
	if ok {
		return i, true
	}
	r.mu.Lock()
	i, ok = r.wait()
	r.mu.Unlock()
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
	r.start(i, now)
	return i, true
}

func (r *run) start(i int32, now time.Duration) {
	if now < 0 {
		now = time.Since(r.t0)
	}
	st := &r.nodes[i]
	st.state, st.started, st.start = stRunning, true, now
}

// reserve makes sure each queued node has a goroutine coming for it: it
// signals waiting workers, and takes the rest off the queue (started at now)
// as the range nodes[first:first+n].q for new goroutines, which the caller
// starts once mu is released. Called with mu held.
func (r *run) reserve(now time.Duration) (first int32, n int32) {
	if r.over {
		return 0, 0
	}
	rest := int(r.qt-r.qh) - r.coming
	if rest <= 0 {
		return 0, 0
	}
	wake := min(rest, r.idle)
	for range wake {
		r.cond.Signal()
	}
	r.idle -= wake
	r.coming += wake
	first, n = r.qh, int32(rest-wake)
	for k := range n {
		r.start(r.nodes[first+k].q, now)
	}
	r.qh += n
	return first, n
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
	if i, ok := r.after(o.end); ok {
		r.work(i)
	}
}
