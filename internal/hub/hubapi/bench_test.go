package hubapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waypost/waypost/internal/hub/downstream"
	"github.com/waypost/waypost/internal/hub/flow"
)

// BenchmarkInboundSortHTTP takes parcels in and sorts them over HTTP, eight
// clients at a time, against the sandbox without injected latency and the
// hub on SQLite. One op is one parcel: an inbound and a sort. It reports
// sorts/s and the p50/p99 of the sort request.
//
//	go test ./internal/hub/hubapi -run '^$' -bench 'InboundSortHTTP$' -benchtime 2000x -count 5
func BenchmarkInboundSortHTTP(b *testing.B) { benchInboundSort(b, "none", "") }

// BenchmarkInboundSortHTTPSequential is BenchmarkInboundSortHTTP with
// every market on the sequential flow.
func BenchmarkInboundSortHTTPSequential(b *testing.B) {
	benchInboundSort(b, "none", flow.FlowSequential)
}

// BenchmarkInboundSortHTTPSeed is the same with the seed's downstream
// latency (every call 80–120 ms): its p50 is the sequential baseline.
//
//	go test ./internal/hub/hubapi -run '^$' -bench InboundSortHTTPSeed -benchtime 40x -count 5
func BenchmarkInboundSortHTTPSeed(b *testing.B) { benchInboundSort(b, "seed", flow.FlowSequential) }

func benchInboundSort(b *testing.B, injection, flowName string) {
	e := newEnv(b, envOpts{injection: injection, flow: flowName, ds: downstream.Config{CallTimeout: 2 * time.Second}})
	stations := [][2]string{{"SGFM01", "SGLM01"}, {"SGFM02", "SGLM02"}, {"MYFM01", "MYLM01"}, {"MYFM03", "MYLM04"}}
	type parcel struct{ station, waybill string }
	parcels := make([]parcel, b.N)
	for i := range parcels {
		s := stations[i%len(stations)]
		parcels[i] = parcel{s[0], e.createWaybill(b, s[0], s[1])}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	post := func(path string, body any) error {
		raw, _ := json.Marshal(body)
		resp, err := client.Post(e.http.URL+path, "application/json", bytes.NewReader(raw))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Errorf("%s: status %d", path, resp.StatusCode)
		}
		return nil
	}
	var (
		next atomic.Int64
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, b.N)
	)
	b.SetParallelism(4) // 4 × GOMAXPROCS clients
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			p := parcels[next.Add(1)-1]
			if err := post("/api/v1/hub/inbound", scan(p.station, p.waybill)); err != nil {
				b.Error(err)
				return
			}
			t0 := time.Now()
			if err := post("/api/v1/hub/sort", scan(p.station, p.waybill)); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "sorts/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
