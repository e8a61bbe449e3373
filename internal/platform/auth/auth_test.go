package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/auth"
)

// fakeStore is an Authenticator over a map of key → principal that counts
// lookups and can revoke keys or fail outright.
type fakeStore struct {
	mu      sync.Mutex
	keys    map[string]auth.Principal
	calls   int
	failing error
}

func (f *fakeStore) Authenticate(_ context.Context, token string) (auth.Principal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failing != nil {
		return auth.Principal{}, f.failing
	}
	p, ok := f.keys[token]
	if !ok {
		return auth.Principal{}, auth.ErrUnauthorized
	}
	return p, nil
}

func (f *fakeStore) revoke(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.keys, token)
}

func TestRequire(t *testing.T) {
	store := &fakeStore{keys: map[string]auth.Principal{
		"wp_send":  {AppID: "app", KeyID: "k1", Scopes: []string{auth.ScopeSend}},
		"wp_admin": {AppID: "app", KeyID: "k2", Scopes: []string{auth.ScopeAdmin}},
	}}
	var seen auth.Principal
	h := auth.Require(store, auth.ScopeTemplates)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		require.True(t, ok)
		seen = p
		w.WriteHeader(http.StatusNoContent)
	}))
	tests := []struct {
		name   string
		header string
		status int
		code   string
	}{
		{"no header", "", http.StatusUnauthorized, "unauthorized"},
		{"not bearer", "Basic d3BfYWRtaW4=", http.StatusUnauthorized, "unauthorized"},
		{"empty bearer", "Bearer ", http.StatusUnauthorized, "unauthorized"},
		{"unknown key", "Bearer wp_nope", http.StatusUnauthorized, "unauthorized"},
		{"missing scope", "Bearer wp_send", http.StatusForbidden, "forbidden"},
		{"admin implies all", "Bearer wp_admin", http.StatusNoContent, ""},
		{"scheme case-insensitive", "bearer wp_admin", http.StatusNoContent, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tc.status, rec.Code)
			if tc.code != "" {
				var body struct {
					Error struct{ Code, Message string }
				}
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
				require.Equal(t, tc.code, body.Error.Code)
				require.NotEmpty(t, body.Error.Message)
				return
			}
			require.Equal(t, "k2", seen.KeyID)
		})
	}
}

func TestRequireStoreFailureIsNotUnauthorized(t *testing.T) {
	store := &fakeStore{failing: errors.New("database down")}
	h := auth.Require(store, auth.ScopeSend)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Fatal("handler must not run")
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer wp_x")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
}

func TestCacheHonoursRevokeAfterTTL(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	store := &fakeStore{keys: map[string]auth.Principal{"wp_k": {KeyID: "k", Scopes: []string{auth.ScopeSend}}}}
	c := auth.NewCache(store, 2*time.Second, clock)
	ctx := context.Background()

	_, err := c.Authenticate(ctx, "wp_k")
	require.NoError(t, err)
	_, err = c.Authenticate(ctx, "wp_k")
	require.NoError(t, err)
	require.Equal(t, 1, store.calls, "second check within the TTL is served from the cache")

	store.revoke("wp_k")
	now = now.Add(time.Second)
	_, err = c.Authenticate(ctx, "wp_k")
	require.NoError(t, err, "revocation is not yet seen within the TTL")

	now = now.Add(time.Second)
	_, err = c.Authenticate(ctx, "wp_k")
	require.ErrorIs(t, err, auth.ErrUnauthorized)

	_, err = c.Authenticate(ctx, "wp_unknown")
	require.ErrorIs(t, err, auth.ErrUnauthorized)
	_, err = c.Authenticate(ctx, "wp_unknown")
	require.ErrorIs(t, err, auth.ErrUnauthorized)
	require.Equal(t, 4, store.calls, "failures are never cached")
}

func TestCacheTTLCapped(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	store := &fakeStore{keys: map[string]auth.Principal{"wp_k": {KeyID: "k"}}}
	c := auth.NewCache(store, time.Hour, func() time.Time { return now })
	_, err := c.Authenticate(context.Background(), "wp_k")
	require.NoError(t, err)
	store.revoke("wp_k")
	now = now.Add(auth.MaxCacheTTL)
	_, err = c.Authenticate(context.Background(), "wp_k")
	require.ErrorIs(t, err, auth.ErrUnauthorized)
}

func TestNewKey(t *testing.T) {
	plain, id, hash := auth.NewKey()
	plain2, id2, _ := auth.NewKey()
	require.NotEqual(t, plain, plain2)
	require.NotEqual(t, id, id2)
	require.True(t, auth.LooksLikeKey(plain))
	require.False(t, auth.LooksLikeKey("wp_short"))
	require.Len(t, hash, 64)
	require.NotContains(t, hash, plain)
	require.True(t, auth.HashEqual(hash, auth.HashKey(plain)))
	require.False(t, auth.HashEqual(hash, auth.HashKey(plain2)))
}

func TestPrincipalHas(t *testing.T) {
	p := auth.Principal{Scopes: []string{auth.ScopeSend}}
	require.True(t, p.Has(auth.ScopeSend))
	require.False(t, p.Has(auth.ScopeTrace))
	admin := auth.Principal{Scopes: []string{auth.ScopeAdmin}}
	for _, s := range auth.AllScopes() {
		require.True(t, admin.Has(s), s)
	}
}

// BenchmarkRequireCached measures the per-request cost of the middleware
// with a warm cache: one SHA-256 and a map lookup.
func BenchmarkRequireCached(b *testing.B) {
	store := &fakeStore{keys: map[string]auth.Principal{"wp_k": {KeyID: "k", Scopes: []string{auth.ScopeSend}}}}
	h := auth.Require(auth.NewCache(store, 0, nil), auth.ScopeSend)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer wp_k")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	})
}

func TestScopeAnyAcceptsEveryKey(t *testing.T) {
	require.True(t, auth.Principal{Scopes: []string{auth.ScopeTrace}}.Has(auth.ScopeAny))
	require.True(t, auth.Principal{}.Has(auth.ScopeAny))
	require.False(t, auth.Principal{Scopes: []string{auth.ScopeTrace}}.Has(auth.ScopeHub))
	require.True(t, auth.Principal{Scopes: []string{auth.ScopeAdmin}}.Has(auth.ScopeHub))
}
