package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestReadyz(t *testing.T) {
	h := NewHealth(map[string]Check{
		"sql": func(context.Context) error { return nil },
		"kv":  func(context.Context) error { return errors.New("dial tcp 127.0.0.1:6379: connection refused") },
		"queue": func(ctx context.Context) error {
			<-ctx.Done() // a hung dependency must not hang /readyz
			return ctx.Err()
		},
	}, 50*time.Millisecond)
	mux := http.NewServeMux()
	h.Register(mux)

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	var body readiness
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Equal(t, []string{"kv", "queue"}, body.Failing)
	require.Equal(t, "ok", body.Checks["sql"])
	require.Contains(t, body.Checks["kv"], "connection refused")
	require.Contains(t, body.Checks["queue"], "deadline exceeded")

	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	require.Equal(t, http.StatusOK, rec.Code)
}

func TestReadyzDraining(t *testing.T) {
	h := NewHealth(map[string]Check{"sql": func(context.Context) error { return nil }}, time.Second)
	mux := http.NewServeMux()
	h.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	h.SetDraining()
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Contains(t, rec.Body.String(), `"draining":true`)
}

func TestMiddleware(t *testing.T) {
	reg := prometheus.NewRegistry()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("bad") })
	mux.HandleFunc("POST /echo/{id}", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if IsTooLarge(err) {
			WriteError(w, http.StatusRequestEntityTooLarge, "payload_too_large", err.Error())
			return
		}
		_, _ = w.Write(b)
	})
	logger := slog.New(slog.DiscardHandler)
	h := Chain(mux, Observe(logger, reg), Recover(logger), LimitBody(8))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	require.Equal(t, 500, rec.Code)
	require.JSONEq(t, `{"error":{"code":"internal","message":"internal error"}}`, rec.Body.String())

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/echo/1", strings.NewReader("short")))
	require.Equal(t, 200, rec.Code)
	require.Equal(t, "short", rec.Body.String())

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/echo/2", strings.NewReader("far too long")))
	require.Equal(t, 413, rec.Code)
	require.Contains(t, rec.Body.String(), `"code":"payload_too_large"`)

	// A body without Content-Length is cut while reading.
	req := httptest.NewRequest("POST", "/echo/3", io.NopCloser(strings.NewReader("far too long")))
	req.ContentLength = -1
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, 413, rec.Code)

	require.Equal(t, 1.0, counterValue(t, reg, "POST /echo/{id}", "200"))
	require.Equal(t, 1.0, counterValue(t, reg, "GET /boom", "500"))
}

func counterValue(t *testing.T, reg *prometheus.Registry, route, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "waypost_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no waypost_http_requests_total{route=%q,code=%q}", route, code)
	return 0
}

func TestServerDrainsInFlight(t *testing.T) {
	started := make(chan struct{})
	srv, err := Listen(ServerConfig{Addr: "127.0.0.1:0", ReadHeaderTimeout: time.Second},
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			close(started)
			time.Sleep(100 * time.Millisecond) // the in-flight work being drained
			_, _ = io.WriteString(w, "done")
		}), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + srv.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-started
	require.NoError(t, srv.Shutdown(context.Background()))
	require.Equal(t, "done", <-got, "the in-flight request completes")
	require.NoError(t, <-served)
	_, err = http.Get("http://" + srv.Addr().String() + "/")
	require.Error(t, err, "no intake after shutdown")
}

func TestWrapKeepsEachRoutePattern(t *testing.T) {
	reg := prometheus.NewRegistry()
	mux := http.NewServeMux()
	deny := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Ok") == "" {
				WriteError(w, http.StatusUnauthorized, "unauthorized", "no")
				return
			}
			next.ServeHTTP(w, r.WithContext(r.Context()))
		})
	}
	var r Router = Wrap(mux, deny)
	r.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.PathValue("id"))
	})
	h := Chain(mux, Observe(slog.New(slog.DiscardHandler), reg))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/things/7", nil))
	require.Equal(t, http.StatusUnauthorized, rec.Code, "the middleware guards the route")

	req := httptest.NewRequest("GET", "/things/7", nil)
	req.Header.Set("X-Ok", "1")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, "7", rec.Body.String())
	require.Equal(t, 1.0, counterValue(t, reg, "GET /things/{id}", "200"), "metrics see the route's own pattern")
	require.Equal(t, 1.0, counterValue(t, reg, "GET /things/{id}", "401"))
}

func TestPprofServesProfiles(t *testing.T) {
	srv := httptest.NewServer(Pprof())
	defer srv.Close()
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/goroutine?debug=1": "goroutine profile:",
		"/debug/pprof/cmdline":           "",
	} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Contains(t, string(body), want, path)
	}
	resp, err := http.Get(srv.URL + "/api/v1/send")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "only profiles are served")
}
