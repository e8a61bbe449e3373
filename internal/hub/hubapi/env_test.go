package hubapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/waypost/waypost/internal/hub/downstream"
	"github.com/waypost/waypost/internal/hub/flow"
	"github.com/waypost/waypost/internal/hub/sandbox"
	"github.com/waypost/waypost/internal/hub/store"
	"github.com/waypost/waypost/internal/platform/dynconf"
	"github.com/waypost/waypost/internal/platform/grpcx"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	linehaulv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/linehaul/v1"
	orderv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/order/v1"
	asmv1 "github.com/waypost/waypost/proto/gen/go/waypost/hub/asm/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is the hub wired as in `up`: the sandbox's five services and the
// sorter on one gRPC server, the hub reaching the sandbox over real gRPC,
// and both HTTP APIs on one test server.
type env struct {
	api    *API
	st     *store.Store
	http   *httptest.Server
	conn   *grpc.ClientConn
	sorter asmv1.SorterServiceClient
}

type envOpts struct {
	dialect   sqldb.Dialect
	injection string
	ds        downstream.Config
	// flow is the flow every market's sorts run (flow.FlowDAG or
	// flow.FlowSequential); "" keeps the embedded default.
	flow string
	// tracking is what push_tracking wakes.
	tracking flow.Waker
	// settings registers hub.flows in a live-settings registry and serves
	// the settings API, as `up` does.
	settings bool
	// watch follows basic data's change stream, as `up` does: sort plans
	// are cached while it runs.
	watch bool
	// dsReg, when set, is where the downstream client's metrics go.
	dsReg prometheus.Registerer
}

// flows are the flows the suites run under: each must answer the same.
var flows = []string{flow.FlowSequential, flow.FlowDAG}

// eachFlow runs test once per flow, as subtests named after the flow.
func eachFlow(t *testing.T, test func(t *testing.T, flowName string)) {
	for _, f := range flows {
		t.Run(f, func(t *testing.T) { test(t, f) })
	}
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	if o.dialect == "" {
		o.dialect = sqldb.SQLite
	}
	inj, err := sandbox.ParseInjection(o.injection)
	require.NoError(t, err)
	sbDB := sqltest.New(t, sqldb.SQLite, sandbox.Migrations())
	sb, err := sandbox.New(ctx, sbDB, sandbox.Config{Injection: inj, WatchPoll: 50 * time.Millisecond}, nil, prometheus.NewRegistry())
	require.NoError(t, err)

	srv, err := grpcx.Listen("127.0.0.1:0", nil)
	require.NoError(t, err)
	ds, err := downstream.Dial(ctx, srv.Addr().String(), o.ds, downstream.WithRegisterer(o.dsReg))
	require.NoError(t, err)
	hubDB := sqltest.New(t, o.dialect, store.Migrations())
	api, err := New(hubDB, ds, Config{Flow: flow.Config{Tracking: o.tracking}}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	if o.flow != "" {
		s := flow.DefaultSettings()
		s.Use = map[string]string{"*": o.flow}
		require.NoError(t, api.Flows().Apply(s, 1))
	}
	sb.RegisterGRPC(srv)
	api.RegisterGRPC(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)

	mux := http.NewServeMux()
	sb.RegisterHTTP(mux)
	api.RegisterHTTP(mux)
	if o.settings {
		reg, err := dynconf.NewRegistry(dynconf.NewStore(sqltest.New(t, sqldb.SQLite, sqldb.PlatformMigrations()), nil),
			dynconf.Config{}, nil, nil)
		require.NoError(t, err)
		flow.Register(reg, api.Flows())
		dynconf.NewAPI(reg, nil).RegisterHTTP(mux)
	}
	hs := httptest.NewServer(mux)
	stopWatch, watched := func() {}, make(chan error, 1)
	if o.watch {
		wctx, cancel := context.WithCancel(context.Background())
		stopWatch = cancel
		go func() { watched <- ds.Watch(wctx) }()
	} else {
		watched <- nil
	}
	t.Cleanup(func() {
		hs.Close()
		stopWatch()
		require.NoError(t, <-watched)
		_ = conn.Close()
		_ = ds.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(sctx))
		require.NoError(t, <-served)
	})
	return &env{api: api, st: api.Ops().Store(), http: hs, conn: conn, sorter: asmv1.NewSorterServiceClient(conn)}
}

// do sends body as JSON (a string is sent as is) and decodes the answer
// into out; it returns the status.
func (e *env) do(t testing.TB, method, path string, body any, out any) int {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		var err error
		raw, err = json.Marshal(b)
		require.NoError(t, err)
	}
	req, err := http.NewRequest(method, e.http.URL+path, bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Client().Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(data, out), "%s", data)
	}
	return resp.StatusCode
}

type obj = map[string]any

func (e *env) createWaybill(t testing.TB, from, to string) string {
	t.Helper()
	var out obj
	require.Equal(t, http.StatusCreated, e.do(t, http.MethodPost, "/sandbox/v1/waybills", obj{
		"originStation": from, "destinationStation": to, "type": "standard", "service": "standard",
		"weightGrams": 1200, "receiver": obj{"name": "Nguyễn Thị Lan", "phone": "+6591234567", "address": "10 Jalan Skudai"},
	}, &out), "%v", out)
	return out["waybill"].(string)
}

func scan(station, waybill string) obj {
	return obj{"station": station, "waybill": waybill, "operator": "op-1", "device": "pda-1"}
}

// ok posts body and requires the wanted status, returning the answer.
func (e *env) ok(t testing.TB, want int, path string, body any) obj {
	t.Helper()
	var out obj
	require.Equal(t, want, e.do(t, http.MethodPost, path, body, &out), "%s: %v", path, out)
	return out
}

// refused posts body and requires the refusal code and status.
func (e *env) refused(t testing.TB, status int, code, path string, body any) {
	t.Helper()
	var out struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	got := e.do(t, http.MethodPost, path, body, &out)
	require.Equal(t, code, out.Error.Code, "%s: %s", path, out.Error.Message)
	require.Equal(t, status, got)
}

func (e *env) container(t testing.TB, station, kind, dest string) string {
	t.Helper()
	out := e.ok(t, http.StatusCreated, "/api/v1/hub/containers", obj{"station": station, "kind": kind, "destination": dest})
	require.Equal(t, "open", out["state"])
	return out["id"].(string)
}

// trip returns the first linehaul trip between two stations.
func (e *env) trip(t testing.TB, from, to string) string {
	t.Helper()
	resp, err := linehaulv1.NewLinehaulServiceClient(e.conn).ListTrips(context.Background(),
		&linehaulv1.ListTripsRequest{OriginStation: from, DestinationStation: to})
	require.NoError(t, err)
	require.NotEmpty(t, resp.GetTrips())
	return resp.GetTrips()[0].GetTripId()
}

// relay hands the unpublished outbox rows to the order centre, as the
// tracking relay does, and returns the order centre's track codes.
func (e *env) relay(t testing.TB, waybill string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := e.st.Outbox(ctx, waybill)
	require.NoError(t, err)
	oc := orderv1.NewOrderServiceClient(e.conn)
	req := &orderv1.AppendTrackRequest{}
	for _, r := range rows {
		ev := r.Event
		req.Events = append(req.Events, &orderv1.TrackEvent{EventId: ev.EventID, WaybillNo: ev.Waybill, EventCode: ev.Code,
			Station: ev.Station, EventTime: timestamp(ev.At), Operator: ev.Operator, ReasonCode: ev.Reason,
			Description: ev.Description})
	}
	_, err = oc.AppendTrack(ctx, req)
	require.NoError(t, err)
	wb, err := oc.GetWaybill(ctx, &orderv1.GetWaybillRequest{WaybillNo: waybill, IncludeTrack: true})
	require.NoError(t, err)
	var codes []string
	for _, ev := range wb.GetWaybill().GetTrack() {
		codes = append(codes, ev.GetEventCode())
	}
	return codes
}

func (e *env) outboxCodes(t testing.TB, waybill string) []string {
	t.Helper()
	rows, err := e.st.Outbox(context.Background(), waybill)
	require.NoError(t, err)
	var codes []string
	for _, r := range rows {
		codes = append(codes, r.Event.Code)
	}
	return codes
}

func (e *env) workOrders(t testing.TB, waybill, container string) int {
	t.Helper()
	n, err := e.st.CountWorkOrders(context.Background(), waybill, container)
	require.NoError(t, err)
	return n
}

func timestamp(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
