package handler_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/egress"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/channel"
	"github.com/waypost/waypost/internal/push/channel/webhook"
	"github.com/waypost/waypost/internal/push/handler"
	"github.com/waypost/waypost/internal/push/rules"
)

// countingSender counts sends, passing each to next if set, and signals
// when target is reached.
type countingSender struct {
	next   channel.Sender
	n      atomic.Int64
	target int64
	first  atomic.Int64 // unix nanos of the first send
	done   chan struct{}
}

func (s *countingSender) Send(ctx context.Context, m channel.Message) (channel.Result, error) {
	if s.next != nil {
		if _, err := s.next.Send(ctx, m); err != nil {
			return channel.Result{}, err
		}
	}
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
	benchHandle(b, func(i int) push.Task {
		return task(fmt.Sprintf("b%08d", i), push.ChannelWebhook, push.MsgNotice, "r")
	})
}

// BenchmarkHandleRules compares the same tasks through the rule stages with
// every rule off (settings that disable each one), every rule on but dedup,
// and every rule on (expiry, a discard list, quiet hours evaluated outside
// the window, content dedup and the daily cap on memkv, a whitelist, a rate
// limit that never binds). Run them side by side: the ratio of their tasks/s
// (or of cpu-µs/task, steadier on a shared machine) is the rules' cost.
func BenchmarkHandleRules(b *testing.B) {
	shanghai := mustZone("Asia/Shanghai")
	const receivers = 1000
	mk := func(i int) push.Task {
		t := task(fmt.Sprintf("b%08d", i), push.ChannelWebhook, push.MsgNotice, fmt.Sprintf("r%04d", i%receivers))
		t.TemplateID, t.TimeZone, t.Quiet, t.CreatedAt = 7, "Asia/Shanghai", push.QuietDelay, time.Now()
		return t
	}
	// A quiet window two hours ahead: every task is checked and passes.
	local := time.Now().In(shanghai)
	hhmm := func(d time.Duration) string { return local.Add(d).Format("15:04") }
	whitelist := make([]string, receivers)
	for i := range whitelist {
		whitelist[i] = fmt.Sprintf("%q", fmt.Sprintf("r%04d", i))
	}
	on := map[string]string{
		rules.NameDedup:     `{"deduplication_20":{"num":10000}}`,
		rules.NameQuiet:     fmt.Sprintf(`{"start":%q,"end":%q,"delayUntil":%q}`, hhmm(2*time.Hour), hhmm(3*time.Hour), hhmm(4*time.Hour)),
		rules.NameDiscard:   `{"templates":[1,2,3]}`,
		rules.NameWhitelist: `{"enabled":true,"receivers":[` + strings.Join(whitelist, ",") + `]}`,
		rules.NameLimits:    `{"default":{"mode":"receivers","rate":1000000,"burst":1000000}}`,
	}
	dedupOff := `{"deduplication_10":{"num":0},"deduplication_20":{"num":0}}`
	onButDedup := maps.Clone(on)
	onButDedup[rules.NameDedup] = dedupOff
	variants := []struct {
		name     string
		settings map[string]string
	}{
		{"off", map[string]string{
			rules.NameDedup: dedupOff,
			rules.NameQuiet: `{"start":"00:00","end":"00:00","delayUntil":"09:00"}`,
			rules.NameTTL:   `{"notice":"0s"}`,
		}},
		// Every rule but dedup: the pipeline's own cost.
		{"on-but-dedup", onButDedup},
		{"on", on},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			l := newLive(b)
			for name, val := range v.settings {
				l.set(b, name, val)
			}
			benchHandle(b, mk, handler.WithRules(l.s))
		})
	}
}

// benchHandle publishes b.N tasks, then runs a handler over them.
func benchHandle(b *testing.B, mk func(i int) push.Task, opts ...handler.Option) {
	benchHandleTo(b, mk, nil, 1, opts...)
}

// benchHandleTo publishes b.N tasks of perTask receivers each, then runs a
// handler over them sending through next (nil: a no-op sender).
func benchHandleTo(b *testing.B, mk func(i int) push.Task, next channel.Sender, perTask int, opts ...handler.Option) {
	q := openQueue(b, b.TempDir())
	ledger := newLedger(b)
	tasks := make([]push.Task, b.N)
	for i := range tasks {
		tasks[i] = mk(i)
	}
	for len(tasks) > 0 {
		n := min(len(tasks), 1000)
		publish(b, q, tasks[:n]...)
		tasks = tasks[n:]
	}
	sends := b.N * perTask
	snd := &countingSender{next: next, target: int64(sends), done: make(chan struct{})}
	cfg := handler.Config{Channels: []push.Channel{push.ChannelWebhook}, MsgTypes: []push.MsgType{push.MsgNotice}}
	h, err := handler.New(cfg, q, ledger, staticResolver{push.ChannelWebhook: snd}, nil, nil, opts...)
	require.NoError(b, err)

	b.ResetTimer()
	var mem0, mem1 runtime.MemStats
	runtime.ReadMemStats(&mem0)
	cpu0 := cpuTime(b)
	errc := make(chan error, 1)
	go func() { errc <- h.Run(context.Background()) }()
	select {
	case <-snd.done:
	case <-time.After(time.Minute):
		b.Fatalf("only %d of %d sends made", snd.n.Load(), sends)
	}
	elapsed := time.Since(time.Unix(0, snd.first.Load()))
	cpu := cpuTime(b) - cpu0
	runtime.ReadMemStats(&mem1)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")
	// The process's CPU per task (handler, in-process broker, emitter, GC):
	// on a shared machine a steadier measure of cost than the rate.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/task")
	if perTask > 1 {
		per := float64(sends)
		b.ReportMetric(float64(cpu.Microseconds())/per, "cpu-µs/delivery")
		b.ReportMetric(float64(mem1.Mallocs-mem0.Mallocs)/per, "allocs/delivery")
		b.ReportMetric(float64(mem1.TotalAlloc-mem0.TotalAlloc)/per, "B/delivery")
		b.ReportMetric(float64(mem1.NumGC-mem0.NumGC)*1e6/per, "GCs/1M-deliveries")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(b, h.Close(ctx))
	require.NoError(b, <-errc)
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDeliverWebhook measures the whole delivery path of the embedded
// server with its rules off: tasks of ten receivers each through one pool,
// each receiver signed and POSTed by the real webhook sender to a loopback
// sink that discards the body. Per delivery it reports the process's CPU
// (handler, broker, sender, both ends of net/http, GC), the allocations and
// allocated bytes, and how often the GC ran.
func BenchmarkDeliverWebhook(b *testing.B) {
	const perTask = 10
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	guard := egress.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	client := webhook.NewClient(guard)
	defer client.CloseIdleConnections()
	wh, err := webhook.New(webhook.Config{URL: srv.URL + "/hook", Secret: "whsec_bench"}, client)
	require.NoError(b, err)
	rcvs := make([]string, perTask)
	for i := range rcvs {
		rcvs[i] = fmt.Sprintf("user-%02d@example.com", i)
	}
	benchHandleTo(b, func(i int) push.Task {
		return task(fmt.Sprintf("b%08d", i), push.ChannelWebhook, push.MsgNotice, rcvs...)
	}, wh, perTask)
}
