package access_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/kv/memkv"
	"github.com/waypost/waypost/internal/platform/queue/natsq"
	"github.com/waypost/waypost/internal/push/access"
)

// benchServer serves the handler over real HTTP on an embedded natsq queue
// and memkv, as `waypost up` does by default.
func benchServer(b *testing.B) (*httptest.Server, *http.Client) {
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
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	return srv, client
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

// BenchmarkSend posts single messages with one receiver from parallel
// clients; each 202 means the task and its anchor are durably queued.
func BenchmarkSend(b *testing.B) {
	srv, client := benchServer(b)
	body, _ := json.Marshal(oneSMS("1234"))
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
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
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkSendBatch posts 500 messages of one receiver each per request.
func BenchmarkSendBatch(b *testing.B) {
	srv, client := benchServer(b)
	req := access.SendRequest{TemplateID: 1, Messages: make([]access.MessageRequest, 500)}
	for i := range req.Messages {
		req.Messages[i] = msg(map[string]any{"code": i}, "+8613800138000")
	}
	body, _ := json.Marshal(req)
	b.SetParallelism(2)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			post(b, client, srv.URL, body)
		}
	})
	b.ReportMetric(float64(b.N*500)/time.Since(start).Seconds(), "receiver-msgs/s")
}
