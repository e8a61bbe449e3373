package trace_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/platform/kv/memkv"
	"github.com/waypost/waypost/internal/platform/kv/rediskv"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/natsq/natsqtest"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/platform/testenv"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/trace"
)

// benchAnchors returns the anchors of messages [from, from+n): each to two
// of 100,000 receivers, with a received and an outcome anchor per receiver
// (four per message), on one of 20 templates' businessIds, stamped at.
func benchAnchors(from, n int, at time.Time) []push.Anchor {
	out := make([]push.Anchor, 0, 4*n)
	for i := from; i < from+n; i++ {
		msg := fmt.Sprintf("01JBENCH%018d", i)
		bid := fmt.Sprintf("20%06d20260301", i%20+1)
		for r := range 2 {
			rcv := "user" + strconv.Itoa((i*7919+r*104729)%100_000) + "@example.com"
			out = append(out,
				push.Anchor{EventID: msg + ".received." + strconv.Itoa(r), MessageID: msg, BusinessID: bid, Receiver: rcv,
					State: push.StateReceived, At: at},
				push.Anchor{EventID: msg + ":" + rcv + ":sent:1", MessageID: msg, BusinessID: bid, Receiver: rcv,
					State: push.StateSent, At: at.Add(time.Millisecond), Detail: "provider id 0123456789"})
		}
	}
	return out
}

// BenchmarkViewsWrite is the aggregator's kv side alone: Views.Write of
// batches of 1000 anchors on memkv, and on Redis (rediskv, a fresh key
// prefix removed afterwards); events/s counts anchors.
func BenchmarkViewsWrite(b *testing.B) {
	b.Run("memkv", func(b *testing.B) {
		s := memkv.New()
		defer func() { _ = s.Close() }()
		benchViewsWrite(b, s)
	})
	b.Run("redis", func(b *testing.B) {
		prefix := testenv.UniqueName("bench_trace_") + ":"
		s, err := rediskv.New(b.Context(), rediskv.Config{Addr: testenv.RedisAddr(), Prefix: prefix, DialTimeout: time.Second}, nil)
		if err != nil {
			testenv.Unavailable(b, "redis", err)
		}
		defer func() { _ = s.Close() }()
		defer dropPrefix(b, prefix)
		benchViewsWrite(b, s)
	})
}

func benchViewsWrite(b *testing.B, s kv.Store) {
	v := trace.NewViews(s, trace.ViewConfig{})
	n := 0
	for b.Loop() {
		b.StopTimer()
		batch := benchAnchors(n/4, 250, time.Now())
		b.StartTimer()
		if err := v.Write(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
		n += len(batch)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// dropPrefix deletes every Redis key under prefix.
func dropPrefix(b *testing.B, prefix string) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()})
	defer func() { _ = rdb.Close() }()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			if err := rdb.Del(ctx, keys...).Err(); err != nil {
				b.Error(err)
			}
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		if err := rdb.Del(ctx, keys...).Err(); err != nil {
			b.Error(err)
		}
	}
	if err := iter.Err(); err != nil {
		b.Error(err)
	}
}

// BenchmarkDetailInsert is the detail writer's side alone: SQLStore.Insert
// of batches of 1000 anchors into a fresh table, and on SQLite also into
// one already holding 500,000 events, where the random inserts into the
// receiver index cost most; events/s counts anchors.
func BenchmarkDetailInsert(b *testing.B) {
	for _, tc := range []struct {
		name    string
		d       sqldb.Dialect
		prefill int
	}{
		{"sqlite", sqldb.SQLite, 0}, {"sqlite-500k", sqldb.SQLite, 500_000},
		{"mysql", sqldb.MySQL, 0}, {"postgres", sqldb.Postgres, 0},
	} {
		b.Run(tc.name, func(b *testing.B) {
			st := trace.NewSQLStore(sqltest.New(b, tc.d, trace.Migrations()))
			at := time.Now()
			for from := 0; from < tc.prefill/4; from += 2500 {
				if _, err := st.Insert(b.Context(), benchAnchors(from, 2500, at)); err != nil {
					b.Fatal(err)
				}
			}
			n, msg := 0, tc.prefill/4
			for b.Loop() {
				b.StopTimer()
				batch := benchAnchors(msg, 250, at)
				msg += 250
				b.StartTimer()
				if _, err := st.Insert(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
				n += len(batch)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// countingSink counts what its sink wrote.
type countingSink struct {
	trace.Sink
	n atomic.Int64
}

func (c *countingSink) Write(ctx context.Context, anchors []push.Anchor) error {
	err := c.Sink.Write(ctx, anchors)
	if err == nil {
		c.n.Add(int64(len(anchors)))
	}
	return err
}

// pipeline is the trace role on embedded defaults: embedded JetStream,
// memkv views and a SQLite detail store, each consumer group running.
type pipeline struct {
	q      queue.Queue
	views  *trace.Views
	store  *trace.SQLStore
	sinks  []*countingSink
	stops  []func()
	reader *trace.Reader
}

func newPipeline(b *testing.B, groups ...string) *pipeline {
	b.Helper()
	p := preparePipeline(b)
	p.start(b, groups...)
	return p
}

// preparePipeline builds the engines without starting any consumer.
func preparePipeline(b *testing.B) *pipeline {
	b.Helper()
	kvs := memkv.New()
	b.Cleanup(func() { _ = kvs.Close() })
	p := &pipeline{q: natsqtest.Embedded(b), store: trace.NewSQLStore(sqltest.New(b, sqldb.SQLite, trace.Migrations()))}
	// The views' clock runs two minutes behind, so the messages of the run
	// are newer than the views' start and the realtime path is what is
	// measured (a fresh process answers its first minute from the detail
	// store).
	p.views = trace.NewViews(kvs, trace.ViewConfig{Now: func() time.Time { return time.Now().Add(-2 * time.Minute) }})
	p.reader = trace.NewReader(p.views, p.store, 1000, nil)
	b.Cleanup(func() {
		for _, stop := range p.stops {
			stop()
		}
	})
	return p
}

// start runs a consumer of each group.
func (p *pipeline) start(b *testing.B, groups ...string) {
	b.Helper()
	for _, g := range groups {
		var sink trace.Sink = p.views
		if g == trace.DetailGroup {
			sink = trace.DetailSink(p.store)
		}
		cs := &countingSink{Sink: sink}
		c, err := trace.NewConsumer(p.q, cs, trace.ConsumerConfig{Group: g}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Run(context.Background()) }()
		p.sinks = append(p.sinks, cs)
		p.stops = append(p.stops, func() {
			c.Close()
			if err := <-done; err != nil {
				b.Error(err)
			}
		})
	}
}

// publish sends anchors packed 256 to a message, as the handler's emitter.
func (p *pipeline) publish(b *testing.B, anchors []push.Anchor) {
	b.Helper()
	var msgs []queue.Message
	for from := 0; from < len(anchors); from += 256 {
		part := anchors[from:min(from+256, len(anchors))]
		v, err := jsonArray(part)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, queue.Message{Topic: push.TraceTopic, Key: part[0].MessageID, Value: v})
	}
	for from := 0; from < len(msgs); from += 64 {
		if err := p.q.Publish(context.Background(), msgs[from:min(from+64, len(msgs))]...); err != nil {
			b.Fatal(err)
		}
	}
}

func (p *pipeline) wait(b *testing.B, want int64) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for _, s := range p.sinks {
		for s.n.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("consumers stuck at %d of %d anchors", s.n.Load(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// BenchmarkAggregator runs the trace role end to end on embedded defaults:
// each op publishes 20,000 anchors (not timed) and waits until every
// running consumer group has written them. "views" is the aggregator of
// realtime views, "detail" the SQLite detail writer, "both" the role as
// `waypost up` runs it; events/s counts anchors through every group.
func BenchmarkAggregator(b *testing.B) {
	for _, tc := range []struct {
		name   string
		groups []string
	}{
		{"views", []string{trace.ViewsGroup}},
		{"detail", []string{trace.DetailGroup}},
		{"both", []string{trace.ViewsGroup, trace.DetailGroup}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := newPipeline(b, tc.groups...)
			const perOp = 5000 // messages: 20,000 anchors
			var total int64
			msg := 0
			for b.Loop() {
				b.StopTimer()
				p.publish(b, benchAnchors(msg, perOp, time.Now()))
				msg += perOp
				total += 4 * perOp
				b.StartTimer()
				p.wait(b, total)
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkQueryMessageUnderLoad asks the message query while a producer
// publishes 100,000 anchors/s (packed, as the handler's emitter does) to the
// trace role on embedded defaults. It reports the latency percentiles of
// the queries — over HTTP, and of the Reader alone (the kv view path) — and
// the anchors/s the views wrote meanwhile. "both" also runs the SQLite
// detail writer, which cannot keep that pace and takes whatever CPU is left;
// "idle" is the HTTP baseline of the machine without any load.
func BenchmarkQueryMessageUnderLoad(b *testing.B) {
	for _, tc := range []struct {
		name   string
		groups []string
		http   bool
		rate   int // anchors/s the producer publishes
	}{
		{"idle/http", []string{trace.ViewsGroup}, true, 0},
		{"views/reader", []string{trace.ViewsGroup}, false, 100_000},
		{"views/http", []string{trace.ViewsGroup}, true, 100_000},
		{"both/reader", []string{trace.ViewsGroup, trace.DetailGroup}, false, 100_000},
		{"both/http", []string{trace.ViewsGroup, trace.DetailGroup}, true, 100_000},
	} {
		b.Run(tc.name, func(b *testing.B) { queryUnderLoad(b, tc.http, tc.rate, tc.groups...) })
	}
}

func queryUnderLoad(b *testing.B, overHTTP bool, rate int, groups ...string) {
	p := newPipeline(b, groups...)
	api := trace.NewAPI(p.reader, nil, trace.APIConfig{}, nil)
	mux := http.NewServeMux()
	open := func(h http.Handler) http.Handler { return h }
	api.Register(mux, open, open)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	const asked = 2000 // messages asked for, written before the clock starts
	p.publish(b, benchAnchors(0, asked, time.Now()))
	p.wait(b, 4*asked)

	// rate anchors/s: rate/400 messages of four anchors every 10 ms.
	stop := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		if rate == 0 {
			return
		}
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		per := rate / 400
		for msg := asked; ; msg += per {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			p.publish(b, benchAnchors(msg, per, time.Now()))
		}
	}()
	ask := func(id string) {
		if !overHTTP {
			evs, src, err := p.reader.Message(context.Background(), id)
			if err != nil || len(evs) != 4 || src != trace.SourceRealtime {
				b.Fatalf("message %s: %d events from %s: %v", id, len(evs), src, err)
			}
			return
		}
		resp, err := srv.Client().Get(srv.URL + "/api/v1/trace/messages/" + id)
		if err != nil {
			b.Fatal(err)
		}
		// Read to the end, so the connection is kept alive and reused.
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	time.Sleep(time.Second) // let the load settle
	before := p.sinks[0].n.Load()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("01JBENCH%018d", i%asked)
		i++
		start := time.Now()
		ask(id)
		lat = append(lat, time.Since(start))
		// A query every millisecond or so: an operator's tool, not a flood.
		time.Sleep(500 * time.Microsecond)
	}
	written := p.sinks[0].n.Load() - before
	close(stop)
	<-produced
	slices.Sort(lat)
	pct := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "load-events/s")
}
