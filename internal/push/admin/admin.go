// Package admin serves the push admin API under /api/v1: channel accounts,
// templates and their review cycle, and API keys. It validates requests,
// translates store errors to the contract's codes once, here, and never
// returns a secret in full.
package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/waypost/waypost/internal/platform/auth"
	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/store"
)

// DefaultMaxBody bounds an admin request body; templates and account
// configs are small.
const DefaultMaxBody = 1 << 20

// API is the admin HTTP API over a push store.
type API struct {
	st      *store.Store
	log     *slog.Logger
	maxBody int64
}

// New returns the admin API over st.
func New(st *store.Store, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &API{st: st, log: logger, maxBody: DefaultMaxBody}
}

// Register mounts every admin route on mux behind authn: scope templates
// for templates, admin for channel accounts and keys.
func (a *API) Register(mux *http.ServeMux, authn auth.Authenticator) {
	tpl := auth.Require(authn, auth.ScopeTemplates)
	adm := auth.Require(authn, auth.ScopeAdmin)
	route := func(pattern string, mw func(http.Handler) http.Handler, h http.HandlerFunc) {
		mux.Handle(pattern, mw(h))
	}
	route("POST /api/v1/channel-accounts", adm, a.createAccount)
	route("GET /api/v1/channel-accounts", adm, a.listAccounts)
	route("GET /api/v1/channel-accounts/{id}", adm, a.getAccount)
	route("PATCH /api/v1/channel-accounts/{id}", adm, a.updateAccount)
	route("DELETE /api/v1/channel-accounts/{id}", adm, a.deleteAccount)

	route("POST /api/v1/templates", tpl, a.createTemplate)
	route("GET /api/v1/templates", tpl, a.listTemplates)
	route("GET /api/v1/templates/{id}", tpl, a.getTemplate)
	route("PATCH /api/v1/templates/{id}", tpl, a.updateTemplate)
	route("DELETE /api/v1/templates/{id}", tpl, a.deleteTemplate)
	route("POST /api/v1/templates/{id}/submit", tpl, a.transition(store.ActionSubmit))
	route("POST /api/v1/templates/{id}/approve", tpl, a.transition(store.ActionApprove))
	route("POST /api/v1/templates/{id}/reject", tpl, a.transition(store.ActionReject))
	route("POST /api/v1/templates/{id}/copy", tpl, a.copyTemplate)

	route("POST /api/v1/keys", adm, a.createKey)
	route("DELETE /api/v1/keys/{id}", adm, a.revokeKey)
}

// badRequest is a caller's mistake in the body, answered 400 invalid_body
// with its message.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func invalid(format string, args ...any) error { return &badRequest{msg: fmt.Sprintf(format, args...)} }

// errorCodes translates domain errors to the contract's status and code.
var errorCodes = []struct {
	err    error
	status int
	code   string
}{
	{push.ErrUnknownTemplate, http.StatusNotFound, "unknown_template"},
	{push.ErrUnknownAccount, http.StatusNotFound, "unknown_account"},
	{store.ErrUnknownKey, http.StatusNotFound, "unknown_key"},
	{push.ErrInvalidTransition, http.StatusConflict, "invalid_transition"},
	{store.ErrVersionConflict, http.StatusConflict, "version_conflict"},
	{store.ErrAccountInUse, http.StatusConflict, "account_in_use"},
}

// fail answers err with its contract code; anything unknown is logged and
// answered 500 without detail.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var br *badRequest
	switch {
	case errors.As(err, &br):
		httpx.WriteError(w, http.StatusBadRequest, "invalid_body", br.msg)
		return
	case httpx.IsTooLarge(err):
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, "payload_too_large",
			"request body is larger than "+strconv.FormatInt(a.maxBody, 10)+" bytes")
		return
	}
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			httpx.WriteError(w, c.status, c.code, err.Error())
			return
		}
	}
	a.log.ErrorContext(r.Context(), "push admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	httpx.WriteError(w, http.StatusInternalServerError, "internal", "internal error")
}

// decode reads one JSON value from the body into v; an empty body leaves v
// alone when optional is set.
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	if r.ContentLength > a.maxBody {
		return &http.MaxBytesError{Limit: a.maxBody}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, a.maxBody))
	if err := dec.Decode(v); err != nil {
		if httpx.IsTooLarge(err) {
			return err
		}
		if errors.Is(err, io.EOF) {
			if optional {
				return nil
			}
			return invalid("request body is empty; want a JSON object")
		}
		return invalid("malformed JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if httpx.IsTooLarge(err) {
			return err
		}
		return invalid("malformed JSON body: data after the JSON object")
	}
	return nil
}

// caller names the principal for the audit trail.
func caller(r *http.Request) string {
	p, _ := auth.FromContext(r.Context())
	return p.KeyID
}

// page reads limit and offset from the query.
func page(r *http.Request) (store.Page, error) {
	var p store.Page
	for name, dst := range map[string]*int{"limit": &p.Limit, "offset": &p.Offset} {
		v := r.URL.Query().Get(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, invalid("query parameter %s must be a non-negative integer", name)
		}
		*dst = n
	}
	if p.Limit == 0 {
		p.Limit = store.DefaultLimit
	}
	p.Limit = min(p.Limit, store.MaxLimit)
	return p, nil
}

// listResponse is a page of items with where the next page starts, present
// only when this page was full.
func listResponse(key string, items any, n int, p store.Page) map[string]any {
	out := map[string]any{key: items, "limit": p.Limit, "offset": p.Offset}
	if n == p.Limit {
		out["nextOffset"] = p.Offset + n
	}
	return out
}
