package webhook_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/waypost/waypost/internal/push/channel/webhook"
)

// BenchmarkVerify measures what a receiver pays per request to check the
// signature of a typical body.
func BenchmarkVerify(b *testing.B) {
	body := []byte(`{"messageId":"m-1","businessId":"2000000120260304","templateId":1,"receiver":"user-7","text":"Your parcel arrived","sentAt":"2026-03-04T05:06:07Z"}`)
	ts := strconv.FormatInt(fixedNow.Unix(), 10)
	h := http.Header{}
	h.Set("X-Waypost-Timestamp", ts)
	h.Set("X-Waypost-Signature", "v1=cd2a2c9c0f2b2a3e7c0d0b4d59b8d8d0a4e5f0c1a9b8e7d6c5b4a39281706f5e")
	b.ReportAllocs()
	for b.Loop() {
		_ = webhook.Verify(secret, h, body, fixedNow, time.Minute)
	}
}

// BenchmarkSend measures one signed delivery to a loopback sink that
// discards the body and answers 200, from parallel senders as the handler's
// pool runs them. cpu-µs/send is the whole process (sender, net/http on both
// ends, GC); allocs/op and B/op include the sink's share.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	client := webhook.NewClient(loopback())
	defer client.CloseIdleConnections()
	s, err := webhook.New(webhook.Config{URL: srv.URL + "/hook", Secret: secret}, client)
	if err != nil {
		b.Fatal(err)
	}
	m := msg
	b.ReportAllocs()
	b.SetParallelism(4)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Send(context.Background(), m); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/send")
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
