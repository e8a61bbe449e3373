package hubapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypost/waypost/internal/hub/downstream"
	"github.com/waypost/waypost/internal/hub/flow"
)

// BenchmarkInboundSortHTTP takes parcels in and sorts them over HTTP, eight
// clients at a time, against the sandbox without injected latency and the
// hub on SQLite. One op is one parcel: an inbound and a sort. It reports
// sorts/s, the p50/p99 of the sort request, the process CPU per parcel and
// the downstream lookups per call (batching).
//
//	go test ./internal/hub/hubapi -run '^$' -bench 'InboundSortHTTP$' -benchtime 2000x -count 5
func BenchmarkInboundSortHTTP(b *testing.B) { benchInboundSort(b, "none", "", 0) }

// BenchmarkInboundSortHTTPWatched is BenchmarkInboundSortHTTP with basic
// data's change stream followed, as `up` and `hub serve` do: sort plans,
// stations and routes are served from the cache the stream keeps current.
func BenchmarkInboundSortHTTPWatched(b *testing.B) { benchInboundSortWith(b, "none", "", 0, true) }

// BenchmarkInboundSortHTTPUnbatched is BenchmarkInboundSortHTTP with every
// downstream lookup its own call (no batching of concurrent lookups).
func BenchmarkInboundSortHTTPUnbatched(b *testing.B) { benchInboundSort(b, "none", "", -1) }

// BenchmarkInboundSortHTTPSequential is BenchmarkInboundSortHTTP with
// every market on the sequential flow.
func BenchmarkInboundSortHTTPSequential(b *testing.B) {
	benchInboundSort(b, "none", flow.FlowSequential, 0)
}

// BenchmarkInboundSortHTTPSeed is the same with the seed's downstream
// latency (every call 80–120 ms): its p50 is the sequential baseline.
//
//	go test ./internal/hub/hubapi -run '^$' -bench InboundSortHTTPSeed -benchtime 40x -count 5
func BenchmarkInboundSortHTTPSeed(b *testing.B) {
	benchInboundSort(b, "seed", flow.FlowSequential, 0)
}

func benchInboundSort(b *testing.B, injection, flowName string, batchInFlight int) {
	benchInboundSortWith(b, injection, flowName, batchInFlight, false)
}

func benchInboundSortWith(b *testing.B, injection, flowName string, batchInFlight int, watch bool) {
	reg := prometheus.NewRegistry()
	e := newEnv(b, envOpts{injection: injection, flow: flowName, dsReg: reg, watch: watch,
		ds: downstream.Config{CallTimeout: 2 * time.Second, BatchInFlight: batchInFlight}})
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
	calls0, lookups0 := batchCounts(b, reg)
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
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
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "sorts/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	// CPU per parcel of the whole process (clients, hub, sandbox): the
	// figure that holds when other work shares the cores.
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-us/sort")
	calls, lookups := batchCounts(b, reg)
	if calls > calls0 {
		b.ReportMetric((lookups-lookups0)/(calls-calls0), "lookups/call")
	}
}

// batchCounts reads the batching counters (waybill, billing, delivery):
// calls made and the lookups they answered.
func batchCounts(b *testing.B, reg *prometheus.Registry) (calls, lookups float64) {
	families, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "waypost_hub_downstream_batch_calls_total":
				calls += m.GetCounter().GetValue()
			case "waypost_hub_downstream_batch_lookups_total":
				lookups += m.GetCounter().GetValue()
			}
		}
	}
	return calls, lookups
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
