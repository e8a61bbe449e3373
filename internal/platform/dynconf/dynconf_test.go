package dynconf_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/dynconf"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
)

type limits struct {
	Num    int            `json:"num"`
	Window int            `json:"window"`
	Per    map[string]int `json:"per,omitempty"`
}

func validLimits(l limits) error {
	if l.Num < 1 {
		return errors.New("num must be positive")
	}
	return nil
}

func newRegistry(t *testing.T, db *sqldb.DB) (*dynconf.Registry, *dynconf.Setting[limits]) {
	t.Helper()
	r, err := dynconf.NewRegistry(dynconf.NewStore(db, nil), dynconf.Config{Interval: 10 * time.Millisecond}, nil, nil)
	require.NoError(t, err)
	s := dynconf.Register(r, "limits", limits{Num: 1, Window: 300, Per: map[string]int{"a": 1}}, validLimits)
	return r, s
}

func TestStore(t *testing.T) {
	sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		st := dynconf.NewStore(db, nil)
		_, err := st.Get(ctx, "x")
		require.ErrorIs(t, err, dynconf.ErrNotFound)

		e, err := st.Put(ctx, "x", json.RawMessage(`{"a":1}`), "app/key", 0)
		require.NoError(t, err)
		require.Equal(t, int64(1), e.Version)
		require.JSONEq(t, `{"a":1}`, string(e.Value))
		require.Equal(t, "app/key", e.UpdatedBy)

		e, err = st.Put(ctx, "x", json.RawMessage(`{"a":2}`), "", 1)
		require.NoError(t, err)
		require.Equal(t, int64(2), e.Version)

		_, err = st.Put(ctx, "x", json.RawMessage(`{"a":3}`), "", 1)
		require.ErrorIs(t, err, dynconf.ErrConflict, "a stale If-Match must not overwrite")
		_, err = st.Put(ctx, "y", json.RawMessage(`{"a":3}`), "", 4)
		require.ErrorIs(t, err, dynconf.ErrConflict, "a missing row is version 0")
		_, err = st.Put(ctx, "x", json.RawMessage(`{not json`), "", 0)
		require.ErrorIs(t, err, dynconf.ErrInvalid)

		got, err := st.Get(ctx, "x")
		require.NoError(t, err)
		require.JSONEq(t, `{"a":2}`, string(got.Value))
		v, err := st.Versions(ctx)
		require.NoError(t, err)
		require.Equal(t, map[string]int64{"x": 2}, v)
	}, sqldb.PlatformMigrations())
}

func TestRegistryAppliesOnEveryInstance(t *testing.T) {
	db := sqltest.New(t, sqldb.SQLite, sqldb.PlatformMigrations())
	ctx := context.Background()
	r1, s1 := newRegistry(t, db)
	r2, s2 := newRegistry(t, db)

	require.Equal(t, limits{Num: 1, Window: 300, Per: map[string]int{"a": 1}}, s1.Get(), "the default until one is stored")
	require.Zero(t, s1.Version())

	var seen atomic.Int64
	s2.OnChange(func(l limits) { seen.Store(int64(l.Num)) })

	e, err := r1.Update(ctx, "limits", json.RawMessage(`{"num":4}`), "ops", 0)
	require.NoError(t, err)
	require.Equal(t, int64(1), e.Version)
	require.Equal(t, 4, s1.Get().Num, "applied on the writing instance at once")
	require.Equal(t, 300, s1.Get().Window, "an omitted field keeps its default")

	require.Equal(t, 1, s2.Get().Num, "the other instance until it polls")
	require.NoError(t, r2.Refresh(ctx))
	require.Equal(t, 4, s2.Get().Num)
	require.Equal(t, int64(1), s2.Version())
	require.Equal(t, int64(4), seen.Load(), "watchers hear of the change")

	// A bad value is refused with a precise message and the old one serves.
	_, err = r1.Update(ctx, "limits", json.RawMessage(`{"num":0}`), "ops", 0)
	require.ErrorIs(t, err, dynconf.ErrInvalid)
	require.ErrorContains(t, err, "num must be positive")
	_, err = r1.Update(ctx, "limits", json.RawMessage(`{"nmu":3}`), "ops", 0)
	require.ErrorIs(t, err, dynconf.ErrInvalid, "unknown fields are refused")
	require.ErrorContains(t, err, "nmu")
	_, err = r1.Update(ctx, "nope", json.RawMessage(`{}`), "ops", 0)
	require.ErrorIs(t, err, dynconf.ErrUnknownSetting)
	require.Equal(t, 4, s1.Get().Num)

	// A stored value that no longer validates keeps the current one.
	_, err = dynconf.NewStore(db, nil).Put(ctx, "limits", json.RawMessage(`{"num":-1}`), "by hand", 0)
	require.NoError(t, err)
	require.NoError(t, r2.Refresh(ctx))
	require.Equal(t, 4, s2.Get().Num)

	// Run polls on its own.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r2.Run(runCtx) }()
	_, err = r1.Update(ctx, "limits", json.RawMessage(`{"num":7}`), "ops", 0)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s2.Get().Num == 7 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

func TestDefaultNotShared(t *testing.T) {
	db := sqltest.New(t, sqldb.SQLite, sqldb.PlatformMigrations())
	r, s := newRegistry(t, db)
	_, err := r.Update(context.Background(), "limits", json.RawMessage(`{"num":2,"per":{"b":2}}`), "", 0)
	require.NoError(t, err)
	v, err := r.View("limits")
	require.NoError(t, err)
	require.Equal(t, limits{Num: 1, Window: 300, Per: map[string]int{"a": 1}}, v.Default, "decoding never writes into the default")
	require.Equal(t, map[string]int{"a": 1, "b": 2}, s.Get().Per, "maps merge over the default like encoding/json does")
}

func TestAPI(t *testing.T) {
	db := sqltest.New(t, sqldb.SQLite, sqldb.PlatformMigrations())
	r, s := newRegistry(t, db)
	mux := http.NewServeMux()
	dynconf.NewAPI(r, nil).RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	do := func(method, path, body string, hdr ...string) (int, map[string]any) {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return resp.StatusCode, out
	}
	code := func(out map[string]any) string { return out["error"].(map[string]any)["code"].(string) }

	st, out := do("GET", "/api/v1/settings", "")
	require.Equal(t, http.StatusOK, st)
	require.Len(t, out["settings"], 1)

	st, out = do("PUT", "/api/v1/settings/limits", `{"num":3}`)
	require.Equal(t, http.StatusOK, st)
	require.EqualValues(t, 1, out["version"])
	require.Equal(t, 3, s.Get().Num)

	st, out = do("PUT", "/api/v1/settings/limits", `{"num":5}`, "If-Match", "9")
	require.Equal(t, http.StatusConflict, st)
	require.Equal(t, "version_conflict", code(out))
	st, out = do("PUT", "/api/v1/settings/limits", `{"num":5}`, "If-Match", `"1"`)
	require.Equal(t, http.StatusOK, st)
	require.EqualValues(t, 2, out["version"])

	st, out = do("PUT", "/api/v1/settings/limits", `{"num":0}`)
	require.Equal(t, http.StatusBadRequest, st)
	require.Equal(t, "invalid_setting", code(out))
	st, out = do("PUT", "/api/v1/settings/limits", `{num`)
	require.Equal(t, http.StatusBadRequest, st)
	require.Equal(t, "invalid_body", code(out))
	st, out = do("PUT", "/api/v1/settings/limits", `{"num":1}`, "If-Match", "x")
	require.Equal(t, http.StatusBadRequest, st)
	require.Equal(t, "invalid_body", code(out))
	st, out = do("GET", "/api/v1/settings/none", "")
	require.Equal(t, http.StatusNotFound, st)
	require.Equal(t, "unknown_setting", code(out))
	st, out = do("PUT", "/api/v1/settings/limits", `{"num":`+strings.Repeat("1", 2<<20)+`}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, st)
	require.Equal(t, "payload_too_large", code(out))

	st, out = do("GET", "/api/v1/settings/limits", "")
	require.Equal(t, http.StatusOK, st)
	require.EqualValues(t, 5, out["value"].(map[string]any)["num"])
}
