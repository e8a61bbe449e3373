package downstream

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/sandbox"
	"github.com/waypost/waypost/internal/platform/grpcx"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTranslate(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		err  error
		code string
	}{
		{status.Error(codes.DeadlineExceeded, "slow"), hub.CodeDownstreamTimeout},
		{status.Error(codes.Unavailable, "down"), hub.CodeDownstreamUnavailable},
		{status.Error(codes.NotFound, "no such"), hub.CodeUnknownWaybill},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			r, ok := hub.AsRefusal(translate(ctx, "order centre", hub.CodeUnknownWaybill, tc.err))
			require.True(t, ok)
			require.Equal(t, tc.code, r.Code)
		})
	}
	_, ok := hub.AsRefusal(translate(ctx, "order centre", "", status.Error(codes.Internal, "bug")))
	require.False(t, ok, "an internal error is not the caller's refusal")
}

// newClient starts the sandbox with injection on a real gRPC server and
// returns a client to it.
func newClient(t *testing.T, injection string, cfg Config) *GRPC {
	t.Helper()
	c, _ := newSandbox(t, injection, cfg)
	return c
}

// newSandbox is newClient that also serves the sandbox's HTTP API (its
// admin endpoints change basic data) and returns its base URL.
func newSandbox(t *testing.T, injection string, cfg Config, opts ...Option) (*GRPC, string) {
	t.Helper()
	inj, err := sandbox.ParseInjection(injection)
	require.NoError(t, err)
	db := sqltest.New(t, sqldb.SQLite, sandbox.Migrations())
	sb, err := sandbox.New(context.Background(), db, sandbox.Config{Injection: inj}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	srv, err := grpcx.Listen("127.0.0.1:0", nil)
	require.NoError(t, err)
	sb.RegisterGRPC(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	mux := http.NewServeMux()
	sb.RegisterHTTP(mux)
	hs := httptest.NewServer(mux)
	c, err := Dial(context.Background(), srv.Addr().String(), cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		hs.Close()
		_ = c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.NoError(t, <-served)
	})
	return c, hs.URL
}

func TestGRPCClient(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	c := newClient(t, "none", Config{Now: func() time.Time { return now }})

	st, err := c.Station(ctx, "SGSC01")
	require.NoError(t, err)
	require.Equal(t, hub.StationSortCentre, st.Kind)
	require.Equal(t, "X01", st.ExceptionChute)
	_, err = c.Station(ctx, "ZZ99")
	r, ok := hub.AsRefusal(err)
	require.True(t, ok)
	require.Equal(t, hub.CodeUnknownStation, r.Code)

	route, err := c.Route(ctx, "SGFM02", "MYLM01")
	require.NoError(t, err)
	require.Equal(t, []string{"SGFM02", "SGSC01", "MYSC02", "MYSC01", "MYLM01"}, route)
	plan, err := c.SortPlan(ctx, "SGFM01")
	require.NoError(t, err)
	require.Equal(t, int64(1), plan.Version)
	require.NotEmpty(t, plan.Rules)
	_, err = c.Waybill(ctx, "WPSG0000000000")
	r, ok = hub.AsRefusal(err)
	require.True(t, ok)
	require.Equal(t, hub.CodeUnknownWaybill, r.Code)
	_, err = c.Trip(ctx, "LH-nope")
	r, ok = hub.AsRefusal(err)
	require.True(t, ok)
	require.Equal(t, hub.CodeUnknownTrip, r.Code)
}

func TestDeadlines(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "basicdata=2s", Config{CallTimeout: 30 * time.Millisecond})
	_, err := c.Station(ctx, "SGSC01")
	r, ok := hub.AsRefusal(err)
	require.True(t, ok)
	require.Equal(t, hub.CodeDownstreamTimeout, r.Code)

	// The caller's earlier deadline wins over the per-call timeout.
	slow := newClient(t, "basicdata=2s", Config{CallTimeout: time.Minute})
	cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	_, err = slow.Route(cctx, "SGFM01", "SGLM01")
	r, ok = hub.AsRefusal(err)
	require.True(t, ok)
	require.Equal(t, hub.CodeDownstreamTimeout, r.Code)
}

func TestUnavailable(t *testing.T) {
	c := newClient(t, "errors=billing:1", Config{})
	_, err := c.CheckBilling(context.Background(), "WPSG0000000001", "SGFM01", hub.OpInbound)
	r, ok := hub.AsRefusal(err)
	require.True(t, ok)
	require.Equal(t, hub.CodeDownstreamUnavailable, r.Code)
}

func TestRouteCache(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	base := newClient(t, "none", Config{})
	var calls atomic.Int64
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/GetRoute") {
			calls.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	conn, err := grpc.NewClient(base.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(count))
	require.NoError(t, err)
	c, err := New(conn, Config{StationTTL: time.Minute, Now: func() time.Time { return now }})
	require.NoError(t, err)
	defer func() { _ = c.Close() }()

	want := []string{"SGFM01", "SGSC01", "SGLM01"}
	for range 3 {
		got, err := c.Route(ctx, "SGFM01", "SGLM01")
		require.NoError(t, err)
		require.Equal(t, want, got)
		got[0] = "changed by the caller"
	}
	require.Equal(t, int64(1), calls.Load(), "a route is reused within the TTL")

	now = now.Add(time.Minute)
	_, err = c.Route(ctx, "SGFM01", "SGLM01")
	require.NoError(t, err)
	require.Equal(t, int64(2), calls.Load(), "an expired route is asked again")

	_, err = c.Route(ctx, "SGFM01", "ZZ99")
	require.Error(t, err)
	_, err = c.Route(ctx, "SGFM01", "ZZ99")
	require.Error(t, err)
	require.Equal(t, int64(4), calls.Load(), "a failed lookup is not cached")
}

// TestBatchCallsAnswerAsSingleCalls asks the sandbox for waybills, billing
// verdicts and delivery statuses in one batch call and in one single call
// each: every answer, and every refusal, is the same.
func TestBatchCallsAnswerAsSingleCalls(t *testing.T) {
	ctx := context.Background()
	c, base := newSandbox(t, "none", Config{})
	blocked := createWaybill(t, base, "MYFM01", "MYLM01")
	put(t, base+"/sandbox/v1/admin/waybills/"+blocked+"/billing", `{"blocked":true,"reasonCode":"unpaid_shipping_fee"}`)
	put(t, base+"/sandbox/v1/admin/waybills/"+blocked+"/delivery-status", `{"status":"on_hold","reason":"customs"}`)
	nos := []string{createWaybill(t, base, "SGFM01", "SGLM01"), "WPSG0000000000", blocked}

	waybills, err := c.fetchWaybills(ctx, nos)
	require.NoError(t, err)
	statuses, err := c.fetchStatuses(ctx, nos)
	require.NoError(t, err)
	keys := make([]billingKey, len(nos))
	for i, no := range nos {
		keys[i] = billingKey{no, "SGFM01", hub.OpInbound}
	}
	verdicts, err := c.fetchBillings(ctx, keys)
	require.NoError(t, err)
	for i, no := range nos {
		w, err := c.fetchWaybill(ctx, no)
		require.Equal(t, batchResult[hub.Waybill]{w, err}, waybills[i], no)
		st, err := c.fetchStatus(ctx, no)
		require.Equal(t, batchResult[hub.DeliveryStatus]{st, err}, statuses[i], no)
		v, err := c.fetchBilling(ctx, keys[i])
		require.Equal(t, batchResult[hub.BillingVerdict]{v, err}, verdicts[i], no)
	}
	require.Equal(t, nos[0], waybills[0].val.No)
	r, ok := hub.AsRefusal(waybills[1].err)
	require.True(t, ok)
	require.Equal(t, hub.CodeUnknownWaybill, r.Code)
	require.Equal(t, hub.BillingVerdict{ReasonCode: "unpaid_shipping_fee", Message: "billing blocks waybill " + blocked}, verdicts[2].val)
	require.Equal(t, hub.DeliveryStatus{Status: hub.DeliveryOnHold, Reason: "customs"}, statuses[2].val)

	// A failing downstream fails the batch as it fails a single call.
	down, _ := newSandbox(t, "errors=*:1", Config{})
	_, oneErr := down.fetchWaybill(ctx, nos[0])
	_, batchErr := down.fetchWaybills(ctx, nos)
	r, ok = hub.AsRefusal(batchErr)
	require.True(t, ok, "%v", batchErr)
	require.Equal(t, hub.CodeDownstreamUnavailable, r.Code)
	require.Equal(t, oneErr, batchErr)
	_, oneErr = down.fetchBilling(ctx, keys[0])
	_, batchErr = down.fetchBillings(ctx, keys)
	require.Equal(t, oneErr, batchErr)
	_, oneErr = down.fetchStatus(ctx, nos[0])
	_, batchErr = down.fetchStatuses(ctx, nos)
	require.Equal(t, oneErr, batchErr)
}

func put(t *testing.T, url, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, url)
}

// TestConcurrentWaybillLookups looks up many waybills at once, more than
// one call can carry: each gets its own waybill, the unknown one its
// refusal, and calls were shared.
func TestConcurrentWaybillLookups(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, base := newSandbox(t, "order=2ms", Config{BatchMax: 4, BatchWait: time.Second}, WithRegisterer(reg))
	nos := []string{"WPSG0000000000"}
	for range 12 {
		nos = append(nos, createWaybill(t, base, "SGFM01", "SGLM01"))
	}
	type res struct {
		no  string
		got hub.Waybill
		err error
	}
	out := make(chan res, len(nos)*2)
	for range 2 {
		for _, no := range nos {
			go func() {
				w, err := c.Waybill(context.Background(), no)
				out <- res{no, w, err}
			}()
		}
	}
	for range len(nos) * 2 {
		r := <-out
		if r.no == nos[0] {
			ref, ok := hub.AsRefusal(r.err)
			require.True(t, ok, "%v", r.err)
			require.Equal(t, hub.CodeUnknownWaybill, ref.Code)
			continue
		}
		require.NoError(t, r.err)
		require.Equal(t, r.no, r.got.No)
	}
	calls := counter(t, reg, "waypost_hub_downstream_batch_calls_total", kindWaybill)
	lookups := counter(t, reg, "waypost_hub_downstream_batch_lookups_total", kindWaybill)
	require.Equal(t, float64(len(nos)*2), lookups)
	require.Less(t, calls, lookups, "lookups shared calls")
}

// createWaybill creates a waybill in the sandbox over its HTTP API.
func createWaybill(t *testing.T, base, from, to string) string {
	t.Helper()
	body := `{"originStation":"` + from + `","destinationStation":"` + to +
		`","type":"standard","service":"standard","weightGrams":1000,"receiver":{"name":"A","phone":"+6590000000","address":"1 Road"}}`
	resp, err := http.Post(base+"/sandbox/v1/waybills", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var out struct{ Waybill string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.NotEmpty(t, out.Waybill)
	return out.Waybill
}
