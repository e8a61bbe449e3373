package handler_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/channel"
	"github.com/waypost/waypost/internal/push/handler"
)

// countingSender does nothing but count, and signals when target is reached.
type countingSender struct {
	n      atomic.Int64
	target int64
	first  atomic.Int64 // unix nanos of the first send
	done   chan struct{}
}

func (s *countingSender) Send(context.Context, channel.Message) (channel.Result, error) {
	n := s.n.Add(1)
	if n == 1 {
		s.first.Store(time.Now().UnixNano())
	}
	if n == s.target {
		close(s.done)
	}
	return channel.Result{}, nil
}

// BenchmarkHandle measures tasks per second through one pool (webhook ×
// notice, default size) with a no-op sender: delivery, ledger claim and
// mark in memkv, anchor emission and ack. The queue is filled before the
// clock starts, and the rate is taken from the first send to the last so
// subscribing does not count.
func BenchmarkHandle(b *testing.B) {
	q := openQueue(b, b.TempDir())
	ledger := newLedger(b)
	tasks := make([]push.Task, b.N)
	for i := range tasks {
		tasks[i] = task(fmt.Sprintf("b%08d", i), push.ChannelWebhook, push.MsgNotice, "r")
	}
	for len(tasks) > 0 {
		n := min(len(tasks), 1000)
		publish(b, q, tasks[:n]...)
		tasks = tasks[n:]
	}
	snd := &countingSender{target: int64(b.N), done: make(chan struct{})}
	cfg := handler.Config{Channels: []push.Channel{push.ChannelWebhook}, MsgTypes: []push.MsgType{push.MsgNotice}}
	h, err := handler.New(cfg, q, ledger, staticResolver{push.ChannelWebhook: snd}, nil, nil)
	require.NoError(b, err)

	b.ResetTimer()
	errc := make(chan error, 1)
	go func() { errc <- h.Run(context.Background()) }()
	<-snd.done
	elapsed := time.Since(time.Unix(0, snd.first.Load()))
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(b, h.Close(ctx))
	require.NoError(b, <-errc)
}
