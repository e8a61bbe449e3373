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

// BenchmarkSortFlowsSeed sorts over HTTP with the seed's downstream latency
// (every call 80–120 ms), eight clients at a time, under the sequential
// flow and under each market's DAG flow, side by side in one run. Each op
// is one sort (?explain=1) of a parcel not sorted before. It reports the
// sort's p50 and p99 and, from the explain answers, the p50 of the
// critical path's latency (the sum of its nodes' durations) and of the
// flow's own total. The watched/ cases follow basic data's change stream
// as `up` does, so sort plans are cached.
//
//	go test ./internal/hub/hubapi -run '^$' -bench SortFlowsSeed -benchtime 200x -count 3
func BenchmarkSortFlowsSeed(b *testing.B) {
	sg := [][2]string{{"SGFM01", "SGLM01"}, {"SGFM02", "SGLM02"}}
	my := [][2]string{{"MYFM01", "MYLM01"}, {"MYFM03", "MYLM04"}}
	for _, c := range []struct {
		name, flow string
		lanes      [][2]string // origin, destination
		watch      bool
	}{
		{"sequential/SG", flow.FlowSequential, sg, false},
		{"sequential/MY", flow.FlowSequential, my, false},
		{"dag/SG", flow.FlowDAG, sg, false},
		{"dag/MY", flow.FlowDAG, my, false},
		{"watched/sequential/SG", flow.FlowSequential, sg, true},
		{"watched/dag/SG", flow.FlowDAG, sg, true},
		{"watched/dag/MY", flow.FlowDAG, my, true},
	} {
		b.Run(c.name, func(b *testing.B) { benchSortFlow(b, c.flow, c.lanes, c.watch) })
	}
}

func benchSortFlow(b *testing.B, flowName string, lanes [][2]string, watch bool) {
	e := newEnv(b, envOpts{injection: "seed", flow: flowName, watch: watch, ds: downstream.Config{CallTimeout: 2 * time.Second}})
	type parcel struct{ station, waybill string }
	parcels := make([]parcel, b.N)
	for i := range parcels {
		l := lanes[i%len(lanes)]
		parcels[i] = parcel{l[0], e.createWaybill(b, l[0], l[1])}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	sort := func(p parcel) (explainDoc, error) {
		raw, _ := json.Marshal(scan(p.station, p.waybill))
		resp, err := client.Post(e.http.URL+"/api/v1/hub/sort?explain=1", "application/json", bytes.NewReader(raw))
		if err != nil {
			return explainDoc{}, err
		}
		defer func() { _ = resp.Body.Close() }()
		var out struct{ Explain explainDoc }
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			b.Errorf("sort: status %d: %s", resp.StatusCode, data)
		}
		return out.Explain, json.Unmarshal(data, &out)
	}
	// Warm the station and route caches and the connections, as a
	// running hub has them.
	for _, l := range lanes {
		if _, err := sort(parcel{l[0], e.createWaybill(b, l[0], l[1])}); err != nil {
			b.Fatal(err)
		}
	}
	var (
		next               atomic.Int64
		mu                 sync.Mutex
		lat, crit, flowDur = make([]time.Duration, 0, b.N), make([]float64, 0, b.N), make([]float64, 0, b.N)
	)
	b.SetParallelism(4) // 4 × GOMAXPROCS clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p := parcels[next.Add(1)-1]
			t0 := time.Now()
			ex, err := sort(p)
			d := time.Since(t0)
			if err != nil {
				b.Error(err)
				return
			}
			cp := 0.0
			for _, name := range ex.CriticalPath {
				for _, n := range ex.Nodes {
					if n.Name == name {
						cp += n.DurationMs
					}
				}
			}
			mu.Lock()
			lat, crit, flowDur = append(lat, d), append(crit, cp), append(flowDur, ex.TotalMs)
			mu.Unlock()
		}
	})
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	slices.Sort(crit)
	slices.Sort(flowDur)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(crit[len(crit)/2], "cp-p50-ms")
	b.ReportMetric(flowDur[len(flowDur)/2], "flow-p50-ms")
}
