package handler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/platform/kv/memkv"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/natsq"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/channel"
	"github.com/waypost/waypost/internal/push/handler"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeSender records every Send and answers from script.
type fakeSender struct {
	mu     sync.Mutex
	calls  map[string]int // messageId/receiver → sends
	script func(m channel.Message, call int) error
	block  chan struct{} // when set, Send waits for it to close (or ctx)
}

func newFakeSender() *fakeSender { return &fakeSender{calls: map[string]int{}} }

func (f *fakeSender) Send(ctx context.Context, m channel.Message) (channel.Result, error) {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return channel.Result{}, ctx.Err()
		}
	}
	f.mu.Lock()
	k := m.MessageID + "/" + m.Receiver
	f.calls[k]++
	n := f.calls[k]
	script := f.script
	f.mu.Unlock()
	if script != nil {
		if err := script(m, n); err != nil {
			return channel.Result{}, err
		}
	}
	return channel.Result{ProviderID: "p-" + k}, nil
}

func (f *fakeSender) count(msgID, rcv string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[msgID+"/"+rcv]
}

func (f *fakeSender) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// staticResolver serves one sender per channel; channels without one fail
// as the default resolver does.
type staticResolver map[push.Channel]channel.Sender

func (r staticResolver) Resolve(_ context.Context, t push.Task) (channel.Sender, error) {
	if s, ok := r[t.Channel]; ok {
		return s, nil
	}
	return nil, channel.Permanent(fmt.Errorf("%s: %w", t.Channel, handler.ErrChannelNotSupported))
}

type env struct {
	q      *natsq.Queue
	ledger kv.Store
	h      *handler.Handler
	trace  *traceSink
	done   chan error
}

// testConfig keeps retries quick and consumes only what tests publish.
func testConfig() handler.Config {
	return handler.Config{
		Channels:            []push.Channel{push.ChannelEmail, push.ChannelWebhook, push.ChannelSMS},
		MsgTypes:            []push.MsgType{push.MsgNotice, push.MsgMarketing},
		Pool:                handler.PoolSize{Workers: 4, Queue: 16},
		RetryBackoff:        10 * time.Millisecond,
		MaxRetryBackoff:     50 * time.Millisecond,
		RejectDelay:         10 * time.Millisecond,
		AnchorFlushInterval: 10 * time.Millisecond,
		AckTimeout:          5 * time.Second,
		DrainTimeout:        5 * time.Second,
	}
}

func openQueue(t testing.TB, dir string) *natsq.Queue {
	t.Helper()
	q, err := natsq.New(context.Background(), natsq.Config{Embedded: &natsq.EmbeddedConfig{StoreDir: dir}}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Close(ctx)
	})
	return q
}

// start runs a handler over a fresh embedded queue and memkv ledger.
func start(t *testing.T, cfg handler.Config, senders handler.SenderResolver) *env {
	t.Helper()
	return startOn(t, openQueue(t, t.TempDir()), newLedger(t), cfg, senders)
}

func newLedger(t testing.TB) kv.Store {
	l := memkv.New()
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func startOn(t *testing.T, q *natsq.Queue, ledger kv.Store, cfg handler.Config, senders handler.SenderResolver) *env {
	t.Helper()
	h, err := handler.New(cfg, q, ledger, senders, nil, nil)
	require.NoError(t, err)
	e := &env{q: q, ledger: ledger, h: h, trace: collectTrace(t, q), done: make(chan error, 1)}
	go func() { e.done <- h.Run(context.Background()) }()
	t.Cleanup(func() { e.stop(t) })
	return e
}

// stop closes the handler and waits for Run to return; safe to call twice.
func (e *env) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.h.Close(ctx))
	select {
	case err, ok := <-e.done:
		if ok {
			require.NoError(t, err)
			close(e.done)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return after Close")
	}
}

func publish(t testing.TB, q queue.Queue, tasks ...push.Task) {
	t.Helper()
	msgs := make([]queue.Message, len(tasks))
	for i, task := range tasks {
		v, err := json.Marshal(task)
		require.NoError(t, err)
		msgs[i] = queue.Message{Topic: push.Topic(task.Channel, task.MsgType), Key: task.MessageID, Value: v}
	}
	require.NoError(t, q.Publish(context.Background(), msgs...))
}

func task(id string, ch push.Channel, mt push.MsgType, receivers ...string) push.Task {
	return push.Task{MessageID: id, BusinessID: "2000000120261129", Channel: ch, MsgType: mt,
		AccountID: "acc", Receivers: receivers, Text: "hello " + id}
}

// traceSink collects anchors published to the trace topic.
type traceSink struct {
	mu      sync.Mutex
	anchors []push.Anchor
}

func collectTrace(t *testing.T, q queue.Queue) *traceSink {
	t.Helper()
	s := &traceSink{}
	sub, err := q.Subscribe(context.Background(), queue.SubscribeConfig{Topic: push.TraceTopic, Group: "test-trace"},
		func(ctx context.Context, d *queue.Delivery) {
			if as, err := push.DecodeAnchors(d.Value); err == nil {
				s.mu.Lock()
				s.anchors = append(s.anchors, as...)
				s.mu.Unlock()
			}
			_ = d.Ack(ctx)
		})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sub.Close(ctx)
	})
	return s
}

// find returns anchors of one state for a message, keyed by receiver.
func (s *traceSink) find(msgID, state string) map[string]push.Anchor {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]push.Anchor{}
	for _, a := range s.anchors {
		if a.MessageID == msgID && a.State == state {
			out[a.Receiver] = a
		}
	}
	return out
}

func ledgerValue(t *testing.T, l kv.Store, msgID, rcv string) string {
	t.Helper()
	v, err := l.Get(context.Background(), handler.LedgerKey(msgID, rcv))
	if err != nil {
		return ""
	}
	return string(v)
}

const (
	waitFor = 10 * time.Second
	tick    = 5 * time.Millisecond
)
