package hubapi

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/hub/downstream"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
)

// counts is what a refusal may not change: rows of work orders and outbox.
func (e *env) counts(t *testing.T) (int, int) {
	t.Helper()
	rows, err := e.st.Outbox(context.Background(), "")
	require.NoError(t, err)
	return e.workOrders(t, "", ""), len(rows)
}

// TestRefusals runs every bad input under every flow: the answers, and
// what is recorded, are the same.
func TestRefusals(t *testing.T) { eachFlow(t, refusals) }

func refusals(t *testing.T, flowName string) {
	e := newEnv(t, envOpts{flow: flowName})
	wb := e.createWaybill(t, "SGFM01", "SGLM01")
	e.ok(t, http.StatusOK, "/api/v1/hub/inbound", scan("SGFM01", wb))
	e.ok(t, http.StatusOK, "/api/v1/hub/sort", scan("SGFM01", wb))
	wb2 := e.createWaybill(t, "SGFM01", "SGLM01")
	e.ok(t, http.StatusOK, "/api/v1/hub/inbound", scan("SGFM01", wb2))
	e.ok(t, http.StatusOK, "/api/v1/hub/sort", scan("SGFM01", wb2))
	unsorted := e.createWaybill(t, "SGFM01", "SGLM01")
	e.ok(t, http.StatusOK, "/api/v1/hub/inbound", scan("SGFM01", unsorted))
	wrongBag := e.container(t, "SGFM01", "bag", "SGFM02")
	sealed := e.packAndSeal(t, "SGFM01", "bag", "SGSC01", obj{"waybill": wb})
	open := e.container(t, "SGFM01", "bag", "SGSC01")

	held := e.createWaybill(t, "SGFM01", "SGLM01")
	require.Equal(t, http.StatusOK, e.do(t, http.MethodPut, "/sandbox/v1/admin/waybills/"+held+"/hold", obj{"hold": true, "reason": "customs_check"}, nil))
	// Billing is checked in Malaysia by every flow (Singapore's DAG flow
	// skips it: see TestMarketFlows).
	unpaid := e.createWaybill(t, "MYFM01", "MYLM01")
	require.Equal(t, http.StatusOK, e.do(t, http.MethodPut, "/sandbox/v1/admin/waybills/"+unpaid+"/billing", obj{"blocked": true}, nil))
	fresh := e.createWaybill(t, "SGFM01", "SGLM01")

	cases := []struct {
		name, path string
		body       any
		status     int
		code       string
		// recorded is whether a refused work order (and its HEX event, when
		// a waybill is named) is written.
		recorded bool
		events   int
	}{
		{"malformed json", "/api/v1/hub/inbound", `{"station":`, 400, "invalid_body", false, 0},
		{"missing operator", "/api/v1/hub/inbound", obj{"station": "SGFM01", "waybill": wb}, 400, "invalid_body", false, 0},
		{"malformed barcode", "/api/v1/hub/inbound", scan("SGFM01", "wp sg 12"), 400, "malformed_barcode", false, 0},
		{"unknown waybill", "/api/v1/hub/inbound", scan("SGFM01", "WPSG0000000000"), 404, "unknown_waybill", false, 0},
		{"unknown station", "/api/v1/hub/inbound", scan("ZZFM99", fresh), 404, "unknown_station", false, 0},
		{"wrong station", "/api/v1/hub/inbound", scan("MYSC01", fresh), 422, "wrong_station", true, 1},
		{"on hold", "/api/v1/hub/inbound", scan("SGFM01", held), 409, "on_hold", true, 1},
		{"billing blocked", "/api/v1/hub/sort", scan("MYFM01", unpaid), 422, "billing_blocked", true, 1},
		{"misroute", "/api/v1/hub/containers/" + wrongBag + "/items", obj{"waybill": wb2, "operator": "op-1"}, 422, "misroute", true, 1},
		{"container sealed", "/api/v1/hub/containers/" + sealed + "/items", obj{"waybill": wb2, "operator": "op-1"}, 409, "container_sealed", true, 1},
		{"already packed", "/api/v1/hub/containers/" + open + "/items", obj{"waybill": wb, "operator": "op-1"}, 409, "already_packed", true, 1},
		{"sort a packed parcel", "/api/v1/hub/sort", obj{"station": "SGFM01", "waybill": wb, "operator": "op-1", "scanId": "again"}, 409, "already_packed", true, 1},
		{"not sorted", "/api/v1/hub/containers/" + open + "/items", obj{"waybill": unsorted, "operator": "op-1"}, 422, "not_sorted", true, 1},
		{"never taken in", "/api/v1/hub/containers/" + open + "/items", obj{"waybill": "WPSG0000000001", "operator": "op-1"}, 404, "unknown_waybill", false, 0},
		{"unknown container", "/api/v1/hub/containers/BAG-SGFM01-000000000000/items", obj{"waybill": wb, "operator": "op-1"}, 404, "unknown_container", false, 0},
		{"seal empty", "/api/v1/hub/containers/" + open + "/seal", obj{"operator": "op-1"}, 409, "container_empty", true, 0},
		{"handover open bag", "/api/v1/hub/handovers", obj{"station": "SGFM01", "kind": "linehaul", "tripId": "x",
			"sealNumber": "S1", "containers": []string{open}, "operator": "op-1"}, 404, "unknown_trip", false, 0},
		{"bad handover kind", "/api/v1/hub/handovers", obj{"station": "SGFM01", "kind": "drone", "containers": []string{open}, "operator": "op-1"}, 400, "invalid_body", false, 0},
		{"receive sealed", "/api/v1/hub/containers/" + sealed + "/receive", obj{"station": "SGSC01", "operator": "op-1"}, 409, "not_handed_over", true, 0},
		{"unpack sealed", "/api/v1/hub/containers/" + sealed + "/unpack", obj{"operator": "op-1"}, 409, "not_received", true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wos, events := e.counts(t)
			e.refused(t, tc.status, tc.code, tc.path, tc.body)
			wos2, events2 := e.counts(t)
			want := 0
			if tc.recorded {
				want = 1
			}
			require.Equal(t, wos+want, wos2, "work orders")
			require.Equal(t, events+tc.events, events2, "outbox rows")
			// The same refusal again writes nothing more.
			e.refused(t, tc.status, tc.code, tc.path, tc.body)
			wos3, events3 := e.counts(t)
			require.Equal(t, []int{wos2, events2}, []int{wos3, events3})
		})
	}

	t.Run("handover not sealed", func(t *testing.T) {
		e.refused(t, 409, "not_sealed", "/api/v1/hub/handovers", obj{"station": "SGFM01", "kind": "linehaul",
			"tripId": e.trip(t, "SGFM01", "SGSC01"), "sealNumber": "S1", "containers": []string{open}, "operator": "op-1"})
	})
	t.Run("container closed", func(t *testing.T) {
		e.ok(t, http.StatusCreated, "/api/v1/hub/handovers", obj{"station": "SGFM01", "kind": "3pl", "counterparty": "carrier-x",
			"containers": []string{sealed}, "operator": "op-1"})
		e.refused(t, 409, "container_closed", "/api/v1/hub/containers/"+sealed+"/items", obj{"waybill": wb2, "operator": "op-1"})
	})
	t.Run("no rule", func(t *testing.T) {
		require.Equal(t, http.StatusCreated, e.do(t, http.MethodPost, "/sandbox/v1/admin/sort-plans/SGFM02",
			obj{"exceptionChute": "X09", "rules": []obj{{"priority": 1, "destinationStation": "SGLM04", "nextHop": "SGSC01", "chute": "C01"}}}, nil))
		other := e.createWaybill(t, "SGFM02", "SGLM01")
		var out obj
		require.Equal(t, 422, e.do(t, http.MethodPost, "/api/v1/hub/sort", scan("SGFM02", other), &out))
		require.Equal(t, "no_rule", out["error"].(obj)["code"])
		require.Equal(t, "X09", out["chute"])
	})
	t.Run("payload too large", func(t *testing.T) {
		var out obj
		big := `{"station":"` + strings.Repeat("x", 70<<10) + `"}`
		require.Equal(t, http.StatusRequestEntityTooLarge, e.do(t, http.MethodPost, "/api/v1/hub/inbound", big, &out))
	})
	t.Run("unknown parcel view", func(t *testing.T) {
		var out obj
		require.Equal(t, 404, e.do(t, http.MethodGet, "/api/v1/hub/parcels/WPSG0000000009", nil, &out))
	})
	t.Run("refusal in history", func(t *testing.T) {
		var out struct {
			Status  string
			History []struct{ Kind, Result, Reason string }
		}
		require.Equal(t, 200, e.do(t, http.MethodGet, "/api/v1/hub/parcels/"+held, nil, &out))
		require.Equal(t, "not_received", out.Status)
		require.Len(t, out.History, 1)
		require.Equal(t, "refused", out.History[0].Result)
		require.Equal(t, "on_hold", out.History[0].Reason)
		require.Equal(t, []string{"HEX"}, e.outboxCodes(t, held))
	})
	t.Run("released hold goes through", func(t *testing.T) {
		require.Equal(t, http.StatusOK, e.do(t, http.MethodPut, "/sandbox/v1/admin/waybills/"+held+"/hold", obj{"hold": false}, nil))
		e.ok(t, http.StatusOK, "/api/v1/hub/inbound", scan("SGFM01", held))
		require.Equal(t, []string{"HEX", "EMB"}, e.outboxCodes(t, held))
	})
}

// TestDownstreamTimeout: the order centre is slow while billing and
// delivery answer at once that they do not know the waybill; every flow
// answers what the sequential one meets first, the timeout.
func TestDownstreamTimeout(t *testing.T) { eachFlow(t, downstreamTimeout) }

func downstreamTimeout(t *testing.T, flowName string) {
	e := newEnv(t, envOpts{flow: flowName, injection: "order=2s", ds: downstream.Config{CallTimeout: 50_000_000}})
	wos, events := e.counts(t)
	e.refused(t, http.StatusGatewayTimeout, "downstream_timeout", "/api/v1/hub/inbound", scan("SGFM01", "WPSG0000000123"))
	e.refused(t, http.StatusGatewayTimeout, "downstream_timeout", "/api/v1/hub/sort", scan("SGFM01", "WPSG0000000123"))
	wos2, events2 := e.counts(t)
	require.Equal(t, []int{wos, events}, []int{wos2, events2})
}

func TestDownstreamUnavailable(t *testing.T) { eachFlow(t, downstreamUnavailable) }

func downstreamUnavailable(t *testing.T, flowName string) {
	e := newEnv(t, envOpts{flow: flowName, injection: "errors=billing:1"})
	wb := e.createWaybill(t, "SGFM01", "SGLM01")
	e.refused(t, http.StatusServiceUnavailable, "downstream_unavailable", "/api/v1/hub/inbound", scan("SGFM01", wb))
	my := e.createWaybill(t, "MYFM01", "MYLM01")
	e.refused(t, http.StatusServiceUnavailable, "downstream_unavailable", "/api/v1/hub/sort", scan("MYFM01", my))
	require.Empty(t, e.outboxCodes(t, wb))
	require.Empty(t, e.outboxCodes(t, my))
	require.Zero(t, e.workOrders(t, my, ""), "downstream trouble is not recorded")
}

// TestIdempotentScans runs on every engine: a repeated scan answers the
// same and writes nothing, and devices racing on one scan produce one work
// order.
func TestIdempotentScans(t *testing.T) {
	for _, d := range sqltest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			eachFlow(t, func(t *testing.T, flowName string) { idempotentScans(t, d, flowName) })
		})
	}
}

func idempotentScans(t *testing.T, d sqldb.Dialect, flowName string) {
	e := newEnv(t, envOpts{dialect: d, flow: flowName})
	wb := e.createWaybill(t, "SGFM01", "SGLM02")
	first := e.ok(t, http.StatusOK, "/api/v1/hub/inbound", scan("SGFM01", wb))
	again := e.ok(t, http.StatusOK, "/api/v1/hub/inbound", scan("SGFM01", wb))
	require.Equal(t, first, again)
	require.Equal(t, 1, e.workOrders(t, wb, ""))

	race := func(path string, body obj) {
		const devices = 6
		answers := make([]obj, devices)
		var wg sync.WaitGroup
		for i := range devices {
			wg.Go(func() {
				var out obj
				if st := e.do(t, http.MethodPost, path, body, &out); st != http.StatusOK {
					t.Errorf("device %d: %d %v", i, st, out)
				}
				answers[i] = out
			})
		}
		wg.Wait()
		for _, a := range answers[1:] {
			require.Equal(t, answers[0]["workOrderId"], a["workOrderId"])
		}
	}
	race("/api/v1/hub/sort", scan("SGFM01", wb))
	require.Equal(t, 2, e.workOrders(t, wb, ""))
	bag := e.container(t, "SGFM01", "bag", "SGSC01")
	race("/api/v1/hub/containers/"+bag+"/items", obj{"waybill": wb, "operator": "op-1"})
	race("/api/v1/hub/containers/"+bag+"/seal", obj{"operator": "op-1"})
	require.Equal(t, 4, e.workOrders(t, wb, "")+e.workOrders(t, "", bag)-1)
	require.Equal(t, []string{"EMB", "HSR", "HPK", "HSL"}, e.outboxCodes(t, wb))
}
