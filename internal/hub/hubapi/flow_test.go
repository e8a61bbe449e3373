package hubapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/dag"
	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/downstream"
	"github.com/waypost/waypost/internal/hub/flow"
	asmv1 "github.com/waypost/waypost/proto/gen/go/waypost/hub/asm/v1"
)

// explained is an explained sort's answer, as a client reads it.
type explained struct {
	Chute, NextHop, WorkOrderID string
	Error                       struct{ Code, Message string }
	Explain                     explainDoc
}

// explainDoc is the contract's "explain" object.
type explainDoc struct {
	Flow         string        `json:"flow"`
	Version      int64         `json:"version"`
	Market       string        `json:"market"`
	TotalMs      float64       `json:"totalMs"`
	Nodes        []explainNode `json:"nodes"`
	CriticalPath []string      `json:"criticalPath"`
}

type explainNode struct {
	Name       string  `json:"name"`
	Status     string  `json:"status"`
	StartMs    float64 `json:"startMs"`
	DurationMs float64 `json:"durationMs"`
	Error      string  `json:"error"`
}

func (e *env) sortExplained(t *testing.T, want int, station, waybill string) explained {
	t.Helper()
	var out explained
	require.Equal(t, want, e.do(t, http.MethodPost, "/api/v1/hub/sort?explain=1", scan(station, waybill), &out), "%+v", out)
	return out
}

func node(t *testing.T, ex explainDoc, name string) explainNode {
	t.Helper()
	for _, n := range ex.Nodes {
		if n.Name == name {
			return n
		}
	}
	require.Failf(t, "no node", "%s in %+v", name, ex.Nodes)
	return explainNode{}
}

func names(ex explainDoc) []string {
	var out []string
	for _, n := range ex.Nodes {
		out = append(out, n.Name)
	}
	return out
}

// end is when n ended, less the rounding of its start and duration to the
// microsecond each.
func end(n explainNode) float64 { return n.StartMs + n.DurationMs - 0.002 }

// createCOD creates a waybill carrying cash on delivery.
func (e *env) createCOD(t *testing.T, from, to string, cod int64) string {
	t.Helper()
	var out obj
	require.Equal(t, http.StatusCreated, e.do(t, http.MethodPost, "/sandbox/v1/waybills", obj{
		"originStation": from, "destinationStation": to, "type": "standard", "service": "standard",
		"weightGrams": 800, "codAmount": cod, "receiver": obj{"name": "Aminah", "phone": "+60123456789", "address": "1 Jalan Ampang"},
	}, &out), "%v", out)
	return out["waybill"].(string)
}

// TestExplain injects known latencies — the order centre slowest, then
// basic data (station, route, sort plan), delivery, billing — and checks
// what each flow's explain says: which steps ran together, which one
// after which, and the critical path.
func TestExplain(t *testing.T) {
	inj := "order=60ms,basicdata=30ms,delivery=20ms,billing=10ms"
	t.Run("dag", func(t *testing.T) {
		e := newEnv(t, envOpts{injection: inj})
		wb := e.createWaybill(t, "SGFM01", "SGLM01")
		out := e.sortExplained(t, http.StatusOK, "SGFM01", wb)
		ex := out.Explain
		require.Equal(t, "sort/SG", ex.Flow)
		require.Equal(t, "SG", ex.Market)
		require.Zero(t, ex.Version, "the embedded default")
		require.Equal(t, []string{"station", "waybill", "billing", "delivery", "plan", "route", "decide", "persist", "track"}, names(ex))
		require.Equal(t, dag.StatusSkipped.String(), node(t, ex, "billing").Status, "Singapore does not check billing")
		for _, n := range ex.Nodes {
			if n.Name != "billing" {
				require.Equal(t, dag.StatusOK.String(), n.Status, n.Name)
			}
		}
		waybill, route := node(t, ex, "waybill"), node(t, ex, "route")
		for _, parallel := range []string{"station", "delivery", "plan"} {
			require.Less(t, node(t, ex, parallel).StartMs, end(waybill), "%s runs while the waybill is fetched", parallel)
		}
		require.GreaterOrEqual(t, route.StartMs, end(waybill), "the route needs the waybill")
		decide := node(t, ex, "decide")
		for _, before := range []string{"station", "delivery", "plan", "route"} {
			require.GreaterOrEqual(t, decide.StartMs, end(node(t, ex, before)), "decide after %s", before)
		}
		require.GreaterOrEqual(t, node(t, ex, "persist").StartMs, end(decide))
		require.Equal(t, []string{"waybill", "route", "decide", "persist", "track"}, ex.CriticalPath)
		require.GreaterOrEqual(t, ex.TotalMs, end(route))
		require.NotEmpty(t, out.WorkOrderID)

		again := e.sortExplained(t, http.StatusOK, "SGFM01", wb)
		require.Equal(t, out.WorkOrderID, again.WorkOrderID)
		require.Equal(t, "replay", again.Explain.Flow, "a repeated scan answers the recorded work order")

		my := e.createWaybill(t, "MYFM01", "MYLM01")
		ex = e.sortExplained(t, http.StatusOK, "MYFM01", my).Explain
		require.Equal(t, "sort/MY", ex.Flow)
		require.Equal(t, dag.StatusOK.String(), node(t, ex, "billing").Status)
		require.Equal(t, dag.StatusOK.String(), node(t, ex, "cod").Status)
		require.GreaterOrEqual(t, node(t, ex, "cod").StartMs, end(node(t, ex, "waybill")))
		require.GreaterOrEqual(t, node(t, ex, "persist").StartMs, end(node(t, ex, "cod")))
		require.Contains(t, ex.CriticalPath, "waybill")
		require.Equal(t, []string{"decide", "persist", "track"}, ex.CriticalPath[len(ex.CriticalPath)-3:])
	})
	t.Run("sequential", func(t *testing.T) {
		e := newEnv(t, envOpts{injection: inj, flow: flow.FlowSequential})
		wb := e.createWaybill(t, "SGFM01", "SGLM01")
		ex := e.sortExplained(t, http.StatusOK, "SGFM01", wb).Explain
		require.Equal(t, "sequential", ex.Flow)
		require.Equal(t, "SG", ex.Market)
		require.Equal(t, int64(1), ex.Version)
		order := []string{"station", "waybill", "billing", "delivery", "route", "plan", "decide", "persist"}
		require.Equal(t, order, names(ex))
		require.Equal(t, order, ex.CriticalPath, "one step after the other: all of them")
		for i := 1; i < len(ex.Nodes); i++ {
			require.Equal(t, dag.StatusOK.String(), ex.Nodes[i].Status)
			require.GreaterOrEqual(t, ex.Nodes[i].StartMs, end(ex.Nodes[i-1]), "%s after %s", ex.Nodes[i].Name, ex.Nodes[i-1].Name)
		}
		require.GreaterOrEqual(t, ex.TotalMs, end(ex.Nodes[len(ex.Nodes)-1]))
	})
	t.Run("refusal", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		out := e.sortExplained(t, http.StatusNotFound, "SGFM01", "WPSG0000000077")
		require.Equal(t, "unknown_waybill", out.Error.Code)
		require.Equal(t, dag.StatusError.String(), node(t, out.Explain, "waybill").Status, "the check that refused")
		require.Contains(t, node(t, out.Explain, "waybill").Error, "unknown_waybill")
		require.Equal(t, dag.StatusError.String(), node(t, out.Explain, "decide").Status, "decide answers it")
		require.Equal(t, dag.StatusCancelled.String(), node(t, out.Explain, "persist").Status, "nothing is written")
	})
}

// TestMarketFlows: Singapore's flow skips billing, Malaysia's adds a COD
// check; the sequential flow does neither.
func TestMarketFlows(t *testing.T) {
	eachFlow(t, func(t *testing.T, flowName string) {
		e := newEnv(t, envOpts{flow: flowName})
		unpaid := e.createWaybill(t, "SGFM01", "SGLM01")
		require.Equal(t, http.StatusOK, e.do(t, http.MethodPut, "/sandbox/v1/admin/waybills/"+unpaid+"/billing", obj{"blocked": true}, nil))
		heavyCOD := e.createCOD(t, "MYFM01", "MYLM01", 250000)
		fineCOD := e.createCOD(t, "MYFM01", "MYLM01", 150000)
		e.ok(t, http.StatusOK, "/api/v1/hub/sort", scan("MYFM01", fineCOD))

		if flowName == flow.FlowSequential {
			e.refused(t, http.StatusUnprocessableEntity, "billing_blocked", "/api/v1/hub/sort", scan("SGFM01", unpaid))
			e.ok(t, http.StatusOK, "/api/v1/hub/sort", scan("MYFM01", heavyCOD))
			return
		}
		out := e.sortExplained(t, http.StatusOK, "SGFM01", unpaid)
		require.Equal(t, "SGSC01", out.NextHop)
		require.Equal(t, dag.StatusSkipped.String(), node(t, out.Explain, "billing").Status)

		out = e.sortExplained(t, http.StatusUnprocessableEntity, "MYFM01", heavyCOD)
		require.Equal(t, hub.CodeCODOverLimit, out.Error.Code)
		require.Contains(t, out.Error.Message, "over the limit of 200000")
		require.Equal(t, dag.StatusError.String(), node(t, out.Explain, "cod").Status)
		require.Equal(t, 1, e.workOrders(t, heavyCOD, ""), "the refusal is recorded")
		require.Equal(t, []string{"HEX"}, e.outboxCodes(t, heavyCOD))
	})
}

type countingWaker struct{ n atomic.Int64 }

func (w *countingWaker) Notify() { w.n.Add(1) }

type panickingWaker struct{}

func (panickingWaker) Notify() { panic("relay gone") }

// TestPushTracking: a sort wakes the relay once; a sorter lookup writes
// nothing and wakes nothing; a failing wake does not fail the sort.
func TestPushTracking(t *testing.T) {
	t.Run("wakes the relay", func(t *testing.T) {
		w := &countingWaker{}
		e := newEnv(t, envOpts{tracking: w})
		wb := e.createWaybill(t, "SGFM01", "SGLM02")
		out := e.sortExplained(t, http.StatusOK, "SGFM01", wb)
		require.Equal(t, dag.StatusOK.String(), node(t, out.Explain, "track").Status)
		require.Equal(t, int64(1), w.n.Load())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		other := e.createWaybill(t, "SGFM01", "SGLM02")
		got, err := e.sorter.GetSortResult(ctx, sortReq("SGFM01", other))
		require.NoError(t, err)
		require.Equal(t, asmv1.ResultSource_RESULT_SOURCE_LIVE, got.GetSource())
		require.Equal(t, int64(1), w.n.Load(), "a lookup wakes nothing")
		require.Zero(t, e.workOrders(t, other, ""), "a lookup writes nothing")
	})
	t.Run("failing wake", func(t *testing.T) {
		e := newEnv(t, envOpts{tracking: panickingWaker{}})
		wb := e.createWaybill(t, "SGFM01", "SGLM02")
		out := e.sortExplained(t, http.StatusOK, "SGFM01", wb)
		require.Equal(t, "SGSC01", out.NextHop)
		track := node(t, out.Explain, "track")
		require.Equal(t, dag.StatusError.String(), track.Status)
		require.Contains(t, track.Error, "relay gone")
		require.Equal(t, []string{"HSR"}, e.outboxCodes(t, wb), "the sort and its event are recorded")
	})
}

// settingsPut sends a new hub.flows value over the settings API.
func (e *env) settingsPut(t *testing.T, body string) (int, obj) {
	t.Helper()
	var out obj
	st := e.do(t, http.MethodPut, "/api/v1/settings/"+flow.SettingName, body, &out)
	return st, out
}

// singaporeCOD is a flows config in which Singapore checks billing and
// cash on delivery.
const singaporeCOD = `{"sort":{"nodes":[
 {"name":"station","step":"check_station"},{"name":"waybill","step":"get_waybill"},
 {"name":"billing","step":"check_billing"},{"name":"delivery","step":"check_delivery"},
 {"name":"plan","step":"get_sort_plan"},{"name":"route","step":"get_route"},
 {"name":"decide","step":"decide_chute"},{"name":"persist","step":"persist"},
 {"name":"track","step":"push_tracking","policy":"optional","default":false}],
 "markets":{"SG":{"add":[{"name":"cod","step":"check_cod","before":["persist"]}]}}}}`

// TestFlowsHotSwap changes hub.flows over the settings API while sorts
// run: no sort fails, and every answer's explain is one whole version —
// the flow, nodes and statuses that version configures.
func TestFlowsHotSwap(t *testing.T) {
	// A generous call timeout: this is about swapping, not about a loaded
	// machine's downstream calls (under -race) passing 300 ms.
	e := newEnv(t, envOpts{settings: true, ds: downstream.Config{CallTimeout: 10 * time.Second}})
	const skipBilling, addCOD, sequential = "skip billing", "add cod", "sequential"
	bodies := map[string]string{
		skipBilling: `{"use":{"SG":"dag"}}`,
		addCOD:      `{"use":{"SG":"dag"},"flows":` + singaporeCOD + `}`,
		sequential:  `{"use":{"SG":"sequential"}}`,
	}
	const sorts = 120
	waybills := make([]string, sorts)
	for i := range waybills {
		waybills[i] = e.createWaybill(t, "SGFM01", "SGLM0"+fmt.Sprint(1+i%4))
	}

	var mu sync.Mutex
	variant := map[int64]string{0: skipBilling} // the embedded default skips billing in SG
	answers := make([]explained, sorts)
	statuses := make([]int, sorts)
	var next atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < sorts; i = int(next.Add(1) - 1) {
				statuses[i] = e.do(t, http.MethodPost, "/api/v1/hub/sort?explain=1", scan("SGFM01", waybills[i]), &answers[i])
			}
		})
	}
	writer := make(chan int)
	go func() {
		puts := 0
		for k := 0; ; k++ {
			select {
			case <-done:
				writer <- puts
				return
			default:
			}
			name := []string{addCOD, sequential, skipBilling}[k%3]
			st, out := e.settingsPut(t, bodies[name])
			if st != http.StatusOK {
				t.Errorf("put %s: %d %v", name, st, out)
				continue
			}
			mu.Lock()
			variant[int64(out["version"].(float64))] = name
			mu.Unlock()
			puts++
		}
	}()
	wg.Wait()
	close(done)
	puts := <-writer
	require.GreaterOrEqual(t, puts, 2, "the setting changed during the sorts")

	versions := map[int64]bool{}
	for i, a := range answers {
		require.Equal(t, http.StatusOK, statuses[i], "sort %d: %+v", i, a)
		v := a.Explain.Version
		versions[v] = true
		name, ok := variant[v]
		require.True(t, ok, "sort %d names version %d, which was never stored", i, v)
		ex := a.Explain
		switch name {
		case sequential:
			require.Equal(t, "sequential", ex.Flow, "version %d", v)
			require.NotContains(t, names(ex), "track")
		case skipBilling:
			require.Equal(t, "sort/SG", ex.Flow, "version %d", v)
			require.Equal(t, dag.StatusSkipped.String(), node(t, ex, "billing").Status, "version %d", v)
			require.NotContains(t, names(ex), "cod", "version %d", v)
		case addCOD:
			require.Equal(t, "sort/SG", ex.Flow, "version %d", v)
			require.Equal(t, dag.StatusOK.String(), node(t, ex, "billing").Status, "version %d", v)
			require.Equal(t, dag.StatusOK.String(), node(t, ex, "cod").Status, "version %d", v)
		}
	}
	t.Logf("%d sorts over %d versions while %d puts were made", sorts, len(versions), puts)
	require.Greater(t, len(versions), 1, "the sorts saw more than one version")
}

// TestFlowsBadConfig: a flows config with mistakes is refused over the
// settings API with every problem named, and the version before keeps
// serving.
func TestFlowsBadConfig(t *testing.T) {
	e := newEnv(t, envOpts{settings: true})
	st, out := e.settingsPut(t, `{"use":{"SG":"dag"},"flows":`+singaporeCOD+`}`)
	require.Equal(t, http.StatusOK, st, "%v", out)
	good := int64(out["version"].(float64))

	bad := strings.Replace(singaporeCOD, `"check_billing"`, `"check_biling"`, 1)
	bad = strings.Replace(bad, `"before":["persist"]`, `"before":["persits"]`, 1)
	cases := []struct {
		name, body string
		want       []string
	}{
		{"unknown step and dependency", `{"flows":` + bad + `}`, []string{
			`node billing: unknown step kind: "check_biling"`,
			`dag: flow sort, market SG, node cod: unknown dependency: before "persits"`}},
		{"unknown flow", `{"use":{"MY":"fast"}}`, []string{`use.MY: "fast" is not a flow`}},
		{"unknown field", `{"flows":{"sort":{"nodes":[{"name":"w","step":"get_waybill","timout":"1s"}]}}}`,
			[]string{"field timout not found"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, out := e.settingsPut(t, tc.body)
			require.Equal(t, http.StatusBadRequest, st)
			er := out["error"].(obj)
			require.Equal(t, "invalid_setting", er["code"])
			for _, w := range tc.want {
				require.Contains(t, er["message"], w)
			}
			require.Equal(t, good, e.api.Flows().Version())
			wb := e.createWaybill(t, "SGFM01", "SGLM01")
			ex := e.sortExplained(t, http.StatusOK, "SGFM01", wb).Explain
			require.Equal(t, good, ex.Version, "the old version serves")
			require.True(t, slices.Contains(names(ex), "cod"))
		})
	}
}
