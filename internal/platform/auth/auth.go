// Package auth owns API-key authentication for every Waypost HTTP API: the
// key format and its hashing, the Authenticator interface a key store
// implements, a short-lived cache of verified keys, and the middleware that
// turns `Authorization: Bearer <key>` into a Principal with scopes.
package auth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/waypost/waypost/internal/platform/httpx"
)

// Scopes a key can hold. ScopeAdmin implies every other scope; ScopeAny,
// given to Require, accepts any valid key.
const (
	ScopeSend      = "send"
	ScopeTrace     = "trace"
	ScopeTemplates = "templates"
	ScopeHub       = "hub"
	ScopeAdmin     = "admin"
	ScopeAny       = ""
)

// AllScopes lists every scope, for the bootstrap key.
func AllScopes() []string {
	return []string{ScopeSend, ScopeTrace, ScopeTemplates, ScopeHub, ScopeAdmin}
}

// ValidScope reports whether s is a known scope.
func ValidScope(s string) bool { return slices.Contains(AllScopes(), s) }

// ErrUnauthorized is returned by an Authenticator for a missing, unknown or
// revoked key.
var ErrUnauthorized = errors.New("unauthorized")

// Principal is the caller behind a verified key.
type Principal struct {
	AppID  string
	KeyID  string
	Scopes []string
}

// Has reports whether the principal holds scope; admin holds them all, and
// every principal holds ScopeAny.
func (p Principal) Has(scope string) bool {
	return scope == ScopeAny || slices.Contains(p.Scopes, scope) || slices.Contains(p.Scopes, ScopeAdmin)
}

// Authenticator verifies an API key. It returns an error wrapping
// ErrUnauthorized when the key is unknown or revoked; any other error means
// the check itself failed (a database outage) and is not the caller's fault.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Principal, error)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal Require stored in ctx, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Require admits requests whose bearer key a verifies and which hold scope;
// it answers 401 unauthorized for a missing, unknown or revoked key, 403
// forbidden for a key without the scope, and 503 auth_unavailable when the
// key store itself fails (so an outage is never reported as a bad key).
func Require(a Authenticator, scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, ok := bearer(r.Header.Get("Authorization"))
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="waypost"`)
				httpx.WriteError(w, http.StatusUnauthorized, "unauthorized", "missing bearer API key")
				return
			}
			p, err := a.Authenticate(r.Context(), token)
			switch {
			case errors.Is(err, ErrUnauthorized):
				w.Header().Set("WWW-Authenticate", `Bearer realm="waypost", error="invalid_token"`)
				httpx.WriteError(w, http.StatusUnauthorized, "unauthorized", "unknown or revoked API key")
				return
			case err != nil:
				httpx.WriteError(w, http.StatusServiceUnavailable, "auth_unavailable", "cannot verify API key now")
				return
			}
			if !p.Has(scope) {
				httpx.WriteError(w, http.StatusForbidden, "forbidden", "API key lacks scope "+scope)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

// bearer extracts the token of an `Authorization: Bearer <token>` header;
// the scheme is case-insensitive as RFC 9110 says.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
