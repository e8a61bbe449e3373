package dynconf

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/waypost/waypost/internal/platform/auth"
	"github.com/waypost/waypost/internal/platform/httpx"
)

// maxBody bounds one setting's JSON.
const maxBody = 1 << 20

// API serves the settings over HTTP:
//
//	GET /api/v1/settings          every registered setting's view
//	GET /api/v1/settings/{name}   one view
//	PUT /api/v1/settings/{name}   body = the new value; If-Match: <version> optional
type API struct {
	r   *Registry
	log *slog.Logger
}

// NewAPI returns the settings API over r; logger may be nil.
func NewAPI(r *Registry, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &API{r: r, log: logger}
}

// RegisterHTTP mounts the routes on mux; mux's middleware must check the
// admin scope.
func (a *API) RegisterHTTP(mux httpx.Router) {
	mux.HandleFunc("GET /api/v1/settings", a.list)
	mux.HandleFunc("GET /api/v1/settings/{name}", a.get)
	mux.HandleFunc("PUT /api/v1/settings/{name}", a.put)
}

func (a *API) list(w http.ResponseWriter, _ *http.Request) {
	views := []View{}
	for _, n := range a.r.Names() {
		if v, err := a.r.View(n); err == nil {
			views = append(views, v)
		}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"settings": views})
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	v, err := a.r.View(r.PathValue("name"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func (a *API) put(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var ifVersion int64
	if m := strings.Trim(r.Header.Get("If-Match"), `" `); m != "" {
		v, err := strconv.ParseInt(m, 10, 64)
		if err != nil || v < 1 {
			httpx.WriteError(w, http.StatusBadRequest, "invalid_body", "If-Match must be a setting version (a positive integer)")
			return
		}
		ifVersion = v
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if httpx.IsTooLarge(err) {
			httpx.WriteError(w, http.StatusRequestEntityTooLarge, "payload_too_large", "a setting is at most 1 MiB")
			return
		}
		httpx.WriteError(w, http.StatusBadRequest, "invalid_body", "read body: "+err.Error())
		return
	}
	if !json.Valid(raw) {
		httpx.WriteError(w, http.StatusBadRequest, "invalid_body", "the body must be the setting's JSON value")
		return
	}
	by := ""
	if p, ok := auth.FromContext(r.Context()); ok {
		by = p.AppID + "/" + p.KeyID
	}
	if _, err := a.r.Update(r.Context(), name, raw, by, ifVersion); err != nil {
		a.fail(w, r, err)
		return
	}
	v, err := a.r.View(name)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrUnknownSetting):
		httpx.WriteError(w, http.StatusNotFound, "unknown_setting", err.Error())
	case errors.Is(err, ErrInvalid):
		httpx.WriteError(w, http.StatusBadRequest, "invalid_setting", err.Error())
	case errors.Is(err, ErrConflict):
		httpx.WriteError(w, http.StatusConflict, "version_conflict", err.Error())
	default:
		a.log.ErrorContext(r.Context(), "settings api", "err", err)
		httpx.WriteError(w, http.StatusInternalServerError, "internal", "settings could not be read or written")
	}
}
