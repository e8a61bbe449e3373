package downstream

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/waypost/waypost/internal/hub"
)

// fakeBatch is a downstream the batcher tests steer: every call records
// its keys and, while hold is open, waits for it (or its ctx).
type fakeBatch struct {
	mu    sync.Mutex
	ones  []string
	manys [][]string
	hold  chan struct{}
	// holdMany, when set, holds batch calls instead of hold.
	holdMany chan struct{}
	// fail, when set, fails every batch call.
	fail error
	// version is put in answers, so a test sees which call answered.
	version int
}

func (f *fakeBatch) wait(ctx context.Context, hold chan struct{}) error {
	if hold == nil {
		return nil
	}
	select {
	case <-hold:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeBatch) one(ctx context.Context, key string) (string, error) {
	f.mu.Lock()
	f.ones = append(f.ones, key)
	v := f.version
	f.mu.Unlock()
	if err := f.wait(ctx, f.hold); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s@%d", key, v), nil
}

func (f *fakeBatch) many(ctx context.Context, keys []string) ([]batchResult[string], error) {
	f.mu.Lock()
	f.manys = append(f.manys, slices.Clone(keys))
	v := f.version
	f.mu.Unlock()
	hold := f.hold
	if f.holdMany != nil {
		hold = f.holdMany
	}
	if err := f.wait(ctx, hold); err != nil {
		return nil, err
	}
	if f.fail != nil {
		return nil, f.fail
	}
	out := make([]batchResult[string], len(keys))
	for i, k := range keys {
		if k == "missing" {
			out[i].err = hub.Refuse(hub.CodeUnknownWaybill, "waybill %q: unknown waybill", k)
			continue
		}
		out[i].val = fmt.Sprintf("%s@%d", k, v)
	}
	return out, nil
}

func (f *fakeBatch) calls() (ones []string, manys [][]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ones), slices.Clone(f.manys)
}

func newTestBatcher(f *fakeBatch, max int, wait time.Duration) *batcher[string, string] {
	met, _ := newClientMetrics(prometheus.NewRegistry())
	return &batcher[string, string]{max: max, inFlight: 1, maxWait: wait, service: "order centre",
		one: f.one, many: f.many, met: met.batch(kindWaybill)}
}

type answer struct {
	key string
	val string
	err error
}

// lookups starts one lookup per key, each on its own goroutine, once the
// previous one is queued, and returns where their answers arrive.
func lookups(ctx context.Context, b *batcher[string, string], keys ...string) <-chan answer {
	out := make(chan answer, len(keys))
	for _, k := range keys {
		go func() {
			v, err := b.get(ctx, k)
			out <- answer{k, v, err}
		}()
		synctest.Wait()
	}
	return out
}

func collect(t *testing.T, ch <-chan answer, n int) map[string]answer {
	t.Helper()
	got := map[string]answer{}
	for range n {
		a := <-ch
		got[a.key] = a
	}
	return got
}

func TestBatcherIdleGoesAloneAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBatch{}
		b := newTestBatcher(f, 64, time.Second)
		start := time.Now()
		v, err := b.get(t.Context(), "WB1")
		require.NoError(t, err)
		require.Equal(t, "WB1@0", v)
		require.Zero(t, time.Since(start), "an idle lookup does not linger")
		ones, manys := f.calls()
		require.Equal(t, []string{"WB1"}, ones)
		require.Empty(t, manys)
	})
}

func TestBatcherQueuedLookupsShareOneCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBatch{hold: make(chan struct{})}
		b := newTestBatcher(f, 64, time.Hour)
		ctx := t.Context()
		first := lookups(ctx, b, "WB0")
		// The first call is running: these queue, one of them twice.
		rest := lookups(ctx, b, "WB1", "WB2", "missing", "WB3")
		dup := lookups(ctx, b, "WB2")
		f.mu.Lock()
		f.version = 1 // answers of calls made from now on
		f.mu.Unlock()
		close(f.hold)

		require.Equal(t, answer{"WB0", "WB0@0", nil}, <-first)
		got := collect(t, rest, 4)
		for _, k := range []string{"WB1", "WB2", "WB3"} {
			require.NoError(t, got[k].err)
			require.Equal(t, k+"@1", got[k].val, "answered by the call made after it asked")
		}
		r, ok := hub.AsRefusal(got["missing"].err)
		require.True(t, ok)
		require.Equal(t, hub.CodeUnknownWaybill, r.Code)
		require.Equal(t, answer{"WB2", "WB2@1", nil}, <-dup)

		ones, manys := f.calls()
		require.Equal(t, []string{"WB0"}, ones)
		require.Equal(t, [][]string{{"WB1", "WB2", "missing", "WB3"}}, manys, "one call, each key once")

		// Nothing is kept: a later lookup of a key asks again.
		v, err := b.get(ctx, "WB1")
		require.NoError(t, err)
		require.Equal(t, "WB1@1", v)
		ones, _ = f.calls()
		require.Equal(t, []string{"WB0", "WB1"}, ones)
	})
}

func TestBatcherBoundsTheBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBatch{hold: make(chan struct{})}
		b := newTestBatcher(f, 3, time.Hour)
		ctx := t.Context()
		first := lookups(ctx, b, "A")
		rest := lookups(ctx, b, "B", "C", "D", "E", "F", "G", "H")
		close(f.hold)
		<-first
		got := collect(t, rest, 7)
		for k, a := range got {
			require.NoError(t, a.err)
			require.Equal(t, k+"@0", a.val)
		}
		ones, manys := f.calls()
		// The batches go one after the other (one call in flight); the
		// last holds one lookup and goes as a single call.
		require.Equal(t, []string{"A", "H"}, ones)
		require.Equal(t, [][]string{{"B", "C", "D"}, {"E", "F", "G"}}, manys)
	})
}

func TestBatcherQueuedLookupWaitsAtMostMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBatch{hold: make(chan struct{})}
		b := newTestBatcher(f, 64, 5*time.Millisecond)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		start := time.Now()
		lookups(ctx, b, "SLOW")
		rest := lookups(ctx, b, "B", "C")
		// The running call is slow: after maxWait the queue goes by itself.
		time.Sleep(5 * time.Millisecond)
		synctest.Wait()
		_, manys := f.calls()
		require.Equal(t, [][]string{{"B", "C"}}, manys)
		require.Equal(t, 5*time.Millisecond, time.Since(start))

		// Not yet slow: a new lookup queues (and goes after maxWait).
		time.Sleep(40 * time.Millisecond)
		e := lookups(ctx, b, "E")
		time.Sleep(5 * time.Millisecond)
		synctest.Wait()
		ones, _ := f.calls()
		require.Equal(t, []string{"SLOW", "E"}, ones)
		// The oldest running call has run slowCalls × maxWait: the
		// downstream is slow now, so a new lookup goes at once.
		time.Sleep(5 * time.Millisecond)
		d := lookups(ctx, b, "D")
		ones, _ = f.calls()
		require.Equal(t, []string{"SLOW", "E", "D"}, ones)
		require.Equal(t, 55*time.Millisecond, time.Since(start))
		close(f.hold)
		got := collect(t, rest, 2)
		require.Equal(t, "B@0", got["B"].val)
		require.Equal(t, "C@0", got["C"].val)
		require.Equal(t, answer{"D", "D@0", nil}, <-d)
		require.Equal(t, answer{"E", "E@0", nil}, <-e)
	})
}

func TestBatcherFailedBatchFailsEveryCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := &hub.Refusal{Code: hub.CodeDownstreamUnavailable, Message: "order centre is unavailable: down"}
		f := &fakeBatch{hold: make(chan struct{}), fail: down}
		b := newTestBatcher(f, 64, time.Hour)
		ctx := t.Context()
		first := lookups(ctx, b, "A")
		rest := lookups(ctx, b, "B", "C")
		close(f.hold)
		require.NoError(t, (<-first).err)
		for _, a := range collect(t, rest, 2) {
			require.Same(t, down, a.err)
		}
	})
}

func TestBatcherHonoursEachCallersContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBatch{hold: make(chan struct{})}
		b := newTestBatcher(f, 64, time.Hour)
		ctx := t.Context()
		first := lookups(ctx, b, "A")
		short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		start := time.Now()
		gone := lookups(short, b, "SHORT")
		stays := lookups(ctx, b, "B")
		a := <-gone
		require.Equal(t, 10*time.Millisecond, time.Since(start), "returns at its own deadline")
		r, ok := hub.AsRefusal(a.err)
		require.True(t, ok, "%v", a.err)
		require.Equal(t, hub.CodeDownstreamTimeout, r.Code)

		canceled, cancelNow := context.WithCancel(ctx)
		left := lookups(canceled, b, "LEFT")
		cancelNow()
		require.ErrorIs(t, (<-left).err, context.Canceled)

		close(f.hold)
		require.NoError(t, (<-first).err)
		require.Equal(t, answer{"B", "B@0", nil}, <-stays)
		ones, manys := f.calls()
		require.Equal(t, []string{"A", "B"}, ones, "callers that left are not asked for")
		require.Empty(t, manys)

	})
}

func TestBatcherCallerLeavingARunningBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBatch{hold: make(chan struct{}), holdMany: make(chan struct{})}
		b := newTestBatcher(f, 64, time.Hour)
		ctx := t.Context()
		first := lookups(ctx, b, "X")
		leaving, cancel := context.WithCancel(ctx)
		defer cancel()
		in := lookups(leaving, b, "Y")
		rest := lookups(ctx, b, "Z")
		close(f.hold) // X ends; Y and Z go in one batch call, held
		require.NoError(t, (<-first).err)
		synctest.Wait()
		_, manys := f.calls()
		require.Equal(t, [][]string{{"Y", "Z"}}, manys)
		cancel()
		require.ErrorIs(t, (<-in).err, context.Canceled, "Y returns at once")
		close(f.holdMany)
		require.Equal(t, answer{"Z", "Z@0", nil}, <-rest, "the batch goes on for Z")
	})
}

func TestBatcherFallsBackWithoutTheBatchCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeBatch{hold: make(chan struct{}), fail: fmt.Errorf("order centre: %w",
			status.Error(codes.Unimplemented, "unknown method BatchGetWaybills"))}
		b := newTestBatcher(f, 64, time.Hour)
		ctx := t.Context()
		first := lookups(ctx, b, "A")
		rest := lookups(ctx, b, "B", "C")
		close(f.hold)
		require.NoError(t, (<-first).err)
		got := collect(t, rest, 2)
		require.Equal(t, answer{"B", "B@0", nil}, got["B"])
		require.Equal(t, answer{"C", "C@0", nil}, got["C"])
		ones, manys := f.calls()
		require.ElementsMatch(t, []string{"A", "B", "C"}, ones)
		require.Equal(t, [][]string{{"B", "C"}}, manys)
	})
}
