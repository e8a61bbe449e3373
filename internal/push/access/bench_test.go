package access_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/kv/memkv"
	"github.com/waypost/waypost/internal/platform/queue/natsq"
	"github.com/waypost/waypost/internal/push/access"
)

// Benchmarks serve the handler over real HTTP on an embedded natsq queue and
// memkv, as `waypost up` does by default, with the load generator (Go's
// HTTP client) in the same process. Besides throughput they report the
// process CPU time per request (user + system, generator included), which
// a busy shared machine distorts less than wall-clock rates.
// BenchmarkSendBare is the reference: the same generator against a handler
// that only reads the body and answers a fixed 202, the ceiling of this
// harness on this machine.

func benchServer(b *testing.B, h http.Handler) (*httptest.Server, *http.Client) {
	b.Helper()
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	return srv, client
}

func sendHandler(b *testing.B) http.Handler {
	b.Helper()
	q, err := natsq.New(context.Background(), natsq.Config{Embedded: &natsq.EmbeddedConfig{StoreDir: b.TempDir()}}, nil, nil)
	require.NoError(b, err)
	b.Cleanup(func() { _ = q.Close(context.Background()) })
	store := memkv.New()
	b.Cleanup(func() { _ = store.Close() })
	h, err := access.New(access.Config{}, newSource(smsTemplate(1)), q, store, nil, nil)
	require.NoError(b, err)
	b.Cleanup(h.Close)
	mux := http.NewServeMux()
	h.Register(mux, nil)
	return mux
}

func post(b *testing.B, client *http.Client, url string, body []byte) {
	resp, err := client.Post(url+"/api/v1/send", "application/json", bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.Errorf("status %d", resp.StatusCode)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// drive posts body from parallelism × GOMAXPROCS clients and reports
// requests/s, receiver-messages/s (receivers per request), latency
// percentiles and CPU per request.
func drive(b *testing.B, h http.Handler, body []byte, parallelism, receivers int) {
	srv, client := benchServer(b, h)
	post(b, client, srv.URL, body) // warm: provision topics, load the template
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(parallelism)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		own := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			post(b, client, srv.URL, body)
			own = append(own, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, own...)
		mu.Unlock()
	})
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	slices.Sort(lat)
	n := float64(len(lat))
	b.ReportMetric(n/elapsed.Seconds(), "req/s")
	if receivers > 1 {
		b.ReportMetric(n*float64(receivers)/elapsed.Seconds(), "receiver-msgs/s")
	}
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/req")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkSend posts single messages with one receiver from 16 parallel
// clients; each 202 means the task and its trace are durably queued.
func BenchmarkSend(b *testing.B) {
	body, _ := json.Marshal(oneSMS("1234"))
	drive(b, sendHandler(b), body, 8, 1)
}

// BenchmarkSendBare is the harness's ceiling (see above).
func BenchmarkSendBare(b *testing.B) {
	body, _ := json.Marshal(oneSMS("1234"))
	answer := []byte(`{"messages":[{"messageId":"01KB5G3J7Q8W0000000000000A","businessId":"2000000120260301","receivers":["+8613800138000"]}]}` + "\n")
	drive(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(answer)
	}), body, 8, 1)
}

// BenchmarkSendBatch posts messages × receivers per request from 4
// parallel clients: 500 messages of one receiver, and 100 of 100.
func BenchmarkSendBatch(b *testing.B) {
	for _, shape := range []struct{ messages, receivers int }{{500, 1}, {100, 100}} {
		b.Run(fmt.Sprintf("%dx%d", shape.messages, shape.receivers), func(b *testing.B) {
			req := access.SendRequest{TemplateID: 1, Messages: make([]access.MessageRequest, shape.messages)}
			for i := range req.Messages {
				rcv := make([]string, shape.receivers)
				for j := range rcv {
					rcv[j] = fmt.Sprintf("+86138%08d", i*shape.receivers+j)
				}
				req.Messages[i] = msg(map[string]any{"code": i}, rcv...)
			}
			body, _ := json.Marshal(req)
			drive(b, sendHandler(b), body, 2, shape.messages*shape.receivers)
		})
	}
}
