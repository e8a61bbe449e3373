package ops

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waypost/waypost/internal/hub/store"
)

// groupTimeout bounds a grouped transaction, which runs detached from
// every single caller's context (one caller giving up must not fail the
// others' writes).
const groupTimeout = 10 * time.Second

// group commits the transactions of concurrent operations together: while
// one transaction commits, the ones that arrive queue up, and the next
// leader runs them all in a single transaction. On SQLite, where writers
// take turns anyway, a commit costs about as much for one operation as for
// ten (most of its cost is writing the same B-tree pages to the WAL), so
// grouping trades nothing for fewer commits. No goroutine is started: the
// caller at the head of the queue does the work.
//
// A grouped transaction that fails (a refusal, a race lost on an
// idempotency key, a caller's statement cancelled) rolls back as a whole,
// and then every operation of it runs again in its own transaction, as
// without grouping, so each gets exactly the answer it would have had.
type group struct {
	st  *store.Store
	max int

	mu    sync.Mutex
	queue []*groupReq
	busy  bool // a leader is running a batch

	txs atomic.Int64 // transactions begun, for tests
}

// groupReq is one operation's transaction body waiting in the queue.
type groupReq struct {
	ctx  context.Context
	body func(tx *store.Tx) error
	// done receives the outcome, or lead: the receiver heads the queue and
	// runs the next batch.
	done chan groupDone
}

type groupDone struct {
	err  error
	lead bool
}

// inTx runs body in a transaction of its own, or grouped with concurrent
// ones when grouping is on.
func (s *Service) inTx(ctx context.Context, body func(tx *store.Tx) error) error {
	if s.group == nil {
		return s.st.InTx(ctx, body)
	}
	return s.group.do(ctx, body)
}

func (g *group) do(ctx context.Context, body func(tx *store.Tx) error) error {
	me := &groupReq{ctx: ctx, body: body, done: make(chan groupDone, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, me)
	if !g.busy {
		g.busy = true
		g.mu.Unlock()
		return g.lead(me)
	}
	g.mu.Unlock()
	select {
	case d := <-me.done:
		if !d.lead {
			return d.err
		}
		return g.lead(me)
	case <-ctx.Done():
		if g.withdraw(me) {
			return ctx.Err()
		}
		// Already taken into a batch: its write may commit, so wait for
		// the outcome (or the lead, when it was handed over just now).
		d := <-me.done
		if d.lead {
			return g.lead(me)
		}
		return d.err
	}
}

// withdraw takes r out of the queue unless a leader took it already.
func (g *group) withdraw(r *groupReq) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, q := range g.queue {
		if q == r && i > 0 { // queue[0] may have been handed the lead
			g.queue = append(g.queue[:i], g.queue[i+1:]...)
			return true
		}
	}
	return false
}

// lead runs the batch at the head of the queue (me first), hands the lead
// to the next waiting caller, and returns me's outcome.
func (g *group) lead(me *groupReq) error {
	g.mu.Lock()
	n := min(len(g.queue), g.max)
	batch := append([]*groupReq(nil), g.queue[:n]...)
	g.queue = append(g.queue[:0], g.queue[n:]...)
	g.mu.Unlock()

	g.run(batch)

	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- groupDone{lead: true}
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	return (<-me.done).err
}

// run commits batch in one transaction, or each on its own when that fails.
func (g *group) run(batch []*groupReq) {
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			// Its caller gave up before anything was written.
			r.done <- groupDone{err: err}
			continue
		}
		live = append(live, r)
	}
	batch = live
	switch len(batch) {
	case 0:
		return
	case 1:
		batch[0].done <- groupDone{err: g.inTx(batch[0].ctx, batch[0].body)}
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), groupTimeout)
	err := g.inTx(ctx, func(tx *store.Tx) error {
		for _, r := range batch {
			if err := r.body(tx); err != nil {
				return err
			}
		}
		return nil
	})
	cancel()
	for _, r := range batch {
		if err != nil {
			r.done <- groupDone{err: g.inTx(r.ctx, r.body)}
		} else {
			r.done <- groupDone{}
		}
	}
}

func (g *group) inTx(ctx context.Context, body func(tx *store.Tx) error) error {
	g.txs.Add(1)
	return g.st.InTx(ctx, body)
}
