package hubapi

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// pack sorts nothing: it puts waybill (or a child container) into a new
// container of kind at station bound for dest, seals it and returns its id.
func (e *env) packAndSeal(t *testing.T, station, kind, dest string, item obj) string {
	t.Helper()
	id := e.container(t, station, kind, dest)
	item["operator"] = "op-1"
	e.ok(t, http.StatusOK, "/api/v1/hub/containers/"+id+"/items", item)
	out := e.ok(t, http.StatusOK, "/api/v1/hub/containers/"+id+"/seal", obj{"operator": "op-1"})
	require.Equal(t, "sealed", out["state"])
	return id
}

func (e *env) sortTo(t *testing.T, station, waybill, nextHop string) {
	t.Helper()
	out := e.ok(t, http.StatusOK, "/api/v1/hub/sort", scan(station, waybill))
	require.Equal(t, nextHop, out["nextHop"])
	require.NotEmpty(t, out["chute"])
	require.Equal(t, waybill, out["waybill"])
}

func (e *env) linehaul(t *testing.T, from, to, container string) {
	t.Helper()
	out := e.ok(t, http.StatusCreated, "/api/v1/hub/handovers", obj{"station": from, "kind": "linehaul",
		"tripId": e.trip(t, from, to), "sealNumber": "VS-" + from, "containers": []string{container}, "operator": "op-1"})
	require.NotEmpty(t, out["preAlertId"])
	require.NotEmpty(t, out["id"])
}

func (e *env) receiveAndUnpack(t *testing.T, station string, containers ...string) {
	t.Helper()
	out := e.ok(t, http.StatusOK, "/api/v1/hub/containers/"+containers[0]+"/receive", obj{"station": station, "operator": "op-2"})
	require.Equal(t, "received", out["state"])
	for _, id := range containers {
		out = e.ok(t, http.StatusOK, "/api/v1/hub/containers/"+id+"/unpack", obj{"operator": "op-2"})
		require.Equal(t, "unpacked", out["state"])
	}
}

func (e *env) label(t *testing.T, path, wantType string) {
	t.Helper()
	resp, err := e.http.Client().Get(e.http.URL + path)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Equal(t, wantType, resp.Header.Get("Content-Type"))
	require.NotEmpty(t, body)
}

// TestJourney walks one parcel from a first-mile hub in Singapore across
// the border to a last-mile hub in Malaysia and out for delivery, over real
// gRPC against the sandbox, and checks the tracking events in order, under
// every flow.
func TestJourney(t *testing.T) { eachFlow(t, journey) }

func journey(t *testing.T, flowName string) {
	e := newEnv(t, envOpts{flow: flowName})
	wb := e.createWaybill(t, "SGFM01", "MYLM03")

	// First mile: in, sorted, bagged, sealed, labelled, on the linehaul.
	in := e.ok(t, http.StatusOK, "/api/v1/hub/inbound", scan("SGFM01", wb))
	require.Equal(t, []any{"SGFM01", "SGSC01", "MYSC02", "MYLM03"}, in["route"])
	e.sortTo(t, "SGFM01", wb, "SGSC01")
	bag1 := e.packAndSeal(t, "SGFM01", "bag", "SGSC01", obj{"waybill": wb})
	for format, ctype := range map[string]string{"pdf": "application/pdf", "zpl": "application/zpl; charset=utf-8", "png": "image/png"} {
		e.label(t, "/api/v1/hub/containers/"+bag1+"/label?format="+format, ctype)
		e.label(t, "/api/v1/hub/parcels/"+wb+"/label?format="+format, ctype)
	}
	e.linehaul(t, "SGFM01", "SGSC01", bag1)

	// Sort centre: received, unpacked, sorted, bagged, the bag nested in a
	// cage, across the border.
	e.receiveAndUnpack(t, "SGSC01", bag1)
	e.sortTo(t, "SGSC01", wb, "MYSC02")
	bag2 := e.packAndSeal(t, "SGSC01", "bag", "MYSC02", obj{"waybill": wb})
	cage := e.packAndSeal(t, "SGSC01", "cage", "MYSC02", obj{"container": bag2})
	var view obj
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/api/v1/hub/containers/"+cage, nil, &view))
	require.Equal(t, []any{obj{"kind": "container", "id": bag2}}, view["items"])
	e.linehaul(t, "SGSC01", "MYSC02", cage)

	// Gateway sort centre, then the last-mile hub.
	e.receiveAndUnpack(t, "MYSC02", cage, bag2)
	e.sortTo(t, "MYSC02", wb, "MYLM03")
	bag3 := e.packAndSeal(t, "MYSC02", "bag", "MYLM03", obj{"waybill": wb})
	e.linehaul(t, "MYSC02", "MYLM03", bag3)
	e.receiveAndUnpack(t, "MYLM03", bag3)
	e.sortTo(t, "MYLM03", wb, "MYLM03")
	e.ok(t, http.StatusCreated, "/api/v1/hub/handovers", obj{"station": "MYLM03", "kind": "courier",
		"counterparty": "rider-9", "waybills": []string{wb}, "operator": "op-3"})

	want := []string{
		"EMB", "HSR", "HPK", "HSL", "EMC", // first mile
		"EDD", "HUP", "HSR", "HPK", "HSL", "HPK", "EDE", // SGSC01; the bag's parcel is packed again into the cage
		"EDD", "HUP", "HSR", "HPK", "HSL", "EDE", // MYSC02
		"EMG", "HUP", "HSR", "EDG", // last mile
	}
	require.Equal(t, want, e.outboxCodes(t, wb))
	require.Equal(t, want, e.relay(t, wb), "the order centre's track")

	var parcel struct {
		Waybill, Status string
		History         []struct{ Kind, Station, Operator, Result, Reason, At string }
	}
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/api/v1/hub/parcels/"+wb, nil, &parcel))
	require.Equal(t, "out_for_delivery", parcel.Status)
	require.Len(t, parcel.History, len(want))
	kinds := []string{}
	for _, h := range parcel.History {
		require.Equal(t, "ok", h.Result)
		require.NotEmpty(t, h.At)
		kinds = append(kinds, h.Kind)
	}
	require.Equal(t, []string{"inbound", "sort", "pack", "seal", "handover", "receive", "unpack", "sort", "pack", "seal",
		"pack", "handover", "receive", "unpack", "sort", "pack", "seal", "handover", "receive", "unpack", "sort", "handover"}, kinds)
	require.Equal(t, "SGFM01", parcel.History[0].Station)
	require.Equal(t, "MYLM03", parcel.History[len(want)-1].Station)
}
