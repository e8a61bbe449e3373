package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/waypost/waypost/internal/platform/grpcx"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a running sandbox: its gRPC server on 127.0.0.1, a client
// connection to it and an HTTP test server with its API.
type env struct {
	svc  *Service
	db   *sqldb.DB
	conn *grpc.ClientConn
	http *httptest.Server
}

func newEnv(t testing.TB, db *sqldb.DB, cfg Config) *env {
	t.Helper()
	ctx := context.Background()
	if cfg.WatchPoll == 0 {
		cfg.WatchPoll = 50 * time.Millisecond
	}
	svc, err := New(ctx, db, cfg, nil, prometheus.NewRegistry())
	require.NoError(t, err)

	srv, err := grpcx.Listen("127.0.0.1:0", nil)
	require.NoError(t, err)
	svc.RegisterGRPC(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)

	mux := http.NewServeMux()
	svc.RegisterHTTP(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.Close()
		_ = conn.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(sctx))
		require.NoError(t, <-served)
	})
	return &env{svc: svc, db: db, conn: conn, http: hs}
}

func newSQLiteEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	return newEnv(t, sqltest.New(t, sqldb.SQLite, Migrations()), cfg)
}

// do sends a JSON request and decodes the JSON answer into out.
func (e *env) do(t testing.TB, method, path string, body any, out any) int {
	t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Client().Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}

// createWaybill creates a waybill through the upstream API.
func (e *env) createWaybill(t testing.TB, from, to string, mutate func(map[string]any)) string {
	t.Helper()
	body := validWaybill(from, to)
	if mutate != nil {
		mutate(body)
	}
	var out map[string]any
	require.Equal(t, http.StatusCreated, e.do(t, http.MethodPost, "/sandbox/v1/waybills", body, &out), "%v", out)
	no, _ := out["waybill"].(string)
	require.NotEmpty(t, no)
	return no
}

func validWaybill(from, to string) map[string]any {
	return map[string]any{
		"originStation": from, "destinationStation": to, "type": "standard", "service": "standard",
		"weightGrams": 1200, "codAmount": 0,
		"receiver": map[string]any{"name": "Tan Mei Ling", "phone": "+6591234567", "address": "10 Bedok North Ave 1"},
	}
}

type apiErrBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestCreateWaybillValidation(t *testing.T) {
	e := newSQLiteEnv(t, Config{})
	tests := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"not json", "{", http.StatusBadRequest, "invalid_body"},
		{"unknown origin", with(validWaybill("XXFM99", "SGLM01"), nil), http.StatusBadRequest, "unknown_station"},
		{"unknown destination", with(validWaybill("SGFM01", "SGLM99"), nil), http.StatusBadRequest, "unknown_station"},
		{"origin not first mile", validWaybill("SGSC01", "SGLM01"), http.StatusBadRequest, "invalid_origin"},
		{"destination not last mile", validWaybill("SGFM01", "MYSC01"), http.StatusBadRequest, "invalid_destination"},
		{"zero weight", with(validWaybill("SGFM01", "SGLM01"), map[string]any{"weightGrams": 0}), http.StatusBadRequest, "invalid_weight"},
		{"too heavy", with(validWaybill("SGFM01", "SGLM01"), map[string]any{"weightGrams": 70001}), http.StatusBadRequest, "invalid_weight"},
		{"bad type", with(validWaybill("SGFM01", "SGLM01"), map[string]any{"type": "liquid"}), http.StatusBadRequest, "invalid_type"},
		{"bad service", with(validWaybill("SGFM01", "SGLM01"), map[string]any{"service": "warp"}), http.StatusBadRequest, "invalid_service"},
		{"negative cod", with(validWaybill("SGFM01", "SGLM01"), map[string]any{"codAmount": -1}), http.StatusBadRequest, "invalid_cod_amount"},
		{"no receiver", with(validWaybill("SGFM01", "SGLM01"), map[string]any{"receiver": map[string]any{}}), http.StatusBadRequest, "invalid_receiver"},
		{"huge body", `{"originStation":"` + strings.Repeat("x", maxBody) + `"}`, http.StatusRequestEntityTooLarge, "payload_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out apiErrBody
			require.Equal(t, tt.status, e.do(t, http.MethodPost, "/sandbox/v1/waybills", tt.body, &out))
			require.Equal(t, tt.code, out.Error.Code)
			require.NotEmpty(t, out.Error.Message)
		})
	}
	// Nothing half-written: no refused request left a waybill behind.
	var n int
	require.NoError(t, e.db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM sandbox_waybills").Scan(&n))
	require.Zero(t, n)
}

func with(m map[string]any, set map[string]any) map[string]any {
	for k, v := range set {
		m[k] = v
	}
	return m
}

func TestWaybillHTTP(t *testing.T) {
	e := newSQLiteEnv(t, Config{})
	no := e.createWaybill(t, "MYFM01", "MYLM04", func(m map[string]any) { m["codAmount"] = 4500; m["type"] = "" })
	require.True(t, strings.HasPrefix(no, "WPMY"), no)

	var wb Waybill
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/sandbox/v1/waybills/"+no, nil, &wb))
	require.Equal(t, "MY", wb.Market)
	require.Equal(t, "MYR", wb.Currency)
	require.Equal(t, "standard", wb.Type, "type defaults to standard")
	require.Equal(t, int64(4500), wb.CODAmount)
	require.Equal(t, StatusCreated, wb.Status)
	require.Empty(t, wb.Track)

	var nf apiErrBody
	require.Equal(t, http.StatusNotFound, e.do(t, http.MethodGet, "/sandbox/v1/waybills/WPSG0", nil, &nf))
	require.Equal(t, "unknown_waybill", nf.Error.Code)

	// Admin switches.
	require.Equal(t, http.StatusOK, e.do(t, http.MethodPut, "/sandbox/v1/admin/waybills/"+no+"/billing", map[string]any{"blocked": true}, &wb))
	require.Equal(t, "billing_blocked", wb.BillingBlock)
	require.Equal(t, http.StatusOK, e.do(t, http.MethodPut, "/sandbox/v1/admin/waybills/"+no+"/hold", map[string]any{"hold": true, "reason": "customs_check"}, &wb))
	require.Equal(t, StatusOnHold, wb.Status)
	require.Equal(t, "customs_check", wb.StatusReason)
	require.Equal(t, http.StatusOK, e.do(t, http.MethodPut, "/sandbox/v1/admin/waybills/"+no+"/hold", map[string]any{"hold": false}, &wb))
	require.Equal(t, StatusCreated, wb.Status)
	require.Equal(t, http.StatusOK, e.do(t, http.MethodPut, "/sandbox/v1/admin/waybills/"+no+"/delivery-status", map[string]any{"status": "cancelled", "reason": "sender_request"}, &wb))
	require.Equal(t, StatusCancelled, wb.Status)
	require.Equal(t, http.StatusBadRequest, e.do(t, http.MethodPut, "/sandbox/v1/admin/waybills/"+no+"/delivery-status", map[string]any{"status": "lost"}, &nf))
	require.Equal(t, "invalid_status", nf.Error.Code)
	require.Equal(t, http.StatusNotFound, e.do(t, http.MethodPut, "/sandbox/v1/admin/waybills/WPSG0/billing", map[string]any{"blocked": true}, &nf))
	require.Equal(t, "unknown_waybill", nf.Error.Code)
}

func TestStationsHTTP(t *testing.T) {
	e := newSQLiteEnv(t, Config{})
	var out struct {
		Stations []stationJSON `json:"stations"`
	}
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/sandbox/v1/stations", nil, &out))
	require.Len(t, out.Stations, 20)
	require.Equal(t, stationJSON{Code: "MYFM01", Name: "Shah Alam First-Mile Hub", Kind: KindFirstMile, Market: "MY",
		City: "Shah Alam", TimeZone: "Asia/Kuala_Lumpur", Active: true, ExceptionChute: "X01"}, out.Stations[0])
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/sandbox/v1/stations?market=SG&kind=last_mile", nil, &out))
	require.Len(t, out.Stations, 4)

	var route struct {
		Stations []string `json:"stations"`
	}
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/sandbox/v1/routes?origin=SGFM01&destination=MYLM03", nil, &route))
	require.Equal(t, []string{"SGFM01", "SGSC01", "MYSC02", "MYLM03"}, route.Stations)

	// An inactive first-mile hub takes no new waybills.
	var st stationJSON
	require.Equal(t, http.StatusOK, e.do(t, http.MethodPut, "/sandbox/v1/admin/stations/SGFM03", map[string]any{"active": false}, &st))
	require.False(t, st.Active)
	var refused apiErrBody
	require.Equal(t, http.StatusBadRequest, e.do(t, http.MethodPost, "/sandbox/v1/waybills", validWaybill("SGFM03", "SGLM01"), &refused))
	require.Equal(t, "station_inactive", refused.Error.Code)

	var plan SortPlan
	require.Equal(t, http.StatusCreated, e.do(t, http.MethodPost, "/sandbox/v1/admin/sort-plans/SGSC01",
		map[string]any{"exceptionChute": "X09", "rules": []SortRule{{Priority: 1, NextHop: "SGLM01", Chute: "C99"}}}, &plan))
	require.Equal(t, int64(2), plan.Version)
	require.Equal(t, http.StatusBadRequest, e.do(t, http.MethodPost, "/sandbox/v1/admin/sort-plans/SGSC01",
		map[string]any{"rules": []SortRule{{NextHop: "NOPE", Chute: "C1"}}}, &refused))
	require.Equal(t, "invalid_rules", refused.Error.Code)
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/sandbox/v1/sort-plans/SGSC01", nil, &plan))
	require.Equal(t, "X09", plan.ExceptionChute)
}
