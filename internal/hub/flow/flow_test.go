package flow

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/dag"
	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/ops"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newRunner is a runner over ds without a store: enough for Decide, which
// writes nothing.
func newRunner(t *testing.T, ds *fakeDS) *Runner {
	t.Helper()
	r, err := New(ops.New(nil, ds, ops.Config{}, nil), Config{}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	return r
}

var refusal = func(code string) error { return hub.Refuse(code, "canned %s", code) }

// TestDecideSameAsSequential gives the DAG flow and the sequential one
// the same downstream answers — several checks failing at once, the
// later checks of the sequential order answering first — and requires
// the same answer from both.
func TestDecideSameAsSequential(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name  string
		setup func(f *fakeDS)
		code  string // "" for a chute
	}{
		{"all pass", func(f *fakeDS) {}, ""},
		{"unknown waybill, slow, beats billing and delivery", func(f *fakeDS) {
			f.calls["waybill"] = call{delay: 50 * ms, err: refusal(hub.CodeUnknownWaybill)}
			f.billing = hub.BillingVerdict{OK: false, ReasonCode: "unpaid"}
			f.delivery = hub.DeliveryStatus{Status: hub.DeliveryOnHold}
		}, hub.CodeUnknownWaybill},
		{"billing blocked, slow, beats on hold", func(f *fakeDS) {
			f.calls["billing"] = call{delay: 40 * ms}
			f.billing = hub.BillingVerdict{OK: false, ReasonCode: "unpaid"}
			f.delivery = hub.DeliveryStatus{Status: hub.DeliveryOnHold}
		}, hub.CodeBillingBlocked},
		{"waybill timeout beats billing's unknown waybill", func(f *fakeDS) {
			f.calls["waybill"] = call{delay: 30 * ms, err: refusal(hub.CodeDownstreamTimeout)}
			f.calls["billing"] = call{err: refusal(hub.CodeUnknownWaybill)}
		}, hub.CodeDownstreamTimeout},
		{"on hold, slow, beats wrong station", func(f *fakeDS) {
			f.calls["delivery"] = call{delay: 80 * ms}
			f.delivery = hub.DeliveryStatus{Status: hub.DeliveryOnHold, Reason: "customs"}
			f.route = []string{"XXFM01", "XXLM01"}
		}, hub.CodeOnHold},
		{"wrong station beats a slow sort plan", func(f *fakeDS) {
			f.calls["plan"] = call{delay: 60 * ms}
			f.route = []string{"XXFM01", "XXLM01"}
		}, hub.CodeWrongStation},
		{"station inactive beats everything", func(f *fakeDS) {
			f.station.Active = false
			f.calls["waybill"] = call{err: refusal(hub.CodeUnknownWaybill)}
		}, hub.CodeStationInactive},
		{"no rule names the exception chute", func(f *fakeDS) {
			f.waybill.Destination = "XXLM09"
			f.route = []string{"XXFM01", "XXSC01", "XXLM09"}
		}, hub.CodeNoRule},
		{"sort plan unavailable", func(f *fakeDS) {
			f.calls["plan"] = call{delay: 5 * ms, err: refusal(hub.CodeDownstreamUnavailable)}
		}, hub.CodeDownstreamUnavailable},
		{"delivery unavailable", func(f *fakeDS) {
			f.calls["delivery"] = call{err: refusal(hub.CodeDownstreamUnavailable)}
		}, hub.CodeDownstreamUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ds := newFakeDS()
				for _, m := range []string{"station", "waybill", "billing", "delivery", "route", "plan"} {
					if _, set := ds.calls[m]; !set {
						ds.calls[m] = call{delay: 10 * time.Millisecond}
					}
				}
				tc.setup(ds)
				r := newRunner(t, ds)
				sc := ops.Scan{Station: "XXSC01", Waybill: "WPXX0000000001", Operator: "op"}
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				defer cancel()
				want, wantErr := r.svc.Decide(ctx, sc)
				got, gotErr := r.Decide(ctx, sc)
				require.Equal(t, want, got)
				if tc.code == "" {
					require.NoError(t, wantErr)
					require.NoError(t, gotErr)
					require.Equal(t, "C07", got.Chute)
					return
				}
				wantRef, ok := hub.AsRefusal(wantErr)
				require.True(t, ok, "sequential: %v", wantErr)
				gotRef, ok := hub.AsRefusal(gotErr)
				require.True(t, ok, "dag: %v", gotErr)
				require.Equal(t, tc.code, wantRef.Code, "the sequential answer")
				require.Equal(t, wantRef, gotRef)
			})
		})
	}
}

func TestCODCheck(t *testing.T) {
	cases := []struct {
		name   string
		market string
		amount int64
		code   string
	}{
		{"MY under the limit", "MY", 200000, ""},
		{"MY over the limit", "MY", 200001, hub.CodeCODOverLimit},
		{"SG has no COD check", "SG", 900000, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ds := newFakeDS()
				ds.station.Market = tc.market
				ds.waybill.CODAmount = tc.amount
				r := newRunner(t, ds)
				res, err := r.Decide(t.Context(), ops.Scan{Station: "XXSC01", Waybill: "WPXX0000000001"})
				if tc.code == "" {
					require.NoError(t, err)
					require.Equal(t, "C07", res.Chute)
					return
				}
				ref, ok := hub.AsRefusal(err)
				require.True(t, ok, "%v", err)
				require.Equal(t, tc.code, ref.Code)
				require.Contains(t, ref.Message, "over the limit of 200000")
			})
		})
	}
}

func TestDefaultSettings(t *testing.T) {
	s := DefaultSettings()
	require.Equal(t, map[string]string{"*": FlowDAG}, s.Use)
	require.Equal(t, map[string]int64{"MY": 200000}, s.CODLimits)
	require.True(t, json.Valid(s.Flows))
	r := newRunner(t, newFakeDS())
	require.NoError(t, r.Validate(s))
	require.Zero(t, r.Version())

	snap := r.cur.Load().snap
	for market, want := range map[string][]string{
		"SG": {"station", "waybill", "billing", "delivery", "plan", "route", "decide", "persist", "track"},
		"MY": {"station", "waybill", "billing", "delivery", "plan", "route", "decide", "persist", "track", "cod"},
		"XX": {"station", "waybill", "billing", "delivery", "plan", "route", "decide", "persist", "track"},
	} {
		f, err := snap.Lookup(Operation, market)
		require.NoError(t, err)
		require.Equal(t, want, f.Graph.NodeNames(), market)
	}
	f, _ := snap.Lookup(Operation, "XX")
	require.Equal(t, "sort", f.Name, "a market without overrides runs the base flow")
}

// withFlows is the default settings with flows replaced by doc (YAML).
func withFlows(t *testing.T, doc string) Settings {
	t.Helper()
	s, err := parseYAML([]byte("flows:\n" + doc))
	require.NoError(t, err)
	d := DefaultSettings()
	d.Flows = s.Flows
	return d
}

func TestValidate(t *testing.T) {
	r := newRunner(t, newFakeDS())
	good := DefaultSettings()
	cases := []struct {
		name string
		s    func() Settings
		want []string // substrings of the error
	}{
		{"unknown flow in use", func() Settings {
			s := good
			s.Use = map[string]string{"*": "dag", "MY": "parallel"}
			return s
		}, []string{`use.MY: "parallel" is not a flow`}},
		{"negative COD limit", func() Settings {
			s := good
			s.CODLimits = map[string]int64{"MY": -1}
			return s
		}, []string{"codLimits.MY: -1 is negative"}},
		{"no flows", func() Settings { s := good; s.Flows = nil; return s }, []string{"flows: missing"}},
		{"no sort flow", func() Settings {
			return withFlows(t, "  inbound:\n    nodes: [{name: waybill, step: get_waybill}]\n")
		}, []string{`flows: no "sort" flow`}},
		{"unknown step", func() Settings {
			return withFlows(t, `  sort:
    nodes:
      - {name: waybill, step: get_waybill}
      - {name: plan, step: get_sort_plan}
      - {name: decide, step: decide_chute}
      - {name: persist, step: persist}
      - {name: track, step: push_trackin}
`)
		}, []string{`dag: flow sort, node track: unknown step kind: "push_trackin"`}},
		{"a market skips persist", func() Settings {
			return withFlows(t, `  sort:
    nodes:
      - {name: station, step: check_station}
      - {name: waybill, step: get_waybill}
      - {name: billing, step: check_billing}
      - {name: delivery, step: check_delivery}
      - {name: route, step: get_route}
      - {name: plan, step: get_sort_plan}
      - {name: decide, step: decide_chute}
      - {name: persist, step: persist, default: {}}
      - {name: track, step: push_tracking, policy: optional, default: false}
    markets:
      SG: {skip: [persist]}
`)
		}, []string{"flows.sort.markets.SG: skips persist, but every flow must run its persist step"}},
		{"skipped billing without a default", func() Settings {
			return withFlows(t, `  sort:
    nodes:
      - {name: station, step: check_station}
      - {name: waybill, step: get_waybill}
      - {name: billing, step: check_billing}
      - {name: delivery, step: check_delivery}
      - {name: route, step: get_route}
      - {name: plan, step: get_sort_plan}
      - {name: decide, step: decide_chute}
      - {name: persist, step: persist}
    markets:
      SG: {skip: [billing]}
`)
		}, []string{`flow sort, market SG, node decide: consumed output has no default: consumes "billing" of skippable node billing`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Validate(tc.s())
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
			require.Error(t, r.Apply(tc.s(), 1), "Apply refuses what Validate refuses")
			require.Zero(t, r.Version(), "the current version keeps serving")
		})
	}
}

func TestApplyVersions(t *testing.T) {
	r := newRunner(t, newFakeDS())
	seq := DefaultSettings()
	seq.Use = map[string]string{"*": FlowSequential}
	flowOf := func() string { return r.cur.Load().settings.flowFor("SG") }

	require.NoError(t, r.Apply(seq, 1))
	require.Equal(t, int64(1), r.Version())
	require.Equal(t, FlowSequential, flowOf())

	dagSG := DefaultSettings()
	dagSG.Use = map[string]string{"*": FlowSequential, "SG": FlowDAG}
	require.NoError(t, r.Apply(dagSG, 1), "a version installed already is left alone")
	require.Equal(t, FlowSequential, flowOf())
	require.NoError(t, r.Apply(dagSG, 4))
	require.Equal(t, int64(4), r.Version())
	require.Equal(t, FlowDAG, flowOf())

	bad := DefaultSettings()
	bad.Flows = json.RawMessage(`{"sort":{"nodes":[{"name":"x","step":"nope"}]}}`)
	err := r.Apply(bad, 5)
	require.ErrorIs(t, err, dag.ErrUnknownStep)
	require.Equal(t, int64(4), r.Version())

	require.NoError(t, r.Apply(Settings{}, 0), "version 0 is the embedded default")
	require.Zero(t, r.Version())
	require.Equal(t, FlowDAG, flowOf())

	// Deleted and stored anew: the setting's numbers start again.
	require.NoError(t, r.Apply(seq, 1))
	require.Equal(t, int64(1), r.Version())
	require.Equal(t, FlowSequential, flowOf())
	f, err := r.cur.Load().snap.Lookup(Operation, "MY")
	require.NoError(t, err)
	require.Equal(t, int64(1), f.Version)
}

func TestSettingsJSON(t *testing.T) {
	raw, err := json.Marshal(DefaultSettings())
	require.NoError(t, err)
	for _, want := range []string{`"use":{"*":"dag"}`, `"codLimits":{"MY":200000}`, `"flows":{"sort":{`} {
		require.True(t, strings.Contains(string(raw), want), "%s in %s", want, raw)
	}
	var back Settings
	require.NoError(t, json.Unmarshal(raw, &back))
	require.JSONEq(t, string(DefaultSettings().Flows), string(back.Flows))
}
