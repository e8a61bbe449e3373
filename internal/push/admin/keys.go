package admin

import (
	"net/http"
	"strings"

	"github.com/waypost/waypost/internal/platform/auth"
	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/push/store"
)

type keyBody struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

// createdKey is a new key with its plaintext, which is shown only here.
type createdKey struct {
	store.Key
	Plaintext string `json:"key"`
}

// createKey makes a key for the caller's app; the plaintext is in this one
// response and nowhere else.
func (a *API) createKey(w http.ResponseWriter, r *http.Request) {
	var body keyBody
	if err := a.decode(w, r, &body, false); err != nil {
		a.fail(w, r, err)
		return
	}
	body.Name = strings.TrimSpace(body.Name)
	if body.Name == "" || len([]rune(body.Name)) > 191 {
		a.fail(w, r, invalid("name is required (at most 191 characters)"))
		return
	}
	if len(body.Scopes) == 0 {
		a.fail(w, r, invalid("scopes must list at least one of %v", auth.AllScopes()))
		return
	}
	for _, s := range body.Scopes {
		if !auth.ValidScope(s) {
			a.fail(w, r, invalid("scope %q is not one of %v", s, auth.AllScopes()))
			return
		}
	}
	p, _ := auth.FromContext(r.Context())
	k, plain, err := a.st.CreateKey(r.Context(), p.AppID, body.Name, body.Scopes)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, createdKey{Key: k, Plaintext: plain})
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) {
	if err := a.st.RevokeKey(r.Context(), r.PathValue("id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
