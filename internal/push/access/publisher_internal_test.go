package access

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/push"
)

// gateQueue records each Publish call; while hold is set a call waits for
// a value on release (nil to store, an error to fail).
type gateQueue struct {
	queue.Queue
	mu      sync.Mutex
	calls   [][]queue.Message
	hold    bool
	release chan error
}

func (q *gateQueue) Publish(ctx context.Context, msgs ...queue.Message) error {
	q.mu.Lock()
	hold := q.hold
	q.mu.Unlock()
	var err error
	if hold {
		err = <-q.release
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls = append(q.calls, msgs)
	return err
}

func (q *gateQueue) published() [][]queue.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([][]queue.Message(nil), q.calls...)
}

// request is one request's messages: a task and a received set.
func request(id string) ([]queue.Message, []traceItem) {
	set := push.ReceiverSet{MessageID: id, State: push.StateReceived, At: time.Unix(1, 0), Receivers: []string{"r-" + id}}
	return []queue.Message{{Topic: "push.sms.notice", Key: id, Value: []byte(`{"messageId":"` + id + `"}`)}},
		[]traceItem{{messageID: id, value: set.AppendJSON(nil)}}
}

// traced decodes the trace messages of one publish call into messageIds.
func traced(t *testing.T, msgs []queue.Message) (tasks, trace []string, packs int) {
	t.Helper()
	for _, m := range msgs {
		if m.Topic != push.TraceTopic {
			tasks = append(tasks, m.Key)
			continue
		}
		packs++
		as, err := push.DecodeAnchors(m.Value)
		require.NoError(t, err)
		for _, a := range as {
			trace = append(trace, a.MessageID)
		}
	}
	return tasks, trace, packs
}

func TestPublisherLoneRequestIsNotDelayed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := &gateQueue{}
		p := newPublisher(q, Config{}.withDefaults())
		start := time.Now()
		tasks, trace := request("a")
		require.NoError(t, p.publish(t.Context(), tasks, trace))
		require.Equal(t, start, time.Now(), "no linger: the request published at once")
		calls := q.published()
		require.Len(t, calls, 1)
		tk, tr, packs := traced(t, calls[0])
		require.Equal(t, []string{"a"}, tk)
		require.Equal(t, []string{"a"}, tr)
		require.Equal(t, 1, packs)
		p.close()
	})
}

// inFlight starts request "a", held in its publish, then requests ids
// concurrently; it returns each request's result channel.
func inFlight(t *testing.T, p *publisher, q *gateQueue, ids ...string) map[string]chan error {
	t.Helper()
	q.hold = true
	results := map[string]chan error{}
	for _, id := range append([]string{"a"}, ids...) {
		results[id] = make(chan error, 1)
		go func() {
			tasks, trace := request(id)
			results[id] <- p.publish(context.Background(), tasks, trace)
		}()
		synctest.Wait() // "a" is in flight before the others arrive
	}
	return results
}

func TestPublisherCoalescesRequestsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := &gateQueue{release: make(chan error)}
		p := newPublisher(q, Config{}.withDefaults())
		results := inFlight(t, p, q, "b", "c", "d")
		q.release <- nil // "a" stored
		require.NoError(t, <-results["a"])
		synctest.Wait()
		for _, id := range []string{"b", "c", "d"} {
			select {
			case err := <-results[id]:
				t.Fatalf("%s answered (%v) before its batch was stored", id, err)
			default:
			}
		}
		q.release <- nil // "b", "c", "d" stored, together
		for _, id := range []string{"b", "c", "d"} {
			require.NoError(t, <-results[id])
		}
		calls := q.published()
		require.Len(t, calls, 2, "the requests that waited shared one publish")
		tk, tr, packs := traced(t, calls[1])
		require.ElementsMatch(t, []string{"b", "c", "d"}, tk)
		require.ElementsMatch(t, []string{"b", "c", "d"}, tr)
		require.Equal(t, 1, packs, "their trace records share one trace message")
		p.close()
	})
}

func TestPublisherFailedBatchFailsEachOfItsRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := &gateQueue{release: make(chan error)}
		p := newPublisher(q, Config{}.withDefaults())
		results := inFlight(t, p, q, "b", "c")
		q.release <- nil
		require.NoError(t, <-results["a"], "an earlier batch is not affected")
		q.release <- fmt.Errorf("broker down: %w", queue.ErrUnavailable)
		for _, id := range []string{"b", "c"} {
			err := <-results[id]
			require.ErrorIs(t, err, queue.ErrUnavailable, id)
		}
		p.close()
	})
}

func TestPublisherBoundsABatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := &gateQueue{release: make(chan error)}
		p := newPublisher(q, Config{BatchMessages: 2}.withDefaults())
		results := inFlight(t, p, q, "b", "c", "d")
		for range 3 {
			q.release <- nil
		}
		for _, r := range results {
			require.NoError(t, <-r)
		}
		calls := q.published()
		require.Len(t, calls, 3, "a, then two batches of at most 2 tasks")
		tk1, _, _ := traced(t, calls[1])
		tk2, _, _ := traced(t, calls[2])
		require.Equal(t, []string{"b", "c"}, tk1, "oldest first")
		require.Equal(t, []string{"d"}, tk2)
		p.close()
	})
}

func TestPublisherWaitEndsWithTheRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := &gateQueue{release: make(chan error)}
		p := newPublisher(q, Config{}.withDefaults())
		q.hold = true
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			tasks, trace := request("a")
			done <- p.publish(context.Background(), tasks, trace)
		}()
		synctest.Wait()
		res := make(chan error, 1)
		go func() {
			tasks, trace := request("b")
			res <- p.publish(ctx, tasks, trace)
		}()
		synctest.Wait()
		cancel()
		err := <-res
		require.ErrorIs(t, err, queue.ErrUnavailable, "a request that gave up is not reported stored")
		require.True(t, errors.Is(err, context.Canceled))
		q.release <- nil
		q.release <- nil // "b" is still published: the batch is shared
		require.NoError(t, <-done)
		p.close()
		require.Len(t, q.published(), 2)
	})
}
