package tracking_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/waypost/waypost/internal/platform/queue"
	orderv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/order/v1"
)

// fakeQueue stores what is published in memory, fails on demand, and hands
// its subscriber's handler to the test.
type fakeQueue struct {
	mu        sync.Mutex
	stored    []queue.Message
	calls     int
	failing   bool          // Publish stores nothing and fails
	partial   bool          // Publish stores the first half of its messages, then fails
	maxDelay  time.Duration // Publish takes a random time up to this
	handler   queue.Handler
	subscribe queue.SubscribeConfig
}

var _ queue.Queue = (*fakeQueue)(nil)

func (f *fakeQueue) setFailing(failing, partial bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing, f.partial = failing, partial
}

func (f *fakeQueue) EnsureTopic(context.Context, queue.TopicConfig) error { return nil }

func (f *fakeQueue) Publish(ctx context.Context, msgs ...queue.Message) error {
	f.mu.Lock()
	d := f.maxDelay
	f.mu.Unlock()
	if d > 0 {
		select {
		case <-time.After(rand.N(d)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	switch {
	case f.failing:
		return fmt.Errorf("fake broker down: %w", queue.ErrUnavailable)
	case f.partial:
		f.stored = append(f.stored, msgs[:len(msgs)/2]...)
		return fmt.Errorf("fake broker lost part of a batch: %w", queue.ErrUnavailable)
	}
	f.stored = append(f.stored, msgs...)
	return nil
}

func (f *fakeQueue) messages() []queue.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]queue.Message(nil), f.stored...)
}

func (f *fakeQueue) publishCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeQueue) Subscribe(_ context.Context, cfg queue.SubscribeConfig, h queue.Handler) (queue.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler, f.subscribe = h, cfg
	return fakeSub{}, nil
}

func (f *fakeQueue) Ping(context.Context) error  { return nil }
func (f *fakeQueue) Close(context.Context) error { return nil }

type fakeSub struct{}

func (fakeSub) Close(context.Context) error { return nil }

// acks records how a delivery was settled.
type acks struct {
	mu     sync.Mutex
	acked  int
	nacked int
	delay  time.Duration
}

func (a *acks) Ack(context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acked++
	return nil
}

func (a *acks) Nack(_ context.Context, d time.Duration) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nacked++
	a.delay = d
	return nil
}

// fakeOrders answers AppendTrack from a script of errors, then with resp.
type fakeOrders struct {
	orderv1.OrderServiceClient
	mu     sync.Mutex
	errs   []error // returned by the first calls, in turn; nil entries succeed
	always error   // returned once errs is used up, when set
	resp   *orderv1.AppendTrackResponse
	reqs   []*orderv1.AppendTrackRequest
	// block, when set, makes calls wait for ctx.
	block bool
}

func (f *fakeOrders) AppendTrack(ctx context.Context, req *orderv1.AppendTrackRequest, _ ...grpc.CallOption) (*orderv1.AppendTrackResponse, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	var err error
	switch {
	case len(f.errs) > 0:
		err, f.errs = f.errs[0], f.errs[1:]
	case f.always != nil:
		err = f.always
	}
	resp := f.resp
	block := f.block
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	if resp == nil {
		resp = &orderv1.AppendTrackResponse{Appended: int32(len(req.GetEvents()))}
	}
	return resp, nil
}

func (f *fakeOrders) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// deliver hands one message to the captured handler and returns how it was settled.
func deliver(t *testing.T, q *fakeQueue, value []byte, attempt int) *acks {
	t.Helper()
	a := &acks{}
	d := queue.NewDelivery(queue.Message{Topic: "hub.tracking", Key: "WPSG0000000001", Value: value}, "1", attempt, a)
	q.mu.Lock()
	h := q.handler
	q.mu.Unlock()
	h(testCtx(t), d)
	return a
}
